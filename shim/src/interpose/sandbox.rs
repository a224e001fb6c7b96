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

use crate::lifecycle::sandbox::enter_sandbox;
use crate::raw_syscall::libc_result;
#[cfg(target_arch = "x86_64")]
use crate::raw_syscall::raw_syscall;
use std::ffi::{c_int, c_long, c_ulong};

const PR_SET_SECCOMP: c_int = 22;
const SECCOMP_SET_MODE_STRICT: c_long = 0;
const SECCOMP_SET_MODE_FILTER: c_long = 1;

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
        futex_entry = sym super::blocking::futex_through_syscall,
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
