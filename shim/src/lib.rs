//! `libsigtrace.so`: put it in `LD_PRELOAD` of any program to sample where its threads spend
//! CPU time. Thin wiring: configuration, start-up and exit, interposed libc functions.
//!
//! Layers, each using only those below it: `interpose` (the libc entry points) on top of
//! `lifecycle` (start, stop, threads, the state machine), on top of `sampling` (timers, blocking
//! call marks), `real_functions`, `raw_syscall`, `next_fn`, `config`, `output`, `proc_file` and `log`.
//! `annotate` is the annotation C API (`include/sigtrace.h`).
//!
//! Every entry point the host can reach (the constructor and destructor, `pthread_create`,
//! the thread-exit destructor, the drain thread) catches panics and switches sigtrace off
//! instead of taking the host down.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod annotate;
// `config.rs` and `log.rs` stay at the crate root: the fuzz target compiles them in by path.
mod config;
mod interpose;
mod lifecycle;
mod log;
mod next_fn;
mod output;
mod proc_file;
mod raw_syscall;
mod real_functions;
mod sampling;

/// For tests: 1 while the calling thread is inside the sampling signal handler. An allocator
/// interposed by a test aborts when called while this is 1.
#[no_mangle]
pub extern "C" fn sigtrace_in_signal_handler() -> libc::c_int {
    sigprof::in_signal_handler() as libc::c_int
}

#[ctor::ctor]
fn sigtrace_constructor() {
    let started = std::panic::catch_unwind(|| {
        // libc's functions behind the interposed blocking calls, looked up before any signal
        // handler (the program's or sigtrace's) can call one of them.
        interpose::resolve_real_functions();
        lifecycle::start::start();
    });
    if started.is_err() {
        lifecycle::state::switch_off("internal error at start-up");
    }
}

#[ctor::dtor]
fn sigtrace_destructor() {
    if std::panic::catch_unwind(lifecycle::stop::stop).is_err() {
        lifecycle::state::switch_off("internal error at exit");
    }
}
