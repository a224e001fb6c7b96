//! Sandboxes: a program that installs a seccomp filter (`prctl(PR_SET_SECCOMP)`,
//! `syscall(SYS_seccomp)`) may have it kill the process on any system call it did not expect,
//! such as sigtrace's `perf_event_open` or `timer_create` for a new thread. So before the
//! filter goes in, sigtrace writes the open generation with an end record saying why
//! (`EndReason::Sandbox`), stops every timer and its drain thread, and from then on makes no
//! system call of its own: new threads are not armed, exiting threads are not looked at.
//!
//! `prctl` and `syscall` are interposed with entries that make the system call themselves (no
//! `dlsym`, async-signal-safe: sigtrace's own code and its signal handler call `syscall`
//! too, and reach these entries).

use crate::lifecycle;
use crate::startup::finish_trace;
use format::EndReason;
use std::ffi::{c_int, c_long, c_ulong};
use std::sync::atomic::{AtomicBool, Ordering};

const PR_SET_SECCOMP: c_int = 22;
const SECCOMP_SET_MODE_STRICT: c_long = 0;
const SECCOMP_SET_MODE_FILTER: c_long = 1;

/// Set once the program entered a sandbox: sigtrace makes no more system calls of its own.
static SANDBOXED: AtomicBool = AtomicBool::new(false);

/// True once the program installed a seccomp filter. Async-signal-safe.
pub fn is_sandboxed() -> bool {
    SANDBOXED.load(Ordering::Acquire)
}

/// True when the process already runs under a seccomp filter at start-up (filters survive
/// `exec`: a sandboxed parent's child, or another preloaded library's constructor). Then
/// sigtrace must not start: its first `perf_event_open` could be what the filter kills.
pub fn runs_under_seccomp() -> bool {
    if is_sandboxed() {
        return true;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    status.lines().find_map(|line| line.strip_prefix("Seccomp:")).is_some_and(|mode| mode.trim() != "0")
}

/// Ends tracing before the program's filter is installed: the open generation and an end
/// record (`sandbox`) are written, timers stopped, the drain thread gone.
fn enter_sandbox() {
    if SANDBOXED.swap(true, Ordering::AcqRel) {
        return;
    }
    if std::panic::catch_unwind(|| finish_trace(EndReason::Sandbox)).is_err() {
        lifecycle::switch_off("internal error before the program's sandbox");
    }
    writer::drain::wait_for_drain_thread_exit(std::time::Duration::from_millis(100));
}

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

/// `syscall(SYS_seccomp, …)` and `syscall(SYS_prctl, …)` from the interposed `syscall`: ends
/// tracing first when the call installs a filter (or strict mode).
///
/// # Safety
/// Same contract as libc's `syscall`.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn seccomp_through_syscall(number: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long {
    let installs = if number == libc::SYS_prctl { a1 == PR_SET_SECCOMP as c_long } else { a1 == SECCOMP_SET_MODE_STRICT || a1 == SECCOMP_SET_MODE_FILTER };
    if installs {
        enter_sandbox();
    }
    // SAFETY: forwarding the caller's system call unchanged.
    libc_result(unsafe { raw_syscall(number, a1, a2, a3, a4, a5, a6) })
}

/// Interposed `syscall`: glibc's, instruction for instruction (a naked entry: a raw `clone`
/// or `vfork` through it behaves as through glibc's), except that `SYS_seccomp` and `SYS_prctl`
/// go through `seccomp_through_syscall` first and `SYS_futex` through
/// `blocking::futex_through_syscall` (a wait is marked for wall-clock mode).
///
/// # Safety
/// Same contract as libc's `syscall`.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn syscall(number: c_long) -> c_long {
    core::arch::naked_asm!(
        "cmp rdi, {seccomp}",
        "je {seccomp_entry}",
        "cmp rdi, {prctl}",
        "je {seccomp_entry}",
        "cmp rdi, {futex}",
        "je {futex_entry}",
        "mov rax, rdi",
        "mov rdi, rsi",
        "mov rsi, rdx",
        "mov rdx, rcx",
        "mov r10, r8",
        "mov r8, r9",
        "mov r9, [rsp + 8]",
        "syscall",
        "cmp rax, -4095",
        "jae 2f",
        "ret",
        "2:",
        "mov rdi, rax",
        "jmp {result}",
        seccomp = const libc::SYS_seccomp,
        prctl = const libc::SYS_prctl,
        futex = const libc::SYS_futex,
        seccomp_entry = sym seccomp_through_syscall,
        futex_entry = sym crate::blocking::futex_through_syscall,
        result = sym libc_result,
    )
}

/// Interposed `prctl`: `PR_SET_SECCOMP` first ends tracing; every call is the plain system
/// call, as glibc's `prctl` is.
///
/// # Safety
/// Same contract as libc's `prctl`.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
pub unsafe extern "C" fn prctl(option: c_int, a2: c_ulong, a3: c_ulong, a4: c_ulong, a5: c_ulong) -> c_int {
    if option == PR_SET_SECCOMP {
        enter_sandbox();
    }
    // SAFETY: forwarding the caller's arguments to the prctl system call, as glibc does.
    libc_result(unsafe { raw_syscall(libc::SYS_prctl, option as c_long, a2 as c_long, a3 as c_long, a4 as c_long, a5 as c_long, 0) }) as c_int
}
