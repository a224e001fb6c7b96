//! The program's own dispositions of the signals sigtrace watches, forwarding signals that are
//! not ours to them, and the program's view of its mask for the sampling signal.
//!
//! Two ways of watching a signal:
//! * [`KEPT`] (the sampling signal): sigtrace's handler stays in the kernel whatever the program
//!   installs. The interposed `sigaction` records what the program asks for here, and the
//!   handler forwards every signal that is not a sample to it.
//! * [`WHILE_DEFAULT`] (signals whose default action kills: SIGSEGV, SIGTERM, …): sigtrace's
//!   handler is in the kernel only while the program's action is `SIG_DFL`. A handler or
//!   `SIG_IGN` of the program goes straight to the kernel (it runs natively, with its own flags,
//!   mask and stack; an ignored signal never interrupts a system call), and sigtrace's handler
//!   comes back when the program returns to `SIG_DFL`. The kernel keeps `SIG_IGN` across exec.
//!
//! Each signal's entry is a small seqlock: writers (the `sigaction` wrapper) make it odd while
//! they update it, readers (signal handlers) retry until they read an even, unchanged sequence.
//! `oldact` reports the recorded action exactly as the kernel would have (`SA_RESTORER` and
//! glibc's restorer added, `SIGKILL`/`SIGSTOP` removed from the mask).
//!
//! **The mask.** The sampling signal is never blocked in the kernel on the program's behalf
//! (samples would stop and pile up). Instead each thread records whether the program asked for
//! it to be blocked ([`program_blocks`]); the interposed mask functions report the kernel's
//! mask plus that record. A signal of that number that is not a sample and arrives while the
//! program has it "blocked" is held on the thread (its `siginfo` kept, later ones merged, as
//! the kernel does for a pending standard signal) and queued again to the thread when the
//! program unblocks it; `sigpending` reports it. New threads inherit the creator's record;
//! exec passes a real block (and the held signal, pending) on to the next image.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Signals 1..=64.
const SIGNALS: usize = 65;
const MASK_WORDS: usize = std::mem::size_of::<libc::sigset_t>() / 8;
/// Set by glibc on every action it passes to the kernel (and reported back in `oldact`).
const SA_RESTORER: i32 = 0x0400_0000;

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

struct Entry {
    sequence: AtomicU64,
    handler: AtomicUsize,
    flags: AtomicU64,
    mask: [AtomicU64; MASK_WORDS],
    restorer: AtomicUsize,
    /// [`UNMANAGED`], [`KEPT`] or [`WHILE_DEFAULT`].
    mode: AtomicU8,
    /// sigtrace's handler for this signal (what the kernel holds while the program's action is
    /// `SIG_DFL`, for a [`WHILE_DEFAULT`] signal).
    ours: AtomicUsize,
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

fn entry(signal: i32) -> Option<&'static Entry> {
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
fn manage(signal: i32, previous: &libc::sigaction, mode: u8, ours: usize) {
    set(signal, previous);
    if let Some(entry) = entry(signal) {
        entry.ours.store(ours, Ordering::Relaxed);
        entry.mode.store(mode, Ordering::Release);
    }
}

/// glibc's signal-return trampoline, as the kernel reports it in `oldact` (0 until known).
static RESTORER: AtomicUsize = AtomicUsize::new(0);

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
    entry.restorer.store(action.sa_restorer.map_or(0, |f| f as usize), Ordering::Relaxed);
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

/// libc's `sigaction`.
pub type SigactionFn = unsafe extern "C" fn(libc::c_int, *const libc::sigaction, *mut libc::sigaction) -> libc::c_int;
/// An `SA_SIGINFO` handler.
pub type SiginfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The action sigtrace installs for `signal`: `handler` with `SA_SIGINFO | SA_RESTART |
/// SA_ONSTACK | extra_flags`, the signal blocked while it runs. `SA_ONSTACK` always: Go and
/// other runtimes with small stacks require every handler in the process to run on the
/// thread's alternate stack (a thread without one runs it on its own stack, as before).
fn our_action(signal: i32, handler: usize, extra_flags: i32) -> libc::sigaction {
    // SAFETY: sigaction is plain data; zeroed is a valid start; sa_mask is initialised by
    // sigemptyset before sigaddset.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK | extra_flags;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, signal);
        action
    }
}

/// Learns glibc's restorer from the kernel's report of `signal`'s action (just installed
/// through glibc). Not for the handler.
fn learn_restorer(signal: i32, sigaction: SigactionFn) {
    // SAFETY: sigaction is plain data; a null new action only reads the current one.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    if unsafe { sigaction(signal, std::ptr::null(), &mut current) } == 0 && current.sa_flags & SA_RESTORER != 0 {
        if let Some(restorer) = current.sa_restorer {
            RESTORER.store(restorer as usize, Ordering::Relaxed);
        }
    }
}

/// Installs `handler` for `signal` (see `our_action`) through the real `sigaction`, and keeps
/// it there for good ([`KEPT`]), with the previous action as the program's. Not for the handler.
pub fn install_handler(signal: i32, handler: SiginfoHandler, extra_flags: i32, sigaction: SigactionFn) -> std::io::Result<()> {
    let action = our_action(signal, handler as usize, extra_flags);
    // SAFETY: sigaction is plain data; zeroed is a valid start for the previous action.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; the handler has the SA_SIGINFO signature.
    if unsafe { sigaction(signal, &action, &mut previous) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    learn_restorer(signal, sigaction);
    if previous.sa_sigaction != handler as usize && !is_managed(signal) {
        manage(signal, &previous, KEPT, handler as usize);
    }
    Ok(())
}

/// Watches `signal` ([`WHILE_DEFAULT`]): installs `handler` only if the action in place is
/// `SIG_DFL`; a handler or `SIG_IGN` already there (inherited `SIG_IGN` as under `nohup`, or
/// installed by an earlier constructor) stays untouched and is the program's. Not for the handler.
pub fn watch_while_default(signal: i32, handler: SiginfoHandler, sigaction: SigactionFn) -> std::io::Result<()> {
    if is_managed(signal) {
        return Ok(());
    }
    // SAFETY: sigaction is plain data; a null new action only reads the current one.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    if unsafe { sigaction(signal, std::ptr::null(), &mut current) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if current.sa_sigaction == handler as usize {
        return Ok(());
    }
    manage(signal, &current, WHILE_DEFAULT, handler as usize);
    if current.sa_sigaction == libc::SIG_DFL {
        let action = our_action(signal, handler as usize, 0);
        // SAFETY: valid pointers; the handler has the SA_SIGINFO signature.
        if unsafe { sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The program's `sigaction(signal, action, oldact)` for a managed signal: records `action`
/// and puts into the kernel what the signal's mode asks for. Returns the previous action as the
/// program must see it, or an errno. `sigaction` is libc's. Not for the handler.
pub fn program_sigaction(signal: i32, action: Option<&libc::sigaction>, sigaction: SigactionFn) -> Result<libc::sigaction, i32> {
    let recorded = get_as_sigaction(signal).ok_or(libc::EINVAL)?;
    let Some(entry) = entry(signal) else { return Err(libc::EINVAL) };
    if entry.mode.load(Ordering::Acquire) == KEPT {
        if let Some(action) = action {
            set(signal, &as_kernel_reports(action));
        }
        return Ok(recorded);
    }
    let ours = entry.ours.load(Ordering::Relaxed);
    // SAFETY: sigaction is plain data; zeroed is a valid start for the kernel's old action.
    let mut kernel_old: libc::sigaction = unsafe { std::mem::zeroed() };
    let result = match action {
        Some(action) => {
            // Recorded first: a signal meeting sigtrace's handler from here on finds the new
            // action (a signal meeting the program's old handler in the kernel runs it, as it
            // would have an instant earlier).
            set(signal, &as_kernel_reports(action));
            let to_kernel = if action.sa_sigaction == libc::SIG_DFL { our_action(signal, ours, 0) } else { *action };
            // SAFETY: valid pointers; the program's action is passed on unchanged.
            unsafe { sigaction(signal, &to_kernel, &mut kernel_old) }
        }
        // SAFETY: a null new action only reads the current one into `kernel_old`.
        None => unsafe { sigaction(signal, std::ptr::null(), &mut kernel_old) },
    };
    if result != 0 {
        // SAFETY: reads this thread's errno.
        let error = unsafe { *libc::__errno_location() };
        set(signal, &recorded);
        return Err(error);
    }
    Ok(if kernel_old.sa_sigaction == ours { recorded } else { kernel_old })
}

/// Before an exec: every [`KEPT`] signal the program ignores gets `SIG_IGN` in the kernel (the
/// kernel keeps an ignored signal ignored across exec, but resets handled ones to `SIG_DFL`).
/// Returns the signals changed, for [`after_failed_exec`]. Not for the handler.
pub fn before_exec(sigaction: SigactionFn) -> u128 {
    let mut changed = 0u128;
    for signal in 1..SIGNALS as i32 {
        if mode(signal) != KEPT || get(signal).is_none_or(|action| action.handler != libc::SIG_IGN) {
            continue;
        }
        // SAFETY: sigaction is plain data; zeroed with SIG_IGN set is a valid action.
        let mut ignore: libc::sigaction = unsafe { std::mem::zeroed() };
        ignore.sa_sigaction = libc::SIG_IGN;
        // SAFETY: valid pointer; no old action asked for.
        if unsafe { sigaction(signal, &ignore, std::ptr::null_mut()) } == 0 {
            changed |= 1 << signal;
        }
    }
    changed
}

/// After an exec that failed: sigtrace's handlers back on the signals [`before_exec`] changed.
pub fn after_failed_exec(changed: u128, sigaction: SigactionFn) {
    for signal in 1..SIGNALS as i32 {
        let Some(entry) = entry(signal) else { continue };
        if changed & (1 << signal) != 0 {
            let action = our_action(signal, entry.ours.load(Ordering::Relaxed), 0);
            // SAFETY: valid pointer; sigtrace's own handler with the SA_SIGINFO signature.
            unsafe { sigaction(signal, &action, std::ptr::null_mut()) };
        }
    }
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
    // SAFETY: forwarded from the caller.
    if unsafe { hold_if_program_blocks(signal, info) } {
        return Forwarded::Handled;
    }
    let Some(action) = get(signal) else { return Forwarded::Default };
    match action.handler {
        libc::SIG_DFL => return Forwarded::Default,
        libc::SIG_IGN => return Forwarded::Handled,
        _ => {}
    }
    if action.flags & libc::SA_RESETHAND != 0 {
        // As the kernel does: the handler becomes SIG_DFL, flags and mask stay.
        if let Some(mut reset) = get_as_sigaction(signal) {
            reset.sa_sigaction = libc::SIG_DFL;
            set(signal, &reset);
        }
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
        // As the kernel's sigreturn would, the mask the program sees after its handler is the
        // one it had before (whatever the handler set).
        let program_blocked = PROGRAM_BLOCKS.get();
        if action.flags & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(action.handler);
            handler(signal, info, ucontext);
        } else {
            let handler: extern "C" fn(libc::c_int) = std::mem::transmute(action.handler);
            handler(signal);
        }
        PROGRAM_BLOCKS.set(program_blocked);
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &previous as *const libc::sigset_t, std::ptr::null_mut::<libc::sigset_t>(), 8);
    }
    Forwarded::Handled
}

/// The signal whose blocking the program sees through the per-thread record (the sampling
/// signal; 0 until [`keep_mask_view`]).
static MASKED_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// `siginfo_t` as 64-bit words.
const SIGINFO_WORDS: usize = std::mem::size_of::<libc::siginfo_t>() / 8;

thread_local! {
    /// True while the program has asked for [`MASKED_SIGNAL`] to be blocked on this thread.
    static PROGRAM_BLOCKS: Cell<bool> = const { Cell::new(false) };
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
fn held_here() -> bool {
    HELD.get() && HELD_TID.get() == gettid()
}

/// Takes the held signal's `siginfo_t`, if one is held for the calling thread.
/// Async-signal-safe.
fn take_held() -> Option<[u64; SIGINFO_WORDS]> {
    if !held_here() {
        return None;
    }
    HELD.set(false);
    Some(HELD_INFO.get())
}

/// Holds a signal with this `siginfo_t` for the calling thread. Async-signal-safe.
fn hold(words: [u64; SIGINFO_WORDS]) {
    HELD_INFO.set(words);
    HELD_TID.set(gettid());
    HELD.set(true);
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

fn set_of(signal: i32) -> libc::sigset_t {
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
fn kernel_sigmask(how: i32, set: Option<&libc::sigset_t>, previous: Option<&mut libc::sigset_t>) {
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

/// Holds a signal the program has blocked (in its view) instead of running its action: keeps
/// its `siginfo_t` (the first one: later ones merge, as for a pending standard signal).
/// Returns whether it was held. Async-signal-safe.
///
/// # Safety
/// `info` is null or the kernel's `siginfo_t` for `signal`.
unsafe fn hold_if_program_blocks(signal: i32, info: *const libc::siginfo_t) -> bool {
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
fn release_held(signal: i32) -> bool {
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

/// The program's `sigsuspend(mask)` with libc's `real`. A mask holding the masked signal is
/// passed on unchanged (the kernel blocks it while the thread sleeps, when it takes no
/// samples anyway); one without it lets a held signal in (queued while blocked, so the
/// suspension takes it atomically and returns `EINTR` after the program's handler).
///
/// # Safety
/// Same contract as `sigsuspend`.
pub unsafe fn program_sigsuspend(mask: *const libc::sigset_t, real: unsafe extern "C" fn(*const libc::sigset_t) -> libc::c_int) -> libc::c_int {
    let signal = masked_signal();
    // SAFETY: the caller's non-null mask is a valid sigset_t.
    if signal == 0 || mask.is_null() || unsafe { libc::sigismember(mask, signal) } == 1 {
        // SAFETY: forwarding the caller's argument.
        return unsafe { real(mask) };
    }
    let was = PROGRAM_BLOCKS.replace(false);
    let result = if held_here() {
        // SAFETY: sigset_t is plain data; the kernel fills it.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        kernel_sigmask(libc::SIG_BLOCK, Some(&set_of(signal)), Some(&mut old));
        release_held(signal);
        // SAFETY: forwarding the caller's argument.
        let result = unsafe { real(mask) };
        // SAFETY: __errno_location is this thread's errno.
        let errno = unsafe { *libc::__errno_location() };
        kernel_sigmask(libc::SIG_SETMASK, Some(&old), None);
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        result
    } else {
        // SAFETY: forwarding the caller's argument.
        unsafe { real(mask) }
    };
    PROGRAM_BLOCKS.set(was);
    result
}

/// libc's `sigtimedwait`.
pub type SigtimedwaitFn = unsafe extern "C" fn(*const libc::sigset_t, *mut libc::siginfo_t, *const libc::timespec) -> libc::c_int;

/// The program's `sigtimedwait(set, info, timeout)` (also behind `sigwait` and `sigwaitinfo`)
/// with libc's `real`. When `set` holds the masked signal: a held one is taken at once;
/// otherwise the kernel blocks it during the wait (the thread sleeps, so no samples are held
/// up), and one taken there is queued again so that sigtrace's handler tells a sample (kept)
/// from the program's signal (held, then taken here).
///
/// # Safety
/// Same contract as `sigtimedwait`.
pub unsafe fn program_sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    timeout: *const libc::timespec,
    real: SigtimedwaitFn,
) -> libc::c_int {
    let signal = masked_signal();
    // SAFETY: the caller's non-null set is a valid sigset_t.
    if signal == 0 || set.is_null() || unsafe { libc::sigismember(set, signal) } != 1 {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(set, info, timeout) };
    }
    // SAFETY: the caller's non-null timeout is a valid timespec.
    let deadline =
        unsafe { timeout.as_ref() }.map(|t| crate::clock::monotonic_ns().saturating_add(t.tv_sec.max(0) as u64 * 1_000_000_000 + t.tv_nsec.max(0) as u64));
    loop {
        if let Some(words) = take_held() {
            if !info.is_null() {
                // SAFETY: the caller's info is a writable siginfo_t of SIGINFO_WORDS words.
                unsafe { std::ptr::write_unaligned(info.cast::<[u64; SIGINFO_WORDS]>(), words) };
            }
            return signal;
        }
        let remaining = deadline.map(|deadline| {
            let left = deadline.saturating_sub(crate::clock::monotonic_ns());
            libc::timespec { tv_sec: (left / 1_000_000_000) as libc::time_t, tv_nsec: (left % 1_000_000_000) as libc::c_long }
        });
        // SAFETY: sigset_t and siginfo_t are plain data; the kernel fills them.
        let (mut old, mut taken): (libc::sigset_t, libc::siginfo_t) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        kernel_sigmask(libc::SIG_BLOCK, Some(&set_of(signal)), Some(&mut old));
        // SAFETY: valid pointers; the caller's set.
        let result = unsafe { real(set, &mut taken, remaining.as_ref().map_or(std::ptr::null(), |r| r as *const libc::timespec)) };
        // SAFETY: __errno_location is this thread's errno.
        let errno = unsafe { *libc::__errno_location() };
        if result == signal {
            // Queued again while still blocked, delivered when the mask is restored below.
            let was = PROGRAM_BLOCKS.replace(true);
            // SAFETY: siginfo_t is plain data of SIGINFO_WORDS words.
            hold(unsafe { std::mem::transmute_copy::<libc::siginfo_t, [u64; SIGINFO_WORDS]>(&taken) });
            release_held(signal);
            kernel_sigmask(libc::SIG_SETMASK, Some(&old), None);
            PROGRAM_BLOCKS.set(was);
            continue;
        }
        kernel_sigmask(libc::SIG_SETMASK, Some(&old), None);
        if result > 0 && !info.is_null() {
            // SAFETY: the caller's info is a writable siginfo_t.
            unsafe { *info = taken };
        }
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        return result;
    }
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
