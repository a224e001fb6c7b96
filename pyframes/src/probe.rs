//! A read that recovers from a fault: a copy routine in assembly whose one load instruction has
//! a known address, and a landing pad sigtrace's SIGSEGV/SIGBUS handler sends the thread to
//! when that load faults ([`recover`]). A few nanoseconds per read where `process_vm_readv`
//! costs a system call.
//!
//! A probe is only safe while a fault meets sigtrace's handler, so every probe runs inside a
//! [`Session`], which exists only when:
//! * sigtrace's handler is the one in the kernel for both SIGSEGV and SIGBUS ([`set_ours`]:
//!   the signal dispositions call it whenever they put sigtrace's handler in or take it out;
//!   taking it out first waits for every session in flight to end, so no probe can fault into
//!   the program's handler);
//! * the interrupted thread does not block SIGSEGV or SIGBUS (a fault while blocked kills the
//!   process whatever the handler): the caller checks the interrupted mask ([`unblocked`]).
//!
//! A session also asks the kernel (two system calls) whether its actions for both signals are
//! still sigtrace's handler: one put in by a path sigtrace does not see (a raw `rt_sigaction`)
//! ends probes from the next sample on; only a change inside one walk's microseconds escapes.
//! Where any check fails the caller reads by `process_vm_readv` instead ([`crate::read::copy`]).
//!
//! Only x86_64 has the routine; elsewhere no session ever starts.

use std::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};

/// Bit per signal: sigtrace's handler is the kernel's action for SIGSEGV (1), SIGBUS (2).
static OURS: AtomicU32 = AtomicU32::new(0);
/// The handler's address for SIGSEGV, SIGBUS: what the kernel must report before a session.
static HANDLERS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
/// Sessions running now (any thread).
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
const BOTH: u32 = 3;

fn bit(signal: i32) -> u32 {
    match signal {
        libc::SIGSEGV => 1,
        libc::SIGBUS => 2,
        _ => 0,
    }
}

/// Records whether sigtrace's handler, at address `handler`, is (now) the kernel's action for
/// `signal` (other signals are ignored). Call with `Some` right after putting it in; with `None`
/// right before taking it out: then this waits (at most about a second) until no session is in
/// flight, so that no probe meets the program's handler. Not for the handler.
pub fn set_ours(signal: i32, handler: Option<usize>) {
    let bit = bit(signal);
    if bit == 0 || !ARCH_HAS_PROBE {
        return;
    }
    if let Some(handler) = handler {
        HANDLERS[bit as usize - 1].store(handler, Ordering::SeqCst);
        OURS.fetch_or(bit, Ordering::SeqCst);
        return;
    }
    OURS.fetch_and(!bit, Ordering::SeqCst);
    // A session checks OURS after counting itself in (both SeqCst): from here on no new one
    // starts, and those that started before end within microseconds (a walk takes no lock).
    // The bound only matters if this runs in a handler that interrupted a session on the same
    // thread.
    let pause = libc::timespec { tv_sec: 0, tv_nsec: 100_000 };
    for _ in 0..10_000 {
        if IN_FLIGHT.load(Ordering::SeqCst) == 0 {
            return;
        }
        // SAFETY: nanosleep on a valid timespec.
        unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
    }
}

/// Forgets that sigtrace's handler is in the kernel for `signal`, without waiting (a dying
/// process's handler resetting it). Async-signal-safe.
pub fn forget_ours(signal: i32) {
    OURS.fetch_and(!bit(signal), Ordering::SeqCst);
}

/// A forked child has only the forking thread: no session is in flight. Async-signal-safe.
pub fn after_fork_in_child() {
    // Written only when set: a forked child copies each page it writes.
    if IN_FLIGHT.load(Ordering::SeqCst) != 0 {
        IN_FLIGHT.store(0, Ordering::SeqCst);
    }
}

/// True when the interrupted context `ucontext` blocks neither SIGSEGV nor SIGBUS.
/// Async-signal-safe.
///
/// # Safety
/// `ucontext` is null or a signal handler's valid `ucontext_t`.
pub unsafe fn unblocked(ucontext: *const libc::c_void) -> bool {
    let context = ucontext.cast::<libc::ucontext_t>();
    if context.is_null() {
        return false;
    }
    // SAFETY: a valid ucontext (caller); sigismember only reads the set.
    unsafe {
        let mask = &(*context).uc_sigmask;
        libc::sigismember(mask, libc::SIGSEGV) == 0 && libc::sigismember(mask, libc::SIGBUS) == 0
    }
}

/// True when the kernel's action for SIGSEGV and SIGBUS is sigtrace's handler: one installed
/// by a path sigtrace does not see (a raw `rt_sigaction`, as Go's runtime makes) forbids
/// probes from the next sample on. Two system calls. Async-signal-safe.
fn kernel_agrees() -> bool {
    [libc::SIGSEGV, libc::SIGBUS].iter().zip(&HANDLERS).all(|(&signal, handler)| {
        // The kernel's `struct sigaction` (x86_64): handler, flags, restorer, mask.
        let mut action = [0u64; 4];
        // SAFETY: a null new action only reads the current one into `action`, 32 bytes, with
        // the kernel's 8-byte signal set.
        let read = unsafe { libc::syscall(libc::SYS_rt_sigaction, signal, std::ptr::null::<u64>(), action.as_mut_ptr(), 8) } == 0;
        read && action[0] == handler.load(Ordering::Relaxed) as u64
    })
}

/// Probes may run while this lives (see the module doc).
pub struct Session(());

impl Session {
    /// A session, when sigtrace's handler is the kernel's for both fault signals. The caller
    /// has checked the interrupted mask ([`unblocked`]). Async-signal-safe.
    pub fn begin() -> Option<Session> {
        if !ARCH_HAS_PROBE {
            return None;
        }
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if OURS.load(Ordering::SeqCst) == BOTH && kernel_agrees() {
            Some(Session(()))
        } else {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            None
        }
    }

    /// Copies `out.len()` bytes at `address` into `out` (a multiple of 8 bytes is copied in
    /// words, the rest byte by byte); false when a load faulted. Async-signal-safe.
    pub fn copy(&self, address: u64, out: &mut [u8]) -> bool {
        if address == 0 {
            return false;
        }
        // SAFETY: a session exists: a fault of the routine's load is recovered (module doc);
        // `out` is writable for its length.
        unsafe { arch::probe_copy(out.as_mut_ptr(), address as *const u8, out.len()) != 0 }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Called first by sigtrace's SIGSEGV/SIGBUS handler: when the fault is a probe's load, sends
/// the thread to the routine's landing pad (which returns "failed") and returns true; the
/// handler then returns at once. Any other fault: false, nothing changed. Async-signal-safe.
///
/// # Safety
/// `info` and `ucontext` are the handler's valid arguments.
pub unsafe fn recover(info: *const libc::siginfo_t, ucontext: *mut libc::c_void) -> bool {
    if !ARCH_HAS_PROBE || info.is_null() || ucontext.is_null() {
        return false;
    }
    // SAFETY: the kernel's siginfo (caller).
    if unsafe { (*info).si_code } <= 0 {
        return false; // sent by a process (kill, tgkill), not a fault
    }
    // SAFETY: the kernel's ucontext (caller).
    unsafe { arch::redirect(ucontext.cast()) }
}

#[cfg(target_arch = "x86_64")]
const ARCH_HAS_PROBE: bool = true;
#[cfg(not(target_arch = "x86_64"))]
const ARCH_HAS_PROBE: bool = false;

#[cfg(target_arch = "x86_64")]
mod arch {
    // probe_copy(dst = rdi, src = rsi, len = rdx) -> rax: 1 copied, 0 a load faulted.
    // The only loads of `src` are at the two `_load` labels; the landing pad returns 0.
    std::arch::global_asm!(
        ".pushsection .text.sigtrace_probe,\"ax\",@progbits",
        ".p2align 4",
        ".globl sigtrace_probe_copy",
        ".hidden sigtrace_probe_copy",
        ".type sigtrace_probe_copy,@function",
        "sigtrace_probe_copy:",
        "    cmp rdx, 8",
        "    jb 3f",
        "2:",
        ".globl sigtrace_probe_word_load",
        ".hidden sigtrace_probe_word_load",
        "sigtrace_probe_word_load:",
        "    mov rax, qword ptr [rsi]",
        "    mov qword ptr [rdi], rax",
        "    add rsi, 8",
        "    add rdi, 8",
        "    sub rdx, 8",
        "    cmp rdx, 8",
        "    jae 2b",
        "3:",
        "    test rdx, rdx",
        "    jz 5f",
        "4:",
        ".globl sigtrace_probe_byte_load",
        ".hidden sigtrace_probe_byte_load",
        "sigtrace_probe_byte_load:",
        "    mov al, byte ptr [rsi]",
        "    mov byte ptr [rdi], al",
        "    inc rsi",
        "    inc rdi",
        "    dec rdx",
        "    jnz 4b",
        "5:",
        "    mov eax, 1",
        "    ret",
        ".globl sigtrace_probe_landing",
        ".hidden sigtrace_probe_landing",
        "sigtrace_probe_landing:",
        "    xor eax, eax",
        "    ret",
        ".size sigtrace_probe_copy, . - sigtrace_probe_copy",
        ".popsection",
    );

    extern "C" {
        fn sigtrace_probe_copy(dst: *mut u8, src: *const u8, len: usize) -> u64;
        static sigtrace_probe_word_load: u8;
        static sigtrace_probe_byte_load: u8;
        static sigtrace_probe_landing: u8;
    }

    /// The routine. Async-signal-safe.
    ///
    /// # Safety
    /// `dst` writable for `len` bytes; a fault of a load from `src` must meet [`super::recover`].
    #[inline]
    pub unsafe fn probe_copy(dst: *mut u8, src: *const u8, len: usize) -> u64 {
        // SAFETY: forwarded from the caller.
        unsafe { sigtrace_probe_copy(dst, src, len) }
    }

    /// Moves a thread stopped at a probe load to the landing pad. Async-signal-safe.
    ///
    /// # Safety
    /// `context` is a signal handler's valid ucontext.
    pub unsafe fn redirect(context: *mut libc::ucontext_t) -> bool {
        // The addresses of labels of the routine above (never read).
        let (word, byte, landing) = (
            std::ptr::addr_of!(sigtrace_probe_word_load) as u64,
            std::ptr::addr_of!(sigtrace_probe_byte_load) as u64,
            std::ptr::addr_of!(sigtrace_probe_landing) as u64,
        );
        // SAFETY: a valid ucontext (caller); the kernel restores RIP from it on return.
        let pc = unsafe { &mut (*context).uc_mcontext.gregs[libc::REG_RIP as usize] };
        if *pc as u64 != word && *pc as u64 != byte {
            return false;
        }
        *pc = landing as i64;
        true
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod arch {
    pub unsafe fn probe_copy(_dst: *mut u8, _src: *const u8, _len: usize) -> u64 {
        0
    }
    pub unsafe fn redirect(_context: *mut libc::ucontext_t) -> bool {
        false
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// SIGSEGV and SIGBUS go to a handler that only recovers probes (the test process has no
    /// other use for them), as sigtrace's own does first.
    fn install_recovering_handler() {
        extern "C" fn on_fault(_signal: i32, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
            // SAFETY: the kernel's arguments.
            if !unsafe { recover(info, ucontext) } {
                // SAFETY: restoring the default and returning re-raises the fault: the test dies.
                unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
            }
        }
        for signal in [libc::SIGSEGV, libc::SIGBUS] {
            // SAFETY: a valid SA_SIGINFO action.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fault as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize;
                action.sa_flags = libc::SA_SIGINFO;
                assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
            }
            set_ours(signal, Some(on_fault as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize));
        }
    }

    #[test]
    fn a_probe_copies_mapped_memory_and_recovers_from_unmapped() {
        install_recovering_handler();
        let session = Session::begin().expect("both handlers are ours");
        let source: Vec<u8> = (0..=100).collect();
        for len in [0, 1, 7, 8, 9, 64, 101] {
            let mut out = vec![0u8; len];
            assert!(session.copy(source.as_ptr() as u64, &mut out));
            assert_eq!(out, source[..len]);
        }
        // A page mapped then unmapped, and a page with no access at all.
        // SAFETY: anonymous mappings of our own, unmapped/protected before the reads.
        let (gone, locked) = unsafe {
            let gone = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            let locked = libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            libc::munmap(gone, 4096);
            libc::mprotect(locked.cast::<u8>().add(4096).cast(), 4096, libc::PROT_NONE);
            (gone as u64, locked as u64)
        };
        let mut out = [0u8; 16];
        assert!(!session.copy(gone, &mut out));
        assert!(!session.copy(gone + 3, &mut out[..5]), "byte loads recover too");
        // Readable up to the page end, then a fault half-way through the copy.
        assert!(session.copy(locked + 4096 - 16, &mut out));
        assert!(!session.copy(locked + 4096 - 8, &mut out));
        assert!(!session.copy(1 << 46, &mut out));
        // Still copying after the faults.
        assert!(session.copy(source.as_ptr() as u64, &mut out));
        assert_eq!(out, source[..16]);
        drop(session);
        let handler = HANDLERS[1].load(Ordering::SeqCst);
        set_ours(libc::SIGBUS, None);
        assert!(Session::begin().is_none(), "no session once a fault handler is not ours");
        set_ours(libc::SIGBUS, Some(handler));
        assert!(Session::begin().is_some());
        // A handler put in by a path sigtrace does not see (here libc's sigaction directly).
        // SAFETY: SIG_DFL for SIGBUS, then the test's handler again.
        unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &default, &mut previous);
            assert!(Session::begin().is_none(), "the kernel's action is checked");
            libc::sigaction(libc::SIGBUS, &previous, std::ptr::null_mut());
        }
        assert!(Session::begin().is_some());
    }
}
