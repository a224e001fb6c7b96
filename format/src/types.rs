//! The trace's records as a reader sees them (header, generation, thread, module, sample, event,
//! end) and the file's constants: magic, version, chunk tags.

use crate::stack_table::StackTable;
use crate::thread_state::SampleState;

/// The first 8 bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"SIGTRACE";
/// Version 3: the stack tree in depth-first order with sibling-relative addresses, and sample
/// records of 3–4 bytes (see `encode_generation`). Readers take only their own version.
pub const FORMAT_VERSION: u16 = 3;
/// Chunk tag of the header.
pub const TAG_HEADER: u8 = b'H';
/// Chunk tag of a generation.
pub const TAG_GENERATION: u8 = b'G';
/// Chunk tag of the end record.
pub const TAG_END: u8 = b'E';
/// Chunk tag: which timer sampled each thread (see [`crate::SourceTable`]).
pub const TAG_SOURCES: u8 = b'S';
/// Chunk tag of a piece of the open generation: what one drain period took from the rings,
/// written as it goes so that an abrupt end (no exit path ran) loses at most one drain period.
/// A generation chunk of the same sequence supersedes its pieces.
pub const TAG_PIECE: u8 = b'P';
/// Chunk tag of JIT symbols: names of generated code read from the runtime's perf map.
pub const TAG_JIT_SYMBOLS: u8 = b'J';
/// Bytes of framing around a payload: tag, length, checksum.
pub const CHUNK_OVERHEAD: usize = 1 + 4 + 4;
/// Bytes before the first chunk.
pub const PREAMBLE_LEN: usize = MAGIC.len() + 2;

/// Who was traced and how. Written once at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The traced process.
    pub pid: u32,
    /// Its parent when tracing began.
    pub parent_pid: u32,
    /// Path of the executable (`/proc/self/exe`).
    pub executable: String,
    /// The command line.
    pub args: Vec<String>,
    /// Name of the clock the timestamps come from, e.g. `CLOCK_MONOTONIC`.
    pub clock: String,
    /// Ticks of `clock` per second (timestamps are in these ticks).
    pub clock_hz: u64,
    /// `clock` and the Unix wall clock read together at start-up, in ns.
    pub start_clock_ns: u64,
    /// The Unix wall clock read together with `start_clock_ns`, ns.
    pub start_unix_ns: u64,
    /// Requested sampling frequency per thread, in Hz.
    pub hz: u32,
    /// The sampling source in use: `perf`, `posix` or `itimer`.
    pub timer: String,
    /// What a sample measures: `cpu` (on-CPU time). `wall` is reserved for off-CPU sampling.
    pub mode: String,
    /// The most frames a stack may have.
    pub max_depth: u32,
    /// The requested length of a generation, ms.
    pub generation_ms: u32,
}

/// A thread seen during a generation. Samples refer to threads by index into the table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Thread {
    /// The kernel's thread id.
    pub tid: u32,
    /// The last non-empty name the thread had (`PR_GET_NAME`).
    pub name: String,
    /// The thread's CPU time at the end of the generation (or when it was last seen), ns.
    pub cpu_ns: u64,
    /// Periods of CPU (sample weight) this thread lost in this generation (ring full, no
    /// slot, …).
    pub dropped: u64,
    /// The thread exited during the generation.
    pub exited: bool,
}

/// A loaded object: enough to symbolise its addresses offline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Module {
    /// The object's path as the loader named it.
    pub path: String,
    /// The load bias: address in the process = address in the file + `base`.
    pub base: u64,
    /// Range covered by the object's loadable segments in the process.
    pub start: u64,
    /// End of that range (exclusive).
    pub end: u64,
    /// The GNU build-id note's bytes; empty when the object has none.
    pub build_id: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
/// One sample: a thread's stack when its timer fired.
pub struct Sample {
    /// Timestamp in header clock ticks.
    pub time: u64,
    /// Index into the generation's thread table.
    pub thread: u32,
    /// Index into the generation's stack table.
    pub stack: u32,
    /// Sampling periods this sample stands for (1, or more when a timer overran). In a `wall`
    /// trace a period is wall time for a runnable or blocked sample, CPU time for a running one.
    pub weight: u32,
    /// Running (every sample of a `cpu` trace), runnable, or blocked in a call.
    pub state: SampleState,
}

/// One closed generation: everything needed to interpret its samples.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Generation {
    /// 1, 2, … in the order the writer closed the generations.
    pub sequence: u64,
    /// Start, in header clock ticks.
    pub start_time: u64,
    /// End, in header clock ticks.
    pub end_time: u64,
    /// CPU time of the traced threads of the process so far (the tracer's own thread excluded), ns.
    pub process_cpu_ns: u64,
    /// The thread table; samples and events refer to threads by index.
    pub threads: Vec<Thread>,
    /// The objects loaded during the generation.
    pub modules: Vec<Module>,
    /// Stacks, leaf first: frame 0 is the interrupted instruction, the rest are return addresses.
    /// Shared as a prefix tree, as the file stores them (see [`StackTable`]).
    pub stacks: StackTable,
    /// Samples, in time order.
    pub samples: Vec<Sample>,
    /// Named counters (how stacks ended, samples dropped for want of a slot, …).
    pub counters: Vec<(String, u64)>,
    /// How each stack of `stacks` was walked: `method << 4 | end` (see [`walk`]). Parallel to
    /// `stacks`, or empty (a writer may leave it out).
    pub stack_walks: Vec<u8>,
    /// Thread starts and exits, log messages and regions of this generation, sorted by time.
    pub events: Vec<Event>,
    /// The Python code objects its stacks' Python frames name ([`crate::python`]); empty when
    /// no Python ran.
    pub python_code: Vec<crate::PythonCode>,
}

impl Generation {
    /// The process's CPU time before its trace (or this file of a rotated series) began, when
    /// this generation is one that says it: one that carries the process's CPU time (a piece
    /// or a spill carries 0), whose `series.process_cpu_ns_before` counter is that time (absent:
    /// 0). A trace's CPU time counts from the first such generation's value.
    pub fn process_cpu_ns_before(&self) -> Option<u64> {
        (self.process_cpu_ns > 0).then(|| self.counters.iter().find(|(name, _)| name == crate::counters::SERIES_CPU_NS_BEFORE).map_or(0, |(_, value)| *value))
    }
}

/// What an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The thread's timer was armed (it started, or tracing began).
    ThreadStart,
    /// The thread exited.
    ThreadExit,
    /// `sigtrace_log(category, message)`: `category` and `text` are set.
    Log,
    /// `sigtrace_region_begin(name)`: the name is in `text`.
    RegionBegin,
    /// `sigtrace_region_end()`: closes the thread's innermost open region.
    RegionEnd,
    /// Sampling was paused for the whole process (by this thread: `sigtrace_pause()`, the
    /// toggle signal, or `SIGTRACE_PAUSED=1` at start-up); `text` says which.
    Paused,
    /// Sampling resumed for the whole process; `text` says how.
    Resumed,
}

impl EventKind {
    /// Every kind, in code order.
    pub const ALL: [EventKind; 7] =
        [EventKind::ThreadStart, EventKind::ThreadExit, EventKind::Log, EventKind::RegionBegin, EventKind::RegionEnd, EventKind::Paused, EventKind::Resumed];

    /// The kind's code in the file.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a code, `None` for a code this reader does not know.
    pub fn from_code(code: u8) -> Option<EventKind> {
        EventKind::ALL.get(code as usize).copied()
    }
}

/// A timed event of one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Header clock ticks.
    pub time: u64,
    /// Index into the generation's thread table.
    pub thread: u32,
    /// What happened.
    pub kind: EventKind,
    /// A log message's category; empty for other kinds.
    pub category: String,
    /// A log message's text, a region's name, or what paused or resumed sampling; empty for
    /// other kinds.
    pub text: String,
}

/// Why the traced image stopped writing. A trace without an end record was cut short
/// (`SIGKILL`, power loss, a crash that could not be flushed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `exit`, a return from `main`, or the last thread's `pthread_exit`.
    Exit,
    /// `_exit` or `_Exit`: no exit handlers ran.
    UnderscoreExit,
    /// A fatal signal (the number is in [`End::signal`]).
    FatalSignal,
    /// `execve` replaced the image; the new program writes a trace of its own.
    Exec,
    /// sigtrace switched itself off after an internal error.
    Error,
    /// The program installed a seccomp filter: sigtrace wrote what it had and stopped, so that
    /// none of its system calls meets the filter.
    Sandbox,
    /// `SIGTRACE_ROTATE`: the file is complete, the trace goes on in the next file of its series.
    Rotated,
}

impl EndReason {
    /// The reason's code in the file.
    pub fn code(self) -> u64 {
        match self {
            EndReason::Exit => 0,
            EndReason::UnderscoreExit => 1,
            EndReason::FatalSignal => 2,
            EndReason::Exec => 3,
            EndReason::Error => 4,
            EndReason::Sandbox => 5,
            EndReason::Rotated => 6,
        }
    }

    /// The reason of a code, `None` for a code this reader does not know.
    pub fn from_code(code: u64) -> Option<EndReason> {
        [EndReason::Exit, EndReason::UnderscoreExit, EndReason::FatalSignal, EndReason::Exec, EndReason::Error, EndReason::Sandbox, EndReason::Rotated]
            .into_iter()
            .find(|r| r.code() == code)
    }
}

/// The end record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// Why the image stopped.
    pub reason: EndReason,
    /// The signal number for [`EndReason::FatalSignal`], else 0.
    pub signal: u32,
    /// When, in header clock ticks.
    pub time: u64,
    /// Set when the traced process's parent (`sigtrace record`) wrote this record from the
    /// wait status, because the process ended without any exit path of its own (a raw
    /// `exit_group` such as Go's, `SIGKILL`): the exit code for [`EndReason::UnderscoreExit`],
    /// 0 for [`EndReason::FatalSignal`]. `None` when the process wrote the record itself.
    pub seen_by_parent: Option<u8>,
}

impl End {
    /// How `sigtrace info` names it, e.g. `fatal signal 11 (SIGSEGV)`.
    pub fn describe(&self) -> String {
        match self.reason {
            EndReason::Exit => "clean exit".into(),
            EndReason::UnderscoreExit => match self.seen_by_parent {
                Some(code) => format!("exit status {code} without libc's exit (a raw exit_group such as Go's; seen by sigtrace record)"),
                None => "exit via _exit".into(),
            },
            EndReason::FatalSignal if self.seen_by_parent.is_some() => {
                format!("fatal signal {} ({}), no exit path ran (seen by sigtrace record)", self.signal, signal_name(self.signal))
            }
            EndReason::FatalSignal => format!("fatal signal {} ({})", self.signal, signal_name(self.signal)),
            EndReason::Exec => "exec".into(),
            EndReason::Error => "sigtrace switched off after an error".into(),
            EndReason::Sandbox => "sandbox (the program installed a seccomp filter; sigtrace stopped before it)".into(),
            EndReason::Rotated => "rotated (SIGTRACE_ROTATE: the trace goes on in the next file of its series)".into(),
        }
    }
}

/// The usual name of a Linux signal number.
pub fn signal_name(signal: u32) -> &'static str {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(signal as usize).copied().unwrap_or("real-time signal")
}
