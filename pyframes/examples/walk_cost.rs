//! Cost of the handler's Python walk ([`pyframes::walk_python`]) on a live Python stack, timed
//! inside a real interpreter outside a signal handler: a library loaded by `ctypes` from a
//! Python function `DEPTH` calls deep (`scripts/bench-pyframes.sh`), with the thread's stack
//! bounds as the registry knows them. Prints nothing; returns CPU ns per walk, and the frames the
//! last walk found through `frames`.

/// The calling thread's CPU time, ns (a loaded machine makes wall time meaningless).
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The calling thread's stack bounds, as `pthread_getattr_np` reports them.
fn stack_bounds() -> (u64, u64) {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; the attribute object is
    // destroyed after its stack is read.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return (0, 0);
        }
        let (mut base, mut size) = (std::ptr::null_mut(), 0usize);
        libc::pthread_attr_getstack(&attr, &mut base, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (base as u64, base as u64 + size as u64)
    }
}

/// SIGSEGV and SIGBUS go to a handler that recovers fault-recovering reads (as sigtrace's
/// own does first), else dies of the fault.
fn install_probe_handler() {
    extern "C" fn on_fault(_signal: i32, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
        // SAFETY: the kernel's arguments.
        if !unsafe { pyframes::probe::recover(info, ucontext) } {
            // SAFETY: back to the default: returning faults again and dies.
            unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
            // SAFETY: as above.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        }
    }
    for signal in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: sigaction is plain data; a valid SA_SIGINFO action.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        pyframes::probe::set_ours(signal, Some(on_fault as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize));
    }
}

/// Times `walks` Python walks of the calling thread; ns per walk. `frames` gets the frame count.
/// `probe` non-zero: reads by fault-recovering loads (a SIGSEGV/SIGBUS handler is installed),
/// else by `process_vm_readv`.
///
/// # Safety
/// `frames` must be a valid pointer to a `u64`.
#[no_mangle]
pub unsafe extern "C" fn sigtrace_bench_walk(walks: u64, frames: *mut u64, probe: u32) -> f64 {
    pyframes::detect();
    if probe != 0 {
        install_probe_handler();
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let bounds = stack_bounds();
    let mut words = [0u64; 1 + 2 * pyframes::MAX_PYTHON_FRAMES];
    let mut found = 0;
    let start = thread_cpu_ns();
    for _ in 0..walks {
        let mut at = 0;
        found = pyframes::walk_python(tid, bounds, probe != 0, pyframes::MAX_PYTHON_FRAMES, &mut |word, _| {
            words[at] = word;
            at += 1;
        });
        std::hint::black_box(&words);
    }
    let ns = (thread_cpu_ns() - start) as f64 / walks.max(1) as f64;
    // SAFETY: the caller passes a valid pointer.
    unsafe { *frames = found as u64 };
    ns
}
