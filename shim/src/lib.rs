//! `libsigtrace.so`: put it in `LD_PRELOAD` of any program to sample where its threads spend
//! CPU time. Thin wiring: configuration, start-up and exit, interposed libc functions.
//!
//! Every entry point the host can reach (the constructor and destructor, `pthread_create`,
//! the thread-exit destructor, the drain thread) catches panics and switches sigtrace off
//! instead of taking the host down.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod annotate;
pub mod blocking;
pub mod config;
pub mod descriptors;
pub mod dl;
pub mod exec;
pub mod exec_variadic;
pub mod exit;
pub mod lifecycle;
pub mod log;
pub mod next_fn;
pub mod output;
pub mod sampling;
pub mod sandbox;
pub mod signals;
pub mod startup;
pub mod threads;

/// For tests: 1 while the calling thread is inside the sampling signal handler. An allocator
/// interposed by a test aborts when called while this is 1.
#[no_mangle]
pub extern "C" fn sigtrace_in_signal_handler() -> libc::c_int {
    sigprof::in_signal_handler() as libc::c_int
}

#[ctor::ctor]
fn sigtrace_constructor() {
    if std::panic::catch_unwind(startup::start).is_err() {
        lifecycle::switch_off("internal error at start-up");
    }
}

#[ctor::dtor]
fn sigtrace_destructor() {
    if std::panic::catch_unwind(startup::stop).is_err() {
        lifecycle::switch_off("internal error at exit");
    }
}
