//! Interposed `pthread_create`: a thread the program starts registers itself for sampling
//! (`lifecycle::threads`) before it runs the program's start routine.

use crate::lifecycle::state;
use crate::lifecycle::threads::register_current_thread;
use crate::real_functions::{real_pthread_create, StartRoutine};
use std::ffi::c_void;

/// What the wrapper hands the new thread.
struct ThreadStart {
    start: StartRoutine,
    argument: *mut c_void,
    /// The creator's view of the sampling signal's mask (a new thread inherits the mask).
    program_blocks: bool,
}

/// The interposed `pthread_create`: the new thread registers itself, arms its timer, then runs
/// the program's start routine unchanged.
///
/// # Safety
/// Same contract as libc's `pthread_create`.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    argument: *mut c_void,
) -> libc::c_int {
    let Some(real) = real_pthread_create() else { return libc::EAGAIN };
    if !state::is_running() {
        // SAFETY: forwarding the caller's arguments unchanged.
        return sigprof::program_signals::inheriting_program_block(|| unsafe { real(thread, attr, start, argument) });
    }
    let _creating = crate::lifecycle::drain_thread::before_program_creates_thread();
    if let Some(registry) = sigprof::Registry::get() {
        // A cache for the new thread's walks before it can be sampled (a panic here, out of
        // memory, leaves the pool as it was).
        let _ = std::panic::catch_unwind(|| writer::dwarf_caches_for_new_thread(registry));
    }
    let boxed = Box::into_raw(Box::new(ThreadStart { start, argument, program_blocks: sigprof::program_signals::program_blocks() }));
    // SAFETY: the trampoline takes ownership of `boxed` when the thread starts.
    let result = unsafe { real(thread, attr, start_registered_thread, boxed.cast()) };
    if result != 0 {
        // SAFETY: the thread was not created, so the box is still ours.
        drop(unsafe { Box::from_raw(boxed) });
    }
    result
}

extern "C" fn start_registered_thread(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the ThreadStart box made by our pthread_create, handed over exactly once.
    let ThreadStart { start, argument, program_blocks } = *unsafe { Box::from_raw(data.cast::<ThreadStart>()) };
    sigprof::program_signals::set_program_blocks(program_blocks);
    if std::panic::catch_unwind(register_current_thread).is_err() {
        state::switch_off("internal error while registering a thread");
    }
    start(argument)
}
