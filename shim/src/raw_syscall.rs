//! System calls made directly (the `syscall` instruction, no libc): for the interposed
//! `syscall` and `prctl`, which must not go through libc's (or back into sigtrace's) entries.

use std::ffi::{c_int, c_long};

/// Makes system call `number` directly. Async-signal-safe.
///
/// # Safety
/// The arguments must be valid for that system call.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn raw_syscall(number: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long {
    let result: c_long;
    // SAFETY: the `syscall` instruction with the kernel's x86_64 convention; it clobbers only
    // rcx and r11, and the caller vouches for the arguments.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number => result,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// libc's convention for a raw result: -1 with `errno` set for -4095..-1. Async-signal-safe.
pub(crate) extern "C" fn libc_result(raw: c_long) -> c_long {
    if (-4095..0).contains(&raw) {
        // SAFETY: sets this thread's errno.
        unsafe { *libc::__errno_location() = -raw as c_int };
        return -1;
    }
    raw
}
