//! The program's own dispositions of the signals sigtrace keeps a handler on (the sampling
//! signal and the fatal ones), and forwarding signals that are not ours to them.
//!
//! The interposed `sigaction` records what the program asks for here instead of replacing
//! sigtrace's handler; sigtrace's handlers forward every signal that is not theirs. Each
//! signal's entry is a small seqlock: writers (the `sigaction` wrapper) make it odd while they
//! update it, readers (signal handlers) retry until they read an even, unchanged sequence.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Signals 1..=64.
const SIGNALS: usize = 65;
const MASK_WORDS: usize = std::mem::size_of::<libc::sigset_t>() / 8;

/// A copy of a `struct sigaction` as the program set it.
#[derive(Clone, Copy)]
pub struct ProgramAction {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: usize,
    pub flags: i32,
    pub mask: libc::sigset_t,
}

struct Entry {
    sequence: AtomicU64,
    handler: AtomicUsize,
    flags: AtomicU64,
    mask: [AtomicU64; MASK_WORDS],
    /// True once the signal is managed here (sigtrace installed its own handler for it).
    managed: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Entry = Entry {
    sequence: AtomicU64::new(0),
    handler: AtomicUsize::new(0),
    flags: AtomicU64::new(0),
    mask: [const { AtomicU64::new(0) }; MASK_WORDS],
    managed: AtomicBool::new(false),
};

static ENTRIES: [Entry; SIGNALS] = [EMPTY; SIGNALS];
static WRITER: AtomicBool = AtomicBool::new(false);

fn entry(signal: i32) -> Option<&'static Entry> {
    usize::try_from(signal).ok().filter(|&s| s > 0).and_then(|s| ENTRIES.get(s))
}

/// True when sigtrace keeps its handler on `signal` and the program's action lives here.
/// Async-signal-safe.
pub fn is_managed(signal: i32) -> bool {
    entry(signal).is_some_and(|e| e.managed.load(Ordering::Acquire))
}

/// Starts managing `signal`, with `previous` (what was installed before sigtrace) as the
/// program's action. Not for the handler.
pub fn manage(signal: i32, previous: &libc::sigaction) {
    set(signal, previous);
    if let Some(entry) = entry(signal) {
        entry.managed.store(true, Ordering::Release);
    }
}

/// Records the program's new action for a managed signal. Any thread (the `sigaction` wrapper,
/// or a forwarding handler honouring `SA_RESETHAND`). Async-signal-safe.
///
/// Every signal is blocked on this thread while the entry's sequence is odd: a handler that
/// interrupted the write here and forwarded its signal would otherwise wait in [`get`] for a
/// write that cannot finish until it returns, and hang the program.
pub fn set(signal: i32, action: &libc::sigaction) {
    let Some(entry) = entry(signal) else { return };
    // SAFETY: sigset_t is plain data; sigfillset initialises `all`, and rt_sigprocmask (the raw
    // system call: the interposed wrappers would keep the sampling signal open) only reads
    // `all` and writes `previous`, both valid for the call.
    let previous = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &all as *const libc::sigset_t, &mut previous as *mut libc::sigset_t, 8);
        previous
    };
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
    // SAFETY: sigset_t is plain data of MASK_WORDS 64-bit words.
    let words: [u64; MASK_WORDS] = unsafe { std::mem::transmute_copy(&action.sa_mask) };
    for (slot, word) in entry.mask.iter().zip(words) {
        slot.store(word, Ordering::Relaxed);
    }
    entry.sequence.fetch_add(1, Ordering::AcqRel);
    WRITER.store(false, Ordering::Release);
    // SAFETY: restores the mask saved above; `previous` is valid for the call.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &previous as *const libc::sigset_t, std::ptr::null_mut::<libc::sigset_t>(), 8) };
}

/// The program's current action for `signal`. Async-signal-safe.
pub fn get(signal: i32) -> Option<ProgramAction> {
    let entry = entry(signal)?;
    loop {
        let before = entry.sequence.load(Ordering::Acquire);
        let handler = entry.handler.load(Ordering::Relaxed);
        let flags = entry.flags.load(Ordering::Relaxed) as u32 as i32;
        let mut words = [0u64; MASK_WORDS];
        for (word, slot) in words.iter_mut().zip(&entry.mask) {
            *word = slot.load(Ordering::Relaxed);
        }
        if before & 1 == 0 && entry.sequence.load(Ordering::Acquire) == before {
            // SAFETY: sigset_t is plain data of MASK_WORDS 64-bit words.
            let mask: libc::sigset_t = unsafe { std::mem::transmute_copy(&words) };
            return Some(ProgramAction { handler, flags, mask });
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
    Some(out)
}

/// libc's `sigaction`.
pub type SigactionFn = unsafe extern "C" fn(libc::c_int, *const libc::sigaction, *mut libc::sigaction) -> libc::c_int;
/// An `SA_SIGINFO` handler.
pub type SiginfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Installs `handler` for `signal` (`SA_SIGINFO | SA_RESTART | extra_flags`, the signal blocked
/// while it runs) through the real `sigaction`, and manages the signal from then on with the
/// previous action as the program's. Not for the handler.
pub fn install_handler(signal: i32, handler: SiginfoHandler, extra_flags: i32, sigaction: SigactionFn) -> std::io::Result<()> {
    // SAFETY: sigaction structs are plain data; zeroed is a valid start. The handler has the
    // SA_SIGINFO signature and sa_mask is initialised by sigemptyset.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        let mut previous: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | extra_flags;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, signal);
        if sigaction(signal, &action, &mut previous) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if previous.sa_sigaction != handler as usize && !is_managed(signal) {
            manage(signal, &previous);
        }
    }
    Ok(())
}

/// What forwarding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// The program's handler ran (or the signal was ignored, as the program asked).
    Handled,
    /// The program's action is the default one: the caller must carry it out.
    Default,
}

/// Runs the program's action for a signal sigtrace does not consume: calls its handler with
/// its `SA_SIGINFO` convention, its mask added while it runs, and `SA_RESETHAND` honoured.
/// Async-signal-safe.
///
/// # Safety
/// Call only from a signal handler, with the kernel's `info` and `ucontext` for `signal`.
pub unsafe fn forward(signal: i32, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) -> Forwarded {
    let Some(action) = get(signal) else { return Forwarded::Default };
    match action.handler {
        libc::SIG_DFL => return Forwarded::Default,
        libc::SIG_IGN => return Forwarded::Handled,
        _ => {}
    }
    if action.flags & libc::SA_RESETHAND != 0 {
        // SAFETY: sigaction is plain data; zeroed with SIG_DFL (0) is the default action.
        set(signal, &unsafe { std::mem::zeroed() });
    }
    // SAFETY: sigset_t is plain data; zeroed is valid before rt_sigprocmask fills it.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut mask = action.mask;
    // SAFETY: valid sigset pointers; rt_sigprocmask is async-signal-safe. The program's handler
    // runs with its own mask added (and its signal blocked unless SA_NODEFER), as the kernel
    // would have run it.
    unsafe {
        if action.flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, signal);
        }
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &mask as *const libc::sigset_t, &mut previous as *mut libc::sigset_t, 8);
        if action.flags & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(action.handler);
            handler(signal, info, ucontext);
        } else {
            let handler: extern "C" fn(libc::c_int) = std::mem::transmute(action.handler);
            handler(signal);
        }
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &previous as *const libc::sigset_t, std::ptr::null_mut::<libc::sigset_t>(), 8);
    }
    Forwarded::Handled
}
