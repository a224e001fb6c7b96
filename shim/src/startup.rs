//! Start-up (from the library constructor) and the final flush (at process exit).

use crate::config::{Config, Mode};
use crate::lifecycle::{self, Lifecycle};
use crate::log::{self, Level};
use crate::output::expand_pattern;
use crate::sampling::{self, choose_source};
use crate::signals;
use crate::threads::{self, current_stack_bounds, current_tid};
use format::{EndReason, Header};
use sigprof::clock::monotonic_ns;
use sigprof::{Registry, SamplerConfig};
use std::ffi::c_void;
use std::sync::OnceLock;
use std::time::Duration;
use writer::drain::{self, Drainer};
use writer::trace_file::TraceFile;

/// How often the drain thread empties the rings at first (then adapted to the load).
const DRAIN_PERIOD: Duration = Duration::from_millis(10);

/// Starts sampling the process. Any failure leaves the host untouched with one line on stderr.
pub fn start() {
    if !lifecycle::transition(Lifecycle::Uninit, Lifecycle::Starting) {
        return;
    }
    crate::blocking::resolve_real_functions();
    if let Some(level) = std::env::var("SIGTRACE_LOG").ok().as_deref().and_then(Level::parse) {
        log::set_level(level);
    }
    let config = CONFIG.get_or_init(Config::from_env);
    log::set_level(config.log_level);
    if crate::sandbox::runs_under_seccomp() {
        lifecycle::switch_off("the program runs under a seccomp filter, which sigtrace's system calls could meet");
        return;
    }
    if let Err(reason) = start_with(config) {
        lifecycle::switch_off(&reason);
    }
}

/// The configuration read at start-up (kept for forked children).
pub static CONFIG: OnceLock<Config> = OnceLock::new();

fn start_with(config: &Config) -> Result<(), String> {
    let registry = Registry::install(
        SamplerConfig {
            hz: config.hz,
            signal: config.signal,
            max_depth: config.max_depth,
            ring_words: config.ring_words(),
            unwind: config.unwind,
            wall_hz: if config.mode == Mode::Wall { config.wall_hz } else { 0 },
        },
        config.max_threads,
    )
    .ok_or("cannot map memory for the thread registry")?;
    let sigaction = signals::real_sigaction().ok_or("cannot find libc's sigaction")?;
    sigprof::handler::install(config.signal, sigaction).map_err(|error| format!("cannot install the signal handler: {error}"))?;
    signals::install_fatal_signal_handlers();
    threads::create_exit_key();
    begin_trace(config, registry, true)?;
    threads::register_existing_threads(registry);
    // SAFETY: registers handlers with the required signature: the fork gate keeps the drain
    // thread out of the loader lock across fork (see writer::drain).
    unsafe { libc::pthread_atfork(Some(drain::close_fork_gate), Some(drain::open_fork_gate), Some(after_fork_in_child)) };
    run_drain_thread()
}

/// Resumes tracing after an exec that failed (the image goes on): a new trace file (same pid,
/// next free name), every live thread's timer armed again.
pub fn resume_after_failed_exec() {
    let (Some(registry), Some(config)) = (Registry::get(), CONFIG.get()) else { return };
    if !lifecycle::transition(Lifecycle::Off, Lifecycle::Starting) {
        return;
    }
    let resumed = std::panic::catch_unwind(|| {
        begin_trace(config, registry, false)?;
        if sampling::current_source() == Some(sigprof::TimerSource::Itimer) {
            sigprof::timer::set_process_itimer(config.hz).map_err(|error| format!("setitimer(ITIMER_PROF) refused: {error}"))?;
        }
        for slot in registry.live_slots() {
            if slot.state.load() == sigprof::registry::SlotState::Active {
                sampling::arm_thread_timer(slot, slot.tid.load(std::sync::atomic::Ordering::Relaxed), sigprof::timer::CountFrom::Arming);
            }
        }
        run_drain_thread()
    });
    match resumed {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => lifecycle::switch_off(&reason),
        Err(_) => lifecycle::switch_off("internal error while resuming after a failed exec"),
    }
}

/// Starts generation 1 of a new trace file for this process: at start-up and in a forked
/// child with the calling thread claimed and its timer armed (`claim_calling_thread`), after a
/// failed exec with the threads that already have slots.
fn begin_trace(config: &Config, registry: &'static Registry, claim_calling_thread: bool) -> Result<(), String> {
    // SAFETY: getpid/getppid are plain syscalls.
    let (pid, parent_pid) = unsafe { (libc::getpid() as u32, libc::getppid() as u32) };
    lifecycle::set_traced_pid(pid);
    let executable = unwind::modules::executable_path();
    let executable_name = executable.rsplit('/').next().unwrap_or("unknown").to_string();
    let start_unix_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let start_clock_ns = monotonic_ns();
    sigprof::generation::start();

    let source = if claim_calling_thread {
        let tid = current_tid();
        let index = registry.claim_slot(tid, current_stack_bounds()).ok_or("cannot set up the main thread's ring")?;
        registry.attach_current_thread(index);
        threads::tag_current_thread_for_release(index);
        let slot = registry.slot(index).ok_or("no slot for the main thread")?;
        choose_source(config.timer, slot, tid, registry)?
    } else {
        sampling::current_source().ok_or("no sampling source")?
    };

    let path = expand_pattern(&config.output_pattern, pid, &executable_name, start_unix_ns / 1_000_000_000);
    let extension = format::file_name::final_extension(&config.output_pattern);
    let file = TraceFile::create_exclusive(&path, extension).map_err(|error| format!("cannot create trace file {path}: {error}"))?;
    let path = file.path().to_string();
    let header = Header {
        pid,
        parent_pid,
        executable,
        args: command_line(),
        clock: "CLOCK_MONOTONIC".into(),
        clock_hz: writer::drain::CLOCK_HZ,
        start_clock_ns,
        start_unix_ns,
        hz: config.hz,
        timer: source.name().into(),
        mode: config.mode.name().into(),
        max_depth: config.max_depth as u32,
        generation_ms: config.generation_ms,
    };
    let drainer = Drainer::create(file, &header, registry, log::warn).map_err(|error| format!("cannot write trace file {path}: {error}"))?;
    drain::install(drainer);
    log::info(&format!("sampling at {} Hz with the {} timer into {path}", config.hz, source.name()));
    Ok(())
}

/// Moves to `Running` and starts the drain thread.
fn run_drain_thread() -> Result<(), String> {
    if !lifecycle::transition(Lifecycle::Starting, Lifecycle::Running) {
        return Err("start-up was interrupted".into());
    }
    threads::spawn_unsampled_thread(drain_thread_main).map_err(|error| format!("cannot start the drain thread: {error}"))
}

/// `pthread_atfork` child handler. The child inherits the parent's registry, rings and drain
/// state but none of its threads or timers: it forgets them all (the parent writes its own
/// open generation) and, unless `SIGTRACE_FOLLOW_FORK=0`, starts a trace file of its own.
extern "C" fn after_fork_in_child() {
    drain::open_fork_gate();
    let was_running = lifecycle::state() == Lifecycle::Running;
    lifecycle::set_state_after_fork(Lifecycle::Starting);
    sigprof::generation::switch_off();
    drain::forget_after_fork();
    let (Some(registry), Some(config)) = (Registry::get(), CONFIG.get()) else {
        lifecycle::set_state_after_fork(Lifecycle::Off);
        return;
    };
    registry.reset_after_fork();
    if !was_running || !config.follow_fork {
        lifecycle::set_state_after_fork(Lifecycle::Off);
        return;
    }
    let restarted = std::panic::catch_unwind(|| begin_trace(config, registry, true).and_then(|()| run_drain_thread()));
    match restarted {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => lifecycle::switch_off(&reason),
        Err(_) => lifecycle::switch_off("internal error while following a fork"),
    }
}

/// The command line from `/proc/self/cmdline`.
fn command_line() -> Vec<String> {
    std::fs::read("/proc/self/cmdline")
        .map(|bytes| bytes.split(|&b| b == 0).filter(|arg| !arg.is_empty()).map(|arg| String::from_utf8_lossy(arg).into_owned()).collect())
        .unwrap_or_default()
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
    drain::run(schedule, lifecycle::switch_off);
    std::ptr::null_mut()
}

/// Writes the open generation and ends tracing (process exit). Only the traced process
/// writes: a forked child leaves its parent's trace alone.
pub fn stop() {
    finish_trace(EndReason::Exit);
}

/// Writes the open generation with the end record `reason` and stops tracing, if this process
/// is the one being traced and tracing runs. Not for the handler.
pub fn finish_trace(reason: EndReason) {
    if !lifecycle::is_traced_process() || !lifecycle::transition(Lifecycle::Running, Lifecycle::Stopping) {
        return;
    }
    match drain::finish(reason) {
        Ok(Some(path)) => log::info(&format!("wrote {path}")),
        Ok(None) => {}
        Err(message) => log::error(&message),
    }
    lifecycle::transition(Lifecycle::Stopping, Lifecycle::Off);
}
