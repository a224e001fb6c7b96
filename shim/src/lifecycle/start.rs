//! The starts of a trace: at start-up (from the library constructor), in a forked child, and
//! after an exec that failed; each opens a trace file and runs the drain thread.

use crate::config::Config;
use crate::lifecycle::drain_thread;
use crate::lifecycle::fatal_signals;
use crate::lifecycle::sandbox::runs_under_seccomp;
use crate::lifecycle::state::{self, Lifecycle};
use crate::lifecycle::threads::{self, current_stack_bounds, current_tid};
use crate::log::{self, LogLevel};
use crate::output::expand_pattern;
use crate::real_functions::real_sigaction;
use crate::sampling::timers::{self, choose_source};
use format::Header;
use sigprof::monotonic_ns;
use sigprof::{Registry, SamplerConfig};
use std::sync::OnceLock;
use writer::drain::{self, Drainer};
use writer::trace_file::TraceFile;

/// Starts sampling the process. Any failure leaves the host untouched with one line on stderr.
pub fn start() {
    if !state::transition(Lifecycle::Uninit, Lifecycle::Starting) {
        return;
    }
    if let Some(level) = std::env::var("SIGTRACE_LOG").ok().as_deref().and_then(LogLevel::parse) {
        log::set_level(level);
    }
    let config = CONFIG.get_or_init(crate::config::from_env);
    log::set_level(config.log_level);
    if runs_under_seccomp() {
        state::switch_off("the program runs under a seccomp filter, which sigtrace's system calls could meet");
        return;
    }
    if let Err(reason) = start_with(config) {
        state::switch_off(&reason);
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
            ring_words: sigprof::ring_words(config.buffer_kb, config.max_depth),
            unwind: config.unwind,
            mode: config.mode,
            wall_hz: config.wall_hz,
        },
        config.max_threads,
    )
    .ok_or("cannot map memory for the thread registry")?;
    let sigaction = real_sigaction().ok_or("cannot find libc's sigaction")?;
    sigprof::install_sampling_handler(config.signal, sigaction).map_err(|error| format!("cannot install the signal handler: {error}"))?;
    crate::sampling::pause::configure(config.paused, config.toggle_signal);
    fatal_signals::install_fatal_signal_handlers();
    threads::create_exit_key();
    detect_python();
    begin_trace(config, registry, TraceStart::StartUp)?;
    // Other threads exist at start-up only when an earlier constructor made them or the program
    // loaded sigtrace with dlopen; the seccomp check's read of /proc/self/status counted them.
    let one_thread = crate::lifecycle::sandbox::threads_at_start() == Some(1);
    if !one_thread {
        threads::register_existing_threads(registry);
    }
    // SAFETY: registers handlers with the required signature: the fork gate keeps the drain
    // thread out of the loader lock across fork (see writer::drain).
    unsafe { libc::pthread_atfork(Some(drain::close_fork_gate), Some(drain::open_fork_gate), Some(after_fork_in_child)) };
    run_drain_thread(one_thread)
}

/// Resumes tracing after an exec that failed (the image goes on): a new trace file (same pid,
/// next free name), every live thread's timer armed again.
pub fn resume_after_failed_exec() {
    let (Some(registry), Some(config)) = (Registry::get(), CONFIG.get()) else { return };
    if !state::transition(Lifecycle::Off, Lifecycle::Starting) {
        return;
    }
    let resumed = std::panic::catch_unwind(|| {
        begin_trace(config, registry, TraceStart::AfterFailedExec)?;
        if timers::current_source() == Some(sigprof::TimerSource::Itimer) {
            sigprof::set_process_itimer(config.hz).map_err(|error| format!("setitimer(ITIMER_PROF) refused: {error}"))?;
        }
        for slot in registry.live_slots() {
            if slot.state.load() == sigprof::SlotState::Active {
                timers::arm_thread_timer(slot, slot.tid.load(std::sync::atomic::Ordering::Relaxed), sigprof::CountFrom::Arming);
            }
        }
        run_drain_thread(false)
    });
    match resumed {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => state::switch_off(&reason),
        Err(_) => state::switch_off("internal error while resuming after a failed exec"),
    }
}

/// Which start of a trace [`begin_trace`] makes.
#[derive(Clone, Copy)]
enum TraceStart {
    /// The library's constructor: the calling thread is claimed and its timer armed.
    StartUp,
    /// An exec failed and the image goes on: the threads that have slots keep them.
    AfterFailedExec,
    /// A forked child (which shares its parent's command line): the calling thread is claimed
    /// and its timer armed, under `auto` on the source its forking thread had.
    ForkedChild { forking_thread_source: Option<sigprof::TimerSource> },
}

/// Starts generation 1 of a new trace file for this process.
fn begin_trace(config: &Config, registry: &'static Registry, start: TraceStart) -> Result<(), String> {
    // SAFETY: getpid/getppid are plain syscalls.
    let (pid, parent_pid) = unsafe { (libc::getpid() as u32, libc::getppid() as u32) };
    state::set_traced_pid(pid);
    let executable = unwind::executable_path();
    let executable_name = executable.rsplit('/').next().unwrap_or("unknown").to_string();
    let start_unix_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let start_clock_ns = monotonic_ns();
    // Before the first timer is armed: the trace's CPU time counts from here.
    let process_cpu_ns = sigprof::clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    sigprof::start_tracing();

    let inherited = match start {
        TraceStart::ForkedChild { forking_thread_source } => forking_thread_source,
        TraceStart::StartUp | TraceStart::AfterFailedExec => None,
    };
    let source = if !matches!(start, TraceStart::AfterFailedExec) {
        let tid = current_tid();
        let index = registry.claim_slot(tid, current_stack_bounds()).ok_or("cannot set up the main thread's ring")?;
        registry.attach_current_thread(index);
        threads::tag_current_thread_for_release(index);
        let slot = registry.slot(index).ok_or("no slot for the main thread")?;
        choose_source(config.timer, slot, tid, registry, inherited)?
    } else {
        timers::current_source().ok_or("no sampling source")?
    };

    let path = expand_pattern(&config.output_pattern, pid, &executable_name, start_unix_ns / 1_000_000_000);
    let extension = format::file_name::final_extension(&config.output_pattern);
    let file = TraceFile::create_exclusive(&path, extension).map_err(|error| format!("cannot create trace file {path}: {error}"))?;
    let path = file.path().to_string();
    let header = Header {
        pid,
        parent_pid,
        executable,
        args: if matches!(start, TraceStart::ForkedChild { .. }) { command_line_at_fork() } else { command_line() },
        clock: "CLOCK_MONOTONIC".into(),
        clock_hz: writer::drain::CLOCK_HZ,
        start_clock_ns,
        start_unix_ns,
        hz: config.hz,
        timer: timers::source_name().into(),
        mode: config.mode.name().into(),
        max_depth: config.max_depth as u32,
        generation_ms: config.generation_ms,
    };
    let mut drainer = Drainer::create(file, &header, registry, log::warn).map_err(|error| format!("cannot write trace file {path}: {error}"))?;
    drainer.count_cpu_from(process_cpu_ns);
    if let Some(rule) = config.rotate.map(crate::sampling::rotation_rule) {
        drainer.rotate(rule, config.keep, extension);
    }
    drain::install(drainer);
    log::info(&format!("sampling at {} Hz with the {} timer into {path}", config.hz, source.name()));
    Ok(())
}

/// Moves to `Running` and starts the drain thread (or, for a single-threaded program under
/// `SIGTRACE_DRAIN_THREAD=with-program-threads`, its safe points: `drain_thread`).
/// `one_thread`: the process is known to have a single thread (a forked child), so it need
/// not be counted.
fn run_drain_thread(one_thread: bool) -> Result<(), String> {
    if !state::transition(Lifecycle::Starting, Lifecycle::Running) {
        return Err("start-up was interrupted".into());
    }
    let config = CONFIG.get().ok_or("no configuration")?;
    drain_thread::start_for_new_trace(config, one_thread)
}

/// `pthread_atfork` child handler. The child inherits the parent's registry, rings and drain
/// state but none of its threads or timers: it forgets them all (the parent writes its own
/// open generation) and, unless `SIGTRACE_FOLLOW_FORK=0`, starts a trace file of its own.
extern "C" fn after_fork_in_child() {
    // Before the registry forgets the parent's timers.
    let forking_thread_source = Registry::get().and_then(Registry::current_slot).and_then(|slot| slot.timer.source());
    drain::open_fork_gate();
    let was_running = state::current() == Lifecycle::Running;
    state::set_state_after_fork(Lifecycle::Starting);
    sigprof::switch_off_tracing();
    pyframes::after_fork_in_child();
    drain::forget_after_fork();
    drain_thread::forget_after_fork();
    let (Some(registry), Some(config)) = (Registry::get(), CONFIG.get()) else {
        state::set_state_after_fork(Lifecycle::Off);
        return;
    };
    registry.reset_after_fork();
    if !was_running || !config.follow_fork {
        state::set_state_after_fork(Lifecycle::Off);
        return;
    }
    let restarted =
        std::panic::catch_unwind(|| begin_trace(config, registry, TraceStart::ForkedChild { forking_thread_source }).and_then(|()| run_drain_thread(true)));
    match restarted {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => state::switch_off(&reason),
        Err(_) => state::switch_off("internal error while following a fork"),
    }
}

/// The command line last read by this image (see [`command_line`]).
static COMMAND_LINE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The command line: the arguments libc gave the library's constructors (the process's
/// `argv`, as `/proc/self/cmdline` shows it until the program rewrites it), else read from
/// `/proc/self/cmdline`.
fn command_line() -> Vec<String> {
    let mut args: Vec<String> = std::env::args_os().map(|arg| arg.to_string_lossy().into_owned()).collect();
    if args.is_empty() {
        args = crate::proc_file::read("/proc/self/cmdline")
            .map(|bytes| bytes.split(|&b| b == 0).filter(|arg| !arg.is_empty()).map(|arg| String::from_utf8_lossy(arg).into_owned()).collect())
            .unwrap_or_default();
    }
    if let Ok(mut last) = COMMAND_LINE.try_lock() {
        last.clone_from(&args);
    }
    args
}

/// A forked child's command line: its parent's, as read at the parent's start (reading
/// `/proc/self/cmdline` costs a child ~50 µs; a program that rewrites its argv later, as
/// PostgreSQL's backends do for `ps`, shows its new title in neither), else read.
fn command_line_at_fork() -> Vec<String> {
    match COMMAND_LINE.try_lock() {
        Ok(last) if !last.is_empty() => last.clone(),
        _ => command_line(),
    }
}
/// Publishes the process's CPython to the handler, if it runs one (at start-up, before any
/// timer is armed, and after each `dlopen`); one line when its version has no known layout.
pub fn detect_python() {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let pyframes::Detected::Unsupported(what) = pyframes::detect() {
        if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
            crate::log::warn(&format!("{what}: its Python frames are not read (native stacks only)"));
        }
    }
}
