//! When sigtrace's drain thread runs. `SIGTRACE_DRAIN_THREAD=always`: from the start of every
//! trace. `with-program-threads` (the default): only once the program has a thread besides the
//! one it started with, so that sigtrace never turns a single-threaded program into a
//! multithreaded one (`unshare(CLONE_NEWUSER)` and programs that count `/proc/self/task` see
//! what they would see without it). Until then the program's own thread does the drain work at
//! safe points: the waiting calls it makes through libc (see `interpose::blocking`), `fork`,
//! `exec`, exit, and a signal about to kill it.

use crate::config::Config;
use crate::lifecycle::start::CONFIG;
use crate::lifecycle::state;
use crate::lifecycle::threads::spawn_unsampled_thread;
use config::DrainThreadChoice;
use sigprof::spill_fault::SpillFault;
use sigprof::Registry;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use writer::drain;

/// How often the drain thread empties the rings at first (then adapted to the load).
const DRAIN_PERIOD: Duration = Duration::from_millis(10);
/// The shortest time between two drain rounds at the safe points of a single-threaded program.
const SAFE_POINT_PERIOD_NS: u64 = 10_000_000;

/// How long the program must have had one thread before the drain thread hands its work back.
const HAND_BACK_AFTER_NS: u64 = 200_000_000;
/// When the drain thread first saw the program with one thread (0: it has more).
static SINGLE_SINCE_NS: AtomicU64 = AtomicU64::new(0);
/// True from the drain thread's spawn until its loop ended.
static STARTED: AtomicBool = AtomicBool::new(false);
/// True while the program's own thread does the drain work at its safe points.
static SAFE_POINTS_ARMED: AtomicBool = AtomicBool::new(false);
/// The coarse-clock time before which a safe point does no drain round.
static NEXT_SAFE_POINT_NS: AtomicU64 = AtomicU64::new(0);
/// True while a safe point's drain round runs (the round's own calls are not safe points).
static IN_SAFE_POINT: AtomicBool = AtomicBool::new(false);

/// Starts the drain thread of a trace that just began (state `Running`), or, under
/// `with-program-threads` in a process with one thread, leaves the drain work to its safe points.
pub fn start_for_new_trace(config: &Config, one_thread: bool) -> Result<(), String> {
    if config.drain_thread == DrainThreadChoice::WithProgramThreads && (one_thread || process_has_one_thread()) {
        NEXT_SAFE_POINT_NS.store(0, Ordering::Relaxed);
        SAFE_POINTS_ARMED.store(true, Ordering::Release);
        // Between safe points, the handler writes a ring that fills to the file itself.
        sigprof::spill::arm(true);
        // The unwind tables now, as the drain thread's first round would build them at once:
        // without them a program that never reaches a safe point would have every stack walked
        // by frame pointers alone. The rest of a round waits for the first safe point.
        prepare_unwinding();
        return Ok(());
    }
    spawn()
}

/// Held from the program's `pthread_create` (before libc's) until libc's returns, and by the
/// drain thread while it decides to hand the drain work back: so the drain thread never ends
/// while a thread of the program is being made. A pthread mutex, set back to unlocked in a
/// forked child (whose copy may be held by a thread that does not exist there).
struct Handoff(std::cell::UnsafeCell<libc::pthread_mutex_t>);
// SAFETY: a pthread mutex is made to be shared between threads; used only through
// pthread_mutex_* calls (and re-initialised in a single-threaded forked child).
unsafe impl Sync for Handoff {}
static HANDOFF: Handoff = Handoff(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

/// Holds [`HANDOFF`] until dropped.
pub struct CreatingThread(bool);

impl Drop for CreatingThread {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: locked by this thread in `before_program_creates_thread`.
            unsafe { libc::pthread_mutex_unlock(HANDOFF.0.get()) };
        }
    }
}

/// The program is about to create a thread (interposed `pthread_create`, before libc's): under
/// `with-program-threads` the drain thread starts now if it does not run yet, so that it exists
/// before the program's second thread does. Keep the value until libc's `pthread_create`
/// returned: meanwhile the drain thread does not hand its work back.
pub fn before_program_creates_thread() -> CreatingThread {
    let config = CONFIG.get();
    if config.is_none_or(|config| config.drain_thread != DrainThreadChoice::WithProgramThreads) {
        return CreatingThread(false);
    }
    // SAFETY: locks our static mutex; unlocked when the returned value is dropped.
    unsafe { libc::pthread_mutex_lock(HANDOFF.0.get()) };
    let creating = CreatingThread(true);
    if !SAFE_POINTS_ARMED.load(Ordering::Acquire) || !state::is_running() || !state::is_traced_process() {
        return creating;
    }
    SAFE_POINTS_ARMED.store(false, Ordering::Release);
    // From now on the drain thread is the rings' consumer (sigprof invariant 13).
    sigprof::spill::arm(false);
    if spill_fault_ended_tracing() {
        return creating;
    }
    // A drain thread that just handed its work back may still be on its way out.
    let deadline = sigprof::monotonic_ns() + 200_000_000;
    while STARTED.load(Ordering::Acquire) && sigprof::monotonic_ns() < deadline {
        std::thread::sleep(Duration::from_micros(50));
    }
    if let Err(reason) = spawn() {
        state::switch_off(&reason);
    }
    creating
}

/// Asked by the drain thread after each round: when the program is back to one thread (a
/// forking parent whose workers ended), the program's thread becomes the rings' consumer again
/// (safe points and spills) and the drain thread ends, so that `/proc/self/task` lists one task
/// again. Only under `with-program-threads`; never while the program is creating a thread.
fn hand_back_if_single() -> bool {
    if !state::is_running() || !state::is_traced_process() {
        return false;
    }
    let Some(registry) = Registry::get() else { return false };
    let now = sigprof::monotonic_ns();
    if registry.live_slots().filter(|slot| slot.state.load() == sigprof::SlotState::Active).count() != 1 {
        SINGLE_SINCE_NS.store(0, Ordering::Relaxed);
        return false;
    }
    // Only a program that stays single-threaded for a while: one that makes a thread per
    // request would otherwise start a drain thread for each burst of requests.
    let since = SINGLE_SINCE_NS.load(Ordering::Relaxed);
    if since == 0 {
        SINGLE_SINCE_NS.store(now, Ordering::Relaxed);
        return false;
    }
    if now.saturating_sub(since) < HAND_BACK_AFTER_NS {
        return false;
    }
    // SAFETY: tries our static mutex; unlocked below only when taken here.
    if unsafe { libc::pthread_mutex_trylock(HANDOFF.0.get()) } != 0 {
        return false;
    }
    // The program's one thread and this one; a thread sigtrace did not see being made keeps the
    // drain thread.
    let alone = process_thread_count() == Some(2);
    if alone {
        SINGLE_SINCE_NS.store(0, Ordering::Relaxed);
        NEXT_SAFE_POINT_NS.store(0, Ordering::Relaxed);
        SAFE_POINTS_ARMED.store(true, Ordering::Release);
        sigprof::spill::arm(true);
    }
    // SAFETY: taken above by this thread.
    unsafe { libc::pthread_mutex_unlock(HANDOFF.0.get()) };
    alone
}

/// Says the write fault that stopped the handler's spills, if one did, as the drain says its
/// own (one `sigtrace:` line), and switches sigtrace off; returns whether it did. A deleted
/// trace file is left to the drain, which notices it at its next generation end. Not for a
/// signal handler.
pub fn spill_fault_ended_tracing() -> bool {
    match sigprof::spill_fault::take() {
        Some(SpillFault::Write(errno)) => {
            state::switch_off(&writer::on_program_thread::describe_spill_fault(errno));
            true
        }
        Some(SpillFault::Deleted) | None => false,
    }
}

/// A forked child has no drain thread (nor safe points) until its trace starts.
pub fn forget_after_fork() {
    // The parent's file faults are not the child's (it writes a file of its own).
    let _ = sigprof::spill_fault::take();
    STARTED.store(false, Ordering::Relaxed);
    SAFE_POINTS_ARMED.store(false, Ordering::Relaxed);
    IN_SAFE_POINT.store(false, Ordering::Relaxed);
    sigprof::spill::arm(false);
    // SAFETY: the child has one thread: nobody else uses the mutex while it is re-initialised.
    unsafe { HANDOFF.0.get().write(libc::PTHREAD_MUTEX_INITIALIZER) };
}

fn spawn() -> Result<(), String> {
    if STARTED.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    spawn_unsampled_thread(drain_thread_main).map_err(|error| {
        STARTED.store(false, Ordering::Release);
        format!("cannot start the drain thread: {error}")
    })
}

/// Whether the process has exactly one thread (a process whose status cannot be read counts
/// as multithreaded, which keeps the drain thread).
fn process_has_one_thread() -> bool {
    process_thread_count() == Some(1)
}

/// The process's threads (`Threads:` of `/proc/self/status`), if it can be read.
fn process_thread_count() -> Option<u32> {
    let status = crate::proc_file::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| line.strip_prefix("Threads:")).and_then(|count| count.trim().parse().ok())
}

extern "C" fn drain_thread_main(_: *mut c_void) -> *mut c_void {
    // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"sigtrace-drain".as_ptr()) };
    // Not a sampled thread: its interposed calls (its futex waits, its writes) find no slot at once.
    if let Some(registry) = Registry::get() {
        registry.detach_current_thread();
    }
    let schedule = match CONFIG.get().and_then(|config| config.drain_ms) {
        Some(ms) => drain::DrainPeriod::Fixed(Duration::from_millis(ms.into())),
        None => drain::DrainPeriod::Adaptive(DRAIN_PERIOD),
    };
    if CONFIG.get().is_some_and(|config| config.drain_thread == DrainThreadChoice::WithProgramThreads) {
        drain::set_hand_back(hand_back_if_single);
    }
    drain::run(schedule, state::switch_off);
    STARTED.store(false, Ordering::Release);
    std::ptr::null_mut()
}

/// A safe point of a single-threaded program (a waiting call it makes through libc): a drain
/// round when one is due. One relaxed load when there is nothing to do. Any thread, a signal
/// handler's too: it drains only when the thread cannot be inside one (see
/// [`may_be_in_a_signal_handler`]).
#[inline(always)]
pub fn at_safe_point() {
    if SAFE_POINTS_ARMED.load(Ordering::Relaxed) {
        drain_at_safe_point();
    }
}

/// Builds the unwind tables of the modules loaded now on the program's thread, every signal
/// blocked meanwhile, as in a drain round.
fn prepare_unwinding() {
    let previous = block_all_signals();
    if std::panic::catch_unwind(writer::on_program_thread::prepare_unwinding).is_err() {
        state::switch_off("internal error while building the unwind tables");
    }
    restore_mask(previous);
}

#[cold]
#[inline(never)]
fn drain_at_safe_point() {
    let now = sigprof::clock_ns(libc::CLOCK_MONOTONIC_COARSE);
    if now < NEXT_SAFE_POINT_NS.load(Ordering::Relaxed) || IN_SAFE_POINT.swap(true, Ordering::Acquire) {
        return;
    }
    // SAFETY: this thread's errno slot.
    let saved_errno = unsafe { *libc::__errno_location() };
    let outcome = std::panic::catch_unwind(|| {
        if !SAFE_POINTS_ARMED.load(Ordering::Acquire) || !state::is_running() || !state::is_traced_process() || may_be_in_a_signal_handler() {
            return Ok(());
        }
        NEXT_SAFE_POINT_NS.store(now + SAFE_POINT_PERIOD_NS, Ordering::Relaxed);
        // Every signal waits for the end of the round, as it does for the drain thread: no
        // sample lands in sigtrace's own work, and no handler of the program (one that calls
        // `exit` or `fork`) runs while this thread holds the drainer's lock or the fork gate.
        let fault = sigprof::spill_fault::take();
        if let Some(SpillFault::Write(errno)) = fault {
            return Err(writer::on_program_thread::describe_spill_fault(errno));
        }
        let previous = block_all_signals();
        let result = writer::on_program_thread::drain_round();
        restore_mask(previous);
        if fault == Some(SpillFault::Deleted) && result.is_ok() && SAFE_POINTS_ARMED.load(Ordering::Acquire) {
            // The round has moved the trace to a new file if its generation ended; if not, the
            // next spill finds the file still deleted and stops again.
            sigprof::spill::arm(true);
        }
        result
    });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => state::switch_off(&reason),
        Err(_) => state::switch_off("internal error in a drain round on the program's thread"),
    }
    IN_SAFE_POINT.store(false, Ordering::Release);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// True when the calling thread may be running a signal handler of the program: it is on its
/// alternate signal stack, or a signal whose action is a handler is blocked (as a signal is
/// while its handler runs). Such a thread may have interrupted code holding any lock, so no
/// drain round runs there. Raw system calls: the program's view of its mask and actions is
/// not involved.
fn may_be_in_a_signal_handler() -> bool {
    // SAFETY: sigaltstack with no new stack writes the current one into `current`.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_sigaltstack, std::ptr::null::<libc::stack_t>(), &mut current as *mut libc::stack_t) } != 0
        || current.ss_flags & libc::SS_ONSTACK != 0
    {
        return true;
    }
    let mut mask: u64 = 0;
    // SAFETY: rt_sigprocmask with no new set writes the kernel's 8-byte mask into `mask`.
    if unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, std::ptr::null::<u64>(), &mut mask as *mut u64, 8) } != 0 {
        return true;
    }
    (1..=64).filter(|signal| mask & (1u64 << (signal - 1)) != 0).any(|signal| {
        // The kernel's struct sigaction starts with the handler; 4 words hold it on every
        // architecture sigtrace builds for.
        let mut action = [0u64; 4];
        // SAFETY: rt_sigaction with no new action writes the current one into `action`.
        let read = unsafe { libc::syscall(libc::SYS_rt_sigaction, signal, std::ptr::null::<u64>(), action.as_mut_ptr(), 8) } == 0;
        !read || (action[0] != libc::SIG_DFL as u64 && action[0] != libc::SIG_IGN as u64)
    })
}

/// Blocks every signal in the kernel's mask of the calling thread; returns the mask before.
fn block_all_signals() -> u64 {
    let add: u64 = u64::MAX;
    let mut previous: u64 = 0;
    // SAFETY: rt_sigprocmask with 8-byte sets we own.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &add as *const u64, &mut previous as *mut u64, 8) };
    previous
}

/// Sets the calling thread's kernel mask back to `mask`.
fn restore_mask(mask: u64) {
    // SAFETY: rt_sigprocmask with an 8-byte set we own.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &mask as *const u64, std::ptr::null_mut::<u64>(), 8) };
}
