//! A signal of the sampling signal's number that is not a sample and arrives while the program
//! has it "blocked": held on the thread (its `siginfo_t` kept, later ones merged, as the kernel
//! does for a pending standard signal) and queued again to the thread when the program
//! unblocks it.

use super::mask::{MASKED_SIGNAL, PROGRAM_BLOCKS};
use std::cell::Cell;
use std::sync::atomic::Ordering;

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
