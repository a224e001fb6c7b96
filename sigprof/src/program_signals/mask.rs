//! The sampling signal's mask as the program sees it: never blocked in the kernel on the
//! program's behalf (samples would stop and pile up), but recorded per thread; the interposed
//! mask functions report the kernel's mask plus that record. New threads inherit the creator's
//! record; exec passes a real block (and a held signal, pending) on to the next image.
//!
//! A signal of the sampling signal's number that is not a sample and arrives while the program
//! has it "blocked" is held on the thread (its `siginfo_t` kept, later ones merged, as the
//! kernel does for a pending standard signal) and queued again to the thread when the program
//! unblocks it.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};

/// The signal whose blocking the program sees through the per-thread record (the sampling
/// signal; 0 until [`keep_mask_view`]).
pub(super) static MASKED_SIGNAL: AtomicI32 = AtomicI32::new(0);

thread_local! {
    /// True while the program has asked for [`MASKED_SIGNAL`] to be blocked on this thread.
    pub(super) static PROGRAM_BLOCKS: Cell<bool> = const { Cell::new(false) };
}

/// The sampling signal whose mask the program sees through the per-thread record, or 0.
/// Async-signal-safe.
pub fn masked_signal() -> i32 {
    MASKED_SIGNAL.load(Ordering::Acquire)
}

/// True when the program has asked for the masked signal to be blocked on this thread.
/// Async-signal-safe.
pub fn program_blocks() -> bool {
    PROGRAM_BLOCKS.get()
}

/// Sets the calling thread's record (a new thread inherits its creator's).
pub fn set_program_blocks(blocked: bool) {
    PROGRAM_BLOCKS.set(blocked);
}

/// Runs `create` (libc's `pthread_create` for a thread that does not go through sigtrace's
/// trampoline) with the masked signal blocked in the kernel while the program blocks it, so
/// that the new thread starts with the program's mask. Not for the handler.
pub fn inheriting_program_block<T>(create: impl FnOnce() -> T) -> T {
    let signal = masked_signal();
    if signal == 0 || !PROGRAM_BLOCKS.get() {
        return create();
    }
    // SAFETY: sigset_t is plain data; the kernel fills it.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    kernel_sigmask(libc::SIG_BLOCK, Some(&set_of(signal)), Some(&mut old));
    let result = create();
    kernel_sigmask(libc::SIG_SETMASK, Some(&old), None);
    result
}

pub(super) fn set_of(signal: i32) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        set
    }
}

/// The kernel's `rt_sigprocmask` (the interposed wrappers are not for sigtrace's own changes).
/// Async-signal-safe.
pub(super) fn kernel_sigmask(how: i32, set: Option<&libc::sigset_t>, previous: Option<&mut libc::sigset_t>) {
    let set = set.map_or(std::ptr::null(), |s| s as *const libc::sigset_t);
    let previous = previous.map_or(std::ptr::null_mut(), |p| p as *mut libc::sigset_t);
    // SAFETY: null or valid sigset pointers, 8 bytes of mask as the kernel expects.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, how, set, previous, 8) };
}

/// Start-up, on the thread running the constructor once sigtrace's handler is installed:
/// from now on the program's blocking of `signal` is recorded per thread instead of done in
/// the kernel. If the kernel blocks it now (inherited across exec), the record says blocked
/// and the kernel lets it through (a pending one is then held until the program unblocks it).
pub fn keep_mask_view(signal: i32) {
    // SAFETY: sigset_t is plain data; the kernel fills it.
    let mut current: libc::sigset_t = unsafe { std::mem::zeroed() };
    kernel_sigmask(libc::SIG_BLOCK, None, Some(&mut current));
    MASKED_SIGNAL.store(signal, Ordering::Release);
    // SAFETY: sigismember reads a valid set.
    if unsafe { libc::sigismember(&current, signal) } == 1 {
        PROGRAM_BLOCKS.set(true);
        kernel_sigmask(libc::SIG_UNBLOCK, Some(&set_of(signal)), None);
    }
}

/// A libc mask function (`pthread_sigmask` or `sigprocmask`: 0 on success).
pub type SigmaskFn = unsafe extern "C" fn(libc::c_int, *const libc::sigset_t, *mut libc::sigset_t) -> libc::c_int;

/// The program's `pthread_sigmask`/`sigprocmask(how, set, previous)` with libc's `real`: the
/// masked signal is recorded for this thread instead of blocked in the kernel, `previous`
/// reports it as the program set it, and a held signal is let in when the program unblocks it.
///
/// # Safety
/// Same contract as `pthread_sigmask`.
pub unsafe fn program_sigmask(how: libc::c_int, set: *const libc::sigset_t, previous: *mut libc::sigset_t, real: SigmaskFn) -> libc::c_int {
    let signal = masked_signal();
    if signal == 0 {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(how, set, previous) };
    }
    let was = PROGRAM_BLOCKS.get();
    // SAFETY: the caller's non-null set is a valid sigset_t.
    let (wants, filtered) = match unsafe { set.as_ref() } {
        None => (was, None),
        Some(requested) => {
            // SAFETY: sigismember reads a valid set.
            let member = unsafe { libc::sigismember(requested, signal) } == 1;
            let mut without = *requested;
            // SAFETY: sigdelset on our own copy.
            unsafe { libc::sigdelset(&mut without, signal) };
            match how {
                libc::SIG_BLOCK => (was || member, Some(without)),
                libc::SIG_UNBLOCK => (was && !member, None),
                libc::SIG_SETMASK => (member, Some(without)),
                // SAFETY: forwarding the caller's arguments (libc reports EINVAL).
                _ => return unsafe { real(how, set, previous) },
            }
        }
    };
    if wants {
        PROGRAM_BLOCKS.set(true);
    }
    let pass = filtered.as_ref().map_or(set, |f| f as *const libc::sigset_t);
    // SAFETY: forwarding the caller's arguments, the set possibly without the masked signal.
    let result = unsafe { real(how, pass, previous) };
    if result != 0 {
        PROGRAM_BLOCKS.set(was);
        return result;
    }
    if was && !previous.is_null() {
        // SAFETY: libc just wrote the caller's valid `previous`.
        unsafe { libc::sigaddset(previous, signal) };
    }
    if !wants {
        PROGRAM_BLOCKS.set(false);
        release_held(signal);
    }
    result
}

/// The program's `sigpending(set)` with libc's `real`: a held signal is pending.
///
/// # Safety
/// Same contract as `sigpending`.
pub unsafe fn program_sigpending(set: *mut libc::sigset_t, real: unsafe extern "C" fn(*mut libc::sigset_t) -> libc::c_int) -> libc::c_int {
    // SAFETY: forwarding the caller's argument.
    let result = unsafe { real(set) };
    let signal = masked_signal();
    if result == 0 && signal != 0 && !set.is_null() && held_here() {
        // SAFETY: libc just wrote the caller's valid set.
        unsafe { libc::sigaddset(set, signal) };
    }
    result
}

/// What [`mask_before_exec`] did, for [`mask_after_failed_exec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskForExec {
    blocked: bool,
    requeued: bool,
}

/// Before an exec: if the program blocks the masked signal on this thread, the kernel blocks it
/// for real (the next image inherits the block) and a held signal is queued again (it stays
/// pending across the exec, as it would have). Call after sigtrace's timers are stopped and
/// their pending signals discarded.
pub fn mask_before_exec() -> MaskForExec {
    let signal = masked_signal();
    if signal == 0 || !PROGRAM_BLOCKS.get() {
        return MaskForExec::default();
    }
    kernel_sigmask(libc::SIG_BLOCK, Some(&set_of(signal)), None);
    MaskForExec { blocked: true, requeued: release_held(signal) }
}

/// After an exec that failed: undoes [`mask_before_exec`] (the requeued signal is held again).
pub fn mask_after_failed_exec(state: MaskForExec) {
    let signal = masked_signal();
    if !state.blocked || signal == 0 {
        return;
    }
    if state.requeued {
        // SAFETY: siginfo_t is plain data; rt_sigtimedwait with a zero timeout only dequeues a
        // pending signal of the set into `taken`.
        unsafe {
            let mut taken: libc::siginfo_t = std::mem::zeroed();
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            let set = set_of(signal);
            if libc::syscall(libc::SYS_rt_sigtimedwait, &set as *const libc::sigset_t, &mut taken as *mut libc::siginfo_t, &zero as *const libc::timespec, 8)
                == signal as libc::c_long
            {
                hold(std::mem::transmute_copy::<libc::siginfo_t, [u64; SIGINFO_WORDS]>(&taken));
            }
        }
    }
    kernel_sigmask(libc::SIG_UNBLOCK, Some(&set_of(signal)), None);
}

/// `siginfo_t` as 64-bit words.
pub(super) const SIGINFO_WORDS: usize = std::mem::size_of::<libc::siginfo_t>() / 8;

thread_local! {
    /// True while a signal of that number that is not a sample waits for the program to unblock it.
    static HELD: Cell<bool> = const { Cell::new(false) };
    /// The held signal's `siginfo_t`.
    static HELD_INFO: Cell<[u64; SIGINFO_WORDS]> = const { Cell::new([0; SIGINFO_WORDS]) };
    /// The thread that held it: a forked child (whose pending signals start empty) or a
    /// `vfork` child (running on its parent's thread-locals) is another thread.
    static HELD_TID: Cell<i64> = const { Cell::new(0) };
}

fn gettid() -> i64 {
    // SAFETY: gettid is a plain system call.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// True when a signal is held for the calling thread. Async-signal-safe.
pub(super) fn held_here() -> bool {
    HELD.get() && HELD_TID.get() == gettid()
}

/// Takes the held signal's `siginfo_t`, if one is held for the calling thread.
/// Async-signal-safe.
pub(super) fn take_held() -> Option<[u64; SIGINFO_WORDS]> {
    if !held_here() {
        return None;
    }
    HELD.set(false);
    Some(HELD_INFO.get())
}

/// Holds a signal with this `siginfo_t` for the calling thread. Async-signal-safe.
pub(super) fn hold(words: [u64; SIGINFO_WORDS]) {
    HELD_INFO.set(words);
    HELD_TID.set(gettid());
    HELD.set(true);
}

/// Holds a signal the program has blocked (in its view) instead of running its action: keeps
/// its `siginfo_t` (the first one: later ones merge, as for a pending standard signal).
/// Returns whether it was held. Async-signal-safe.
///
/// # Safety
/// `info` is null or the kernel's `siginfo_t` for `signal`.
pub(super) unsafe fn hold_if_program_blocks(signal: i32, info: *const libc::siginfo_t) -> bool {
    if signal != MASKED_SIGNAL.load(Ordering::Relaxed) || !PROGRAM_BLOCKS.get() {
        return false;
    }
    if !held_here() {
        let mut words = [0u64; SIGINFO_WORDS];
        if info.is_null() {
            words[0] = signal as u32 as u64;
        } else {
            // SAFETY: the caller's siginfo_t is valid; it is plain data of SIGINFO_WORDS words.
            words = unsafe { std::ptr::read_unaligned(info.cast::<[u64; SIGINFO_WORDS]>()) };
        }
        hold(words);
    }
    true
}

/// Queues the held signal again to the calling thread with its own `siginfo_t` (the kernel
/// allows any code to oneself), if one is held. Async-signal-safe.
pub(super) fn release_held(signal: i32) -> bool {
    let Some(info) = take_held() else { return false };
    // SAFETY: plain system calls on the calling thread; `info` is a full siginfo_t.
    unsafe {
        let (pid, tid) = (libc::getpid(), gettid());
        if libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, signal, info.as_ptr()) != 0 {
            libc::syscall(libc::SYS_tgkill, pid, tid, signal);
        }
    }
    true
}
