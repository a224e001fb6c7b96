//! Interposed `execl`, `execlp` and `execle` (x86_64). They are variadic, which Rust cannot
//! define; a naked entry stores the five register arguments next to each other and hands them,
//! with the address of the stack arguments, to `exec_variadic`, which collects the NULL-
//! terminated list (into a fixed buffer: no allocation, as these run in `vfork` children) and
//! goes through the interposed `execv`, `execvp` or `execve`.

use std::ffi::{c_char, c_int};

const EXECL: c_int = 0;
const EXECLP: c_int = 1;
const EXECLE: c_int = 2;
/// Arguments an `execl` call may pass (argv entries, NULL included).
const MAX_ARGS: usize = 4096;

/// # Safety
/// Called only by the naked entries below: `registers` holds the 2nd–6th integer arguments of
/// the variadic call, `stack` points at its 7th.
unsafe extern "C" fn exec_variadic(path: *const c_char, registers: *const usize, stack: *const usize, kind: c_int) -> c_int {
    // SAFETY: the caller's contract: 5 register words, then the stack arguments, which a valid
    // execl call terminates with NULL (and, for execle, follows with envp).
    let argument = |index: usize| unsafe {
        if index < 5 {
            *registers.add(index)
        } else {
            *stack.add(index - 5)
        }
    };
    let mut argv = [std::ptr::null::<c_char>(); MAX_ARGS];
    let mut count = 0;
    while count < MAX_ARGS - 1 {
        let value = argument(count);
        if value == 0 {
            break;
        }
        argv[count] = value as *const c_char;
        count += 1;
    }
    if count == MAX_ARGS - 1 {
        // SAFETY: sets this thread's errno.
        unsafe { *libc::__errno_location() = libc::E2BIG };
        return -1;
    }
    // SAFETY: argv is NULL-terminated; the interposed exec functions have the libc contract.
    unsafe {
        match kind {
            EXECLP => super::exec::execvp(path, argv.as_ptr()),
            EXECLE => super::exec::execve(path, argv.as_ptr(), argument(count + 1) as *const *const c_char),
            _ => super::exec::execv(path, argv.as_ptr()),
        }
    }
}

macro_rules! variadic_exec_entry {
    ($name:ident, $kind:expr) => {
        /// # Safety
        /// Same contract as libc's function of this name.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, arg: *const c_char) -> c_int {
            core::arch::naked_asm!(
                "push rbp",
                "mov rbp, rsp",
                "sub rsp, 48",
                "mov [rsp], rsi",
                "mov [rsp + 8], rdx",
                "mov [rsp + 16], rcx",
                "mov [rsp + 24], r8",
                "mov [rsp + 32], r9",
                "mov rsi, rsp",
                "lea rdx, [rbp + 16]",
                "mov ecx, {kind}",
                "call {helper}",
                "leave",
                "ret",
                kind = const $kind,
                helper = sym exec_variadic,
            )
        }
    };
}

variadic_exec_entry!(execl, EXECL);
variadic_exec_entry!(execlp, EXECLP);
variadic_exec_entry!(execle, EXECLE);
