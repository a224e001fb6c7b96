//! The program's recorded action for each watched signal: one small seqlock per signal (odd
//! while the `sigaction` wrapper writes it, readers retry), and the action as the kernel would
//! report it in `oldact`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Signals 1..=64.
pub(super) const SIGNALS: usize = 65;
const MASK_WORDS: usize = std::mem::size_of::<libc::sigset_t>() / 8;
/// Set by glibc on every action it passes to the kernel (and reported back in `oldact`).
pub(super) const SA_RESTORER: i32 = 0x0400_0000;

/// Not watched: the interposed functions pass it to libc unchanged.
pub const UNMANAGED: u8 = 0;
/// sigtrace's handler always installed; the program's action recorded and forwarded to.
pub const KEPT: u8 = 1;
/// sigtrace's handler installed only while the program's action is `SIG_DFL`.
pub const WHILE_DEFAULT: u8 = 2;

/// A copy of a `struct sigaction` as the program set it.
#[derive(Clone, Copy)]
pub struct ProgramAction {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: usize,
    pub flags: i32,
    pub mask: libc::sigset_t,
    /// The `sa_restorer` the kernel would report.
    pub restorer: usize,
}

pub(super) struct Entry {
    sequence: AtomicU64,
    handler: AtomicUsize,
    flags: AtomicU64,
    mask: [AtomicU64; MASK_WORDS],
    restorer: AtomicUsize,
    /// [`UNMANAGED`], [`KEPT`] or [`WHILE_DEFAULT`].
    pub(super) mode: AtomicU8,
    /// sigtrace's handler for this signal (what the kernel holds while the program's action is
    /// `SIG_DFL`, for a [`WHILE_DEFAULT`] signal).
    pub(super) ours: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Entry = Entry {
    sequence: AtomicU64::new(0),
    handler: AtomicUsize::new(0),
    flags: AtomicU64::new(0),
    mask: [const { AtomicU64::new(0) }; MASK_WORDS],
    restorer: AtomicUsize::new(0),
    mode: AtomicU8::new(UNMANAGED),
    ours: AtomicUsize::new(0),
};

static ENTRIES: [Entry; SIGNALS] = [EMPTY; SIGNALS];
static WRITER: AtomicBool = AtomicBool::new(false);

pub(super) fn entry(signal: i32) -> Option<&'static Entry> {
    usize::try_from(signal).ok().filter(|&s| s > 0).and_then(|s| ENTRIES.get(s))
}

/// True when sigtrace watches `signal` and the program's action lives here. Async-signal-safe.
pub fn is_managed(signal: i32) -> bool {
    mode(signal) != UNMANAGED
}

/// How sigtrace watches `signal`: [`UNMANAGED`], [`KEPT`] or [`WHILE_DEFAULT`]. Async-signal-safe.
pub fn mode(signal: i32) -> u8 {
    entry(signal).map_or(UNMANAGED, |e| e.mode.load(Ordering::Acquire))
}

/// Starts managing `signal` in `mode`, with `previous` (what was installed before sigtrace) as
/// the program's action. Not for the handler.
pub(super) fn manage(signal: i32, previous: &libc::sigaction, mode: u8, ours: usize) {
    let blocked = block_all_signals();
    manage_with_signals_blocked(signal, previous, mode, ours);
    restore_signal_mask(&blocked);
}

/// [`manage`] for a caller that has blocked every signal on its thread itself.
pub(super) fn manage_with_signals_blocked(signal: i32, previous: &libc::sigaction, mode: u8, ours: usize) {
    set_with_signals_blocked(signal, previous);
    if let Some(entry) = entry(signal) {
        entry.ours.store(ours, Ordering::Relaxed);
        entry.mode.store(mode, Ordering::Release);
    }
}

/// glibc's signal-return trampoline, as the kernel reports it in `oldact` (0 until known).
pub(super) static RESTORER: AtomicUsize = AtomicUsize::new(0);

/// `action` as the kernel would report it back after glibc's `sigaction` installed it:
/// `SA_RESTORER` and glibc's restorer added, `SIGKILL` and `SIGSTOP` never in the mask.
pub fn as_kernel_reports(action: &libc::sigaction) -> libc::sigaction {
    let mut reported = *action;
    let restorer = RESTORER.load(Ordering::Relaxed);
    if restorer != 0 {
        reported.sa_flags |= SA_RESTORER;
        // SAFETY: `restorer` was read from the kernel's report of glibc's restorer, a function
        // of this type; the Option has the same layout as a (non-null) function pointer.
        reported.sa_restorer = unsafe { std::mem::transmute::<usize, Option<extern "C" fn()>>(restorer) };
    }
    // SAFETY: sigdelset on our own copy.
    unsafe {
        libc::sigdelset(&mut reported.sa_mask, libc::SIGKILL);
        libc::sigdelset(&mut reported.sa_mask, libc::SIGSTOP);
    }
    reported
}

/// Records the program's new action for a managed signal. Any thread (the `sigaction` wrapper,
/// or a forwarding handler honouring `SA_RESETHAND`). Async-signal-safe.
///
/// Every signal is blocked on this thread while the entry's sequence is odd: a handler that
/// interrupted the write here and forwarded its signal would otherwise wait in [`get`] for a
/// write that cannot finish until it returns, and hang the program.
pub fn set(signal: i32, action: &libc::sigaction) {
    if entry(signal).is_none() {
        return;
    }
    let previous = block_all_signals();
    set_with_signals_blocked(signal, action);
    restore_signal_mask(&previous);
}

/// [`set`] for a caller that has blocked every signal on its thread itself (see
/// [`block_all_signals`]). Async-signal-safe.
pub(super) fn set_with_signals_blocked(signal: i32, action: &libc::sigaction) {
    let Some(entry) = entry(signal) else { return };
    // Writers exclude each other; one that finds the lock taken for long (a handler calling
    // sigaction on top of an interrupted sigaction) goes ahead rather than deadlock.
    let mut spins = 0;
    while WRITER.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() && spins < 10_000 {
        spins += 1;
        std::hint::spin_loop();
    }
    entry.sequence.fetch_add(1, Ordering::AcqRel);
    entry.handler.store(action.sa_sigaction, Ordering::Relaxed);
    entry.flags.store(action.sa_flags as u32 as u64, Ordering::Relaxed);
    entry.restorer.store(action.sa_restorer.map_or(0, |f| f as usize), Ordering::Relaxed);
    // SAFETY: sigset_t is plain data of MASK_WORDS 64-bit words.
    let words: [u64; MASK_WORDS] = unsafe { std::mem::transmute_copy(&action.sa_mask) };
    for (slot, word) in entry.mask.iter().zip(words) {
        slot.store(word, Ordering::Relaxed);
    }
    entry.sequence.fetch_add(1, Ordering::AcqRel);
    WRITER.store(false, Ordering::Release);
}

/// Blocks every signal on the calling thread and returns the mask it had. The raw system call:
/// the interposed wrappers would keep the sampling signal open. Async-signal-safe.
pub(super) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset initialises `all`, and rt_sigprocmask only
    // reads `all` and writes `previous`, both valid for the call.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &all as *const libc::sigset_t, &mut previous as *mut libc::sigset_t, 8);
        previous
    }
}

/// Puts back the mask [`block_all_signals`] returned. Async-signal-safe.
pub(super) fn restore_signal_mask(previous: &libc::sigset_t) {
    // SAFETY: `previous` is a valid sigset for the call.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, previous as *const libc::sigset_t, std::ptr::null_mut::<libc::sigset_t>(), 8) };
}

/// The program's current action for `signal`. Async-signal-safe.
pub fn get(signal: i32) -> Option<ProgramAction> {
    let entry = entry(signal)?;
    loop {
        let before = entry.sequence.load(Ordering::Acquire);
        let handler = entry.handler.load(Ordering::Relaxed);
        let flags = entry.flags.load(Ordering::Relaxed) as u32 as i32;
        let restorer = entry.restorer.load(Ordering::Relaxed);
        let mut words = [0u64; MASK_WORDS];
        for (word, slot) in words.iter_mut().zip(&entry.mask) {
            *word = slot.load(Ordering::Relaxed);
        }
        if before & 1 == 0 && entry.sequence.load(Ordering::Acquire) == before {
            // SAFETY: sigset_t is plain data of MASK_WORDS 64-bit words.
            let mask: libc::sigset_t = unsafe { std::mem::transmute_copy(&words) };
            return Some(ProgramAction { handler, flags, mask, restorer });
        }
        std::hint::spin_loop();
    }
}

/// The program's action as a `struct sigaction` (for `oldact` of the `sigaction` wrapper).
pub fn get_as_sigaction(signal: i32) -> Option<libc::sigaction> {
    let action = get(signal)?;
    // SAFETY: sigaction is plain data; zeroed is valid before the fields are set.
    let mut out: libc::sigaction = unsafe { std::mem::zeroed() };
    out.sa_sigaction = action.handler;
    out.sa_flags = action.flags;
    out.sa_mask = action.mask;
    // SAFETY: a recorded restorer is 0 or a function address read from the kernel's report.
    out.sa_restorer = unsafe { std::mem::transmute::<usize, Option<extern "C" fn()>>(action.restorer) };
    Some(out)
}
