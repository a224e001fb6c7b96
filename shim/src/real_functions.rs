//! libc's own `sigaction`, `pthread_sigmask` and `pthread_create`, behind sigtrace's interposed
//! ones: for sigtrace's own signal set-up and threads, which must not go through its wrappers
//! (the interposed `pthread_sigmask` would unblock the sampling signal, the interposed
//! `pthread_create` would register the thread for sampling).

use crate::next_fn::NextFn;
use sigprof::program_signals::{SigactionFn, SigmaskFn};
use std::ffi::c_void;

/// A thread's start routine, as `pthread_create` takes it.
pub type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;
pub type PthreadCreate = unsafe extern "C" fn(*mut libc::pthread_t, *const libc::pthread_attr_t, StartRoutine, *mut c_void) -> libc::c_int;

// SAFETY: the type is that of libc's sigaction.
static REAL_SIGACTION: NextFn<SigactionFn> = unsafe { NextFn::new(c"sigaction") };
// SAFETY: the type is that of libc's pthread_sigmask.
static REAL_PTHREAD_SIGMASK: NextFn<SigmaskFn> = unsafe { NextFn::new(c"pthread_sigmask") };
// SAFETY: the type is that of libc's pthread_create.
static REAL_PTHREAD_CREATE: NextFn<PthreadCreate> = unsafe { NextFn::new(c"pthread_create") };

/// libc's `sigaction`.
pub fn real_sigaction() -> Option<SigactionFn> {
    REAL_SIGACTION.get()
}

/// libc's `pthread_sigmask` (sigtrace's own mask changes must not be filtered).
pub fn real_pthread_sigmask() -> Option<SigmaskFn> {
    REAL_PTHREAD_SIGMASK.get()
}

/// libc's `pthread_create`, found with `dlsym(RTLD_NEXT)`.
pub fn real_pthread_create() -> Option<PthreadCreate> {
    REAL_PTHREAD_CREATE.get()
}
