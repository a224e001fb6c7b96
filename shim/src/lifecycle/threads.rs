//! Threads' lives: a slot claimed when a thread starts (from the interposed `pthread_create`)
//! or is found at start-up, released by the thread-exit destructor; the last thread out ends
//! the trace. Also sigtrace's own unsampled threads, and the calling thread's id and stack.

use crate::lifecycle::sandbox::is_sandboxed;
use crate::lifecycle::state;
use crate::lifecycle::stop::finish_trace;
use crate::log;
use crate::real_functions::{real_pthread_create, real_pthread_sigmask, StartRoutine};
use crate::sampling::timers;
use sigprof::CountFrom;
use sigprof::{Registry, SlotState};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use unwind::StackBounds;

/// The pthread key whose destructor releases a thread's slot (valid once `KEY_READY`).
static EXIT_KEY: AtomicUsize = AtomicUsize::new(0);
static KEY_READY: AtomicBool = AtomicBool::new(false);
static REGISTRY_FULL_REPORTED: AtomicBool = AtomicBool::new(false);

extern "C" {
    /// The stack pointer at process entry (glibc's loader exports it).
    static __libc_stack_end: *const c_void;
}

/// The calling thread's stack bounds (not for the handler). For the main thread they come
/// from `__libc_stack_end` and `RLIMIT_STACK` (glibc's `pthread_getattr_np` would parse
/// `/proc/self/maps`, a good part of the shim's start-up); for others from the thread's
/// attributes.
pub fn current_stack_bounds() -> StackBounds {
    // SAFETY: getpid is a plain syscall; __libc_stack_end is set by the loader before any
    // constructor runs.
    let (pid, entry_sp) = unsafe { (libc::getpid() as u32, __libc_stack_end as u64) };
    if current_tid() == pid && entry_sp != 0 {
        // The stack mapping extends at least to the end of the page holding the entry stack
        // pointer, and never below the stack limit.
        let hi = (entry_sp + 4095) & !4095;
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes `limit`.
        let size =
            if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } == 0 && limit.rlim_cur != libc::RLIM_INFINITY { limit.rlim_cur } else { 64 << 20 };
        return StackBounds { lo: hi.saturating_sub(size), hi };
    }
    thread_stack_bounds()
}

/// The calling thread's stack bounds from `pthread_getattr_np`.
fn thread_stack_bounds() -> StackBounds {
    // SAFETY: attr is initialised by pthread_getattr_np before use and destroyed after.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return StackBounds::UNKNOWN;
        }
        let mut address: *mut c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let found = libc::pthread_attr_getstack(&attr, &mut address, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !found {
            return StackBounds::UNKNOWN;
        }
        StackBounds { lo: address as u64, hi: address as u64 + size as u64 }
    }
}

pub fn current_tid() -> u32 {
    // SAFETY: gettid is a plain syscall.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Claims a slot for the calling thread, a thread sigtrace started (its CPU time from its start
/// is counted), arms its timer and arranges its release at exit.
pub fn register_current_thread() {
    let Some(registry) = Registry::get() else { return };
    if !state::is_running() {
        return;
    }
    let tid = current_tid();
    // A thread started through pthread_create is never the main thread.
    let Some(index) = registry.claim_slot(tid, thread_stack_bounds()) else {
        if !REGISTRY_FULL_REPORTED.swap(true, Ordering::Relaxed) {
            log::warn(&format!(
                "thread registry full ({} threads, SIGTRACE_MAX_THREADS); further threads are not sampled, their CPU time is counted as dropped.no_slot",
                registry.capacity()
            ));
        }
        registry.threads_without_slot.fetch_add(1, Ordering::Relaxed);
        // Its signals and interposed calls then find "no slot" at once, without a search.
        registry.detach_current_thread();
        if KEY_READY.load(Ordering::Acquire) {
            // SAFETY: the key was created at start-up; the value is a non-null tag.
            unsafe { libc::pthread_setspecific(EXIT_KEY.load(Ordering::Relaxed) as libc::pthread_key_t, WITHOUT_SLOT as *const c_void) };
        }
        return;
    };
    registry.attach_current_thread(index);
    if KEY_READY.load(Ordering::Acquire) {
        // SAFETY: the key was created at start-up; the value is a non-null tag (index + 1).
        unsafe { libc::pthread_setspecific(EXIT_KEY.load(Ordering::Relaxed) as libc::pthread_key_t, (index + 1) as *const c_void) };
    }
    if let Some(slot) = registry.slot(index) {
        timers::arm_thread_timer(slot, tid, CountFrom::ThreadStart);
        // The last of sigtrace's start-up code: the program's start routine runs next.
        slot.timer.take_start_up_moments(tid, registry.config.signal, sigprof::period_ns(registry.config.hz));
    }
}

/// The exit-key tag of a thread that found the registry full (slot tags are index + 1).
const WITHOUT_SLOT: usize = usize::MAX;

/// A thread the full registry left unsampled is exiting: its CPU time, in sampling periods
/// (rounded to the nearest), is counted as dropped, so the trace says how much it misses.
fn count_unsampled_cpu_time(registry: &Registry) {
    if !state::is_running() || !state::is_traced_process() {
        return;
    }
    let cpu_ns = sigprof::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) as u128;
    let period_ns = u128::from(sigprof::period_ns(registry.config.hz).max(1));
    let periods = (cpu_ns + period_ns / 2) / period_ns;
    registry.dropped_no_slot.fetch_add(periods as u64, Ordering::Relaxed);
}

/// Runs when a registered thread exits (returns or calls `pthread_exit`): stops its timer,
/// records its final CPU time and name, and hands its slot to the drain thread.
extern "C" fn release_exiting_thread(value: *mut c_void) {
    let result = std::panic::catch_unwind(|| {
        let Some(registry) = Registry::get() else { return };
        if is_sandboxed() {
            return; // no system call of ours may meet the program's filter
        }
        if value as usize == WITHOUT_SLOT {
            count_unsampled_cpu_time(registry);
            return;
        }
        let Some(slot) = (value as usize).checked_sub(1).and_then(|index| registry.slot(index)) else { return };
        // Under the arming lock: a resume arms active threads only, never this one after this.
        // The sampling moments its timer passed without a sample are sampled here, on its exit
        // path (see sigprof's `timer::own_sample`), before the slot is released.
        crate::sampling::pause::with_arming_lock(|_| {
            let missed = slot.timer.disarm_at_exit(sigprof::period_ns(registry.config.hz));
            sample_exit_moments(registry, slot, missed);
            slot.exit_cpu_ns.store(sigprof::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID), Ordering::Relaxed);
            slot.exited_ns.store(sigprof::monotonic_ns(), Ordering::Relaxed);
            let mut name = [0u8; 16];
            // SAFETY: PR_GET_NAME writes at most 16 bytes into `name`.
            unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
            let len = name.iter().position(|&b| b == 0).unwrap_or(16);
            slot.set_exit_name(&name[..len]);
            registry.detach_current_thread();
            slot.state.store(SlotState::Exited);
        });
        if registry.live_slots().all(|slot| slot.state.load() != SlotState::Active) && no_other_program_thread_runs() {
            end_with_the_last_thread();
        }
    });
    if result.is_err() {
        state::switch_off("internal error while releasing a thread");
    }
}

/// The process ends on the calling thread (`exit`, `_exit`): the sampling moments its timer
/// passed without a sample are sampled now, on its exit path, as at a thread's exit (see
/// sigprof's `timer::own_sample`), before the last generation is written. A POSIX timer is
/// checked on scheduler ticks only, and on a loaded machine it can go 100 ms of CPU time
/// without firing: the overrun of its next signal would stand for them, but the process ends
/// first. The process-wide itimer, tick-limited too, has its tail of process CPU time sampled
/// the same way. Other threads still running are cut off by the exit, with at most their tails
/// lost.
/// The arming lock is not taken: `_exit` may be called by a signal handler of the program that
/// interrupted this thread inside it. A pause or resume running meanwhile on another thread
/// releases or arms by swaps, so at worst a timer is left armed, and the process is ending.
/// Not for the handler.
pub fn sample_moments_missed_at_process_end() {
    let Some(registry) = Registry::get() else { return };
    if is_sandboxed() {
        return;
    }
    let Some(slot) = registry.current_slot() else { return };
    let period_ns = sigprof::period_ns(registry.config.hz);
    let missed = if registry.itimer_is_ours.load(Ordering::Relaxed) {
        sigprof::itimer_periods_at_process_end(slot.tid.load(Ordering::Relaxed), period_ns)
    } else {
        slot.timer.disarm_at_exit(period_ns)
    };
    sample_exit_moments(registry, slot, missed);
}

/// Samples on the exit path of the calling thread, whose timer was just released, the `missed`
/// sampling moments it passed without a sample, then those passed while that sample's handler
/// ran (a new thread's first walk takes tens of µs of its CPU time), until none passes: so
/// the handler's CPU time is counted like the rest of the thread's. At most a few rounds.
fn sample_exit_moments(registry: &Registry, slot: &sigprof::ThreadSlot, mut missed: u32) {
    let (tid, period_ns) = (slot.tid.load(Ordering::Relaxed), sigprof::period_ns(registry.config.hz));
    for _ in 0..4 {
        if missed == 0 {
            return;
        }
        slot.timer.take_own_sample(tid, registry.config.signal, missed);
        missed = slot.timer.moments_missed_since_exit(period_ns);
    }
}

/// True when no thread but the calling one and sigtrace's drain thread is alive (zombies, such
/// as a main thread that called `pthread_exit`, do not count). Not for the handler.
fn no_other_program_thread_runs() -> bool {
    let (me, drain) = (current_tid(), writer::drain::drain_tid());
    let Some(tasks) = task_ids() else { return false };
    tasks.into_iter().filter(|&tid| tid != me && tid != drain).all(|tid| {
        // The state is the field after the parenthesised name.
        crate::proc_file::read_to_string(&format!("/proc/self/task/{tid}/stat"))
            .map(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))))
            .unwrap_or(true) // gone already
    })
}

/// The ids of the process's threads, read through a descriptor checked as sigtrace's own (the
/// program may close numbers it does not own at any moment: `writer::own_file`).
fn task_ids() -> Option<Vec<u32>> {
    let tasks = writer::own_file::OwnFile::open("/proc/self/task", libc::O_DIRECTORY).ok()?.entry_names().ok()?;
    Some(tasks.iter().filter_map(|name| name.parse().ok()).collect())
}

/// The program's last thread is leaving (the process ends when it does, with status 0, as
/// POSIX says): the trace is finished and the drain thread stopped first, so that it does not
/// keep the process alive. Not for the handler.
fn end_with_the_last_thread() {
    finish_trace(format::EndReason::Exit);
    writer::drain::wait_for_drain_thread_exit(std::time::Duration::from_millis(200));
}

/// Creates the thread-exit key. Start-up only.
pub fn create_exit_key() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is written by pthread_key_create; the destructor has the required signature.
    if unsafe { libc::pthread_key_create(&mut key, Some(release_exiting_thread)) } == 0 {
        EXIT_KEY.store(key as usize, Ordering::Relaxed);
        KEY_READY.store(true, Ordering::Release);
    }
}

/// Marks the main thread's slot for release at exit like any other thread's.
pub fn tag_current_thread_for_release(index: usize) {
    if KEY_READY.load(Ordering::Acquire) {
        // SAFETY: the key exists; the value is a non-null tag.
        unsafe { libc::pthread_setspecific(EXIT_KEY.load(Ordering::Relaxed) as libc::pthread_key_t, (index + 1) as *const c_void) };
    }
}

/// Registers and arms the threads that already ran when the shim started (other than the
/// caller). Their stack bounds are unknown, so their stacks are read through the kernel.
pub fn register_existing_threads(registry: &Registry) {
    let me = current_tid();
    let Some(tasks) = task_ids() else { return };
    for tid in tasks {
        if tid == me {
            continue;
        }
        if let Some(slot) = registry.claim_slot(tid, StackBounds::UNKNOWN).and_then(|index| registry.slot(index)) {
            timers::arm_thread_timer(slot, tid, CountFrom::Arming);
        }
    }
}

/// Starts `body` on a new thread created with libc's `pthread_create` (not our wrapper), with
/// every signal blocked in it, detached.
pub fn spawn_unsampled_thread(body: StartRoutine) -> std::io::Result<()> {
    let real = real_pthread_create().ok_or_else(|| std::io::Error::other("pthread_create not found"))?;
    let sigmask = real_pthread_sigmask().ok_or_else(|| std::io::Error::other("pthread_sigmask not found"))?;
    // SAFETY: sigset_t values are initialised by sigfillset/pthread_sigmask before use; the
    // caller's mask is restored after the thread is created (the new thread inherits the full
    // one). libc's own pthread_sigmask is used: the interposed one would unblock our signal.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        sigmask(libc::SIG_SETMASK, &all, &mut previous);
        let mut thread: libc::pthread_t = 0;
        let result = real(&mut thread, std::ptr::null(), body, std::ptr::null_mut());
        sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        if result != 0 {
            return Err(std::io::Error::from_raw_os_error(result));
        }
        libc::pthread_detach(thread);
    }
    Ok(())
}
