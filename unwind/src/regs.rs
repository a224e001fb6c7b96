//! The interrupted thread's registers, taken from the signal's `ucontext_t`.

/// The registers a stack walk starts from: the interrupted instruction, stack and frame pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regs {
    pub pc: u64,
    pub sp: u64,
    pub fp: u64,
    /// The link register (aarch64); 0 on x86_64.
    pub lr: u64,
}

/// Reads the interrupted context's registers. Async-signal-safe.
///
/// # Safety
/// `ucontext` must be the third argument of an `SA_SIGINFO` signal handler (a valid `ucontext_t`).
#[cfg(target_arch = "x86_64")]
pub unsafe fn regs_from_ucontext(ucontext: *const libc::c_void) -> Regs {
    // SAFETY: the caller passes the kernel-provided ucontext_t of the running handler.
    let context = unsafe { &*(ucontext as *const libc::ucontext_t) };
    let gregs = &context.uc_mcontext.gregs;
    Regs { pc: gregs[libc::REG_RIP as usize] as u64, sp: gregs[libc::REG_RSP as usize] as u64, fp: gregs[libc::REG_RBP as usize] as u64, lr: 0 }
}

/// Reads the interrupted context's registers. Async-signal-safe.
///
/// # Safety
/// `ucontext` must be the third argument of an `SA_SIGINFO` signal handler (a valid `ucontext_t`).
#[cfg(target_arch = "aarch64")]
pub unsafe fn regs_from_ucontext(ucontext: *const libc::c_void) -> Regs {
    // SAFETY: the caller passes the kernel-provided ucontext_t of the running handler.
    let context = unsafe { &*(ucontext as *const libc::ucontext_t) };
    let mcontext = &context.uc_mcontext;
    Regs { pc: mcontext.pc, sp: mcontext.sp, fp: mcontext.regs[29], lr: mcontext.regs[30] }
}
