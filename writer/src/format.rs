//! The trace file format: one definition, used by the shim to encode and by `sigtrace` to decode.
//!
//! ```text
//! file       := MAGIC (8 bytes "SIGTRACE") VERSION (u16 LE) chunk*
//! chunk      := TAG (1 byte) LEN (u32 LE) PAYLOAD (LEN bytes) CRC32 (u32 LE over TAG, LEN, PAYLOAD)
//! TAG 'H'    := the header, once, first: who was traced and how
//! TAG 'G'    := one generation, self-contained: threads, modules, stacks, samples, counters
//! TAG 'E'    := how the traced image ended (exit, _exit, fatal signal, exec), after its last generation
//! ```
//!
//! The format's rules, byte layout and what a reader does with a damaged tail are in docs/FORMAT.md
//! (from the repository's root): a chunk is written with one `write` (`sigprof` invariant 9), a
//! generation refers to nothing outside itself, and fields are only ever appended.

use crate::stack_table::{StackTable, NO_NODE};
use crate::thread_state::SampleState;
use crate::varint::{crc32, put_bytes, put_str, put_svarint, put_uvarint, Cursor, DecodeError};

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
}

impl EventKind {
    /// Every kind, in code order.
    pub const ALL: [EventKind; 5] = [EventKind::ThreadStart, EventKind::ThreadExit, EventKind::Log, EventKind::RegionBegin, EventKind::RegionEnd];

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
    /// A log message's text, or a region's name; empty for other kinds.
    pub text: String,
}

/// The codes of [`Generation::stack_walks`]: which unwinding method produced a stack and why
/// its walk ended.
pub mod walk {
    /// Frame pointers, by choice (`SIGTRACE_UNWIND=fp`).
    pub const METHOD_FP: u8 = 0;
    /// DWARF CFI (frames without CFI follow frame pointers).
    pub const METHOD_DWARF: u8 = 1;
    /// Frame pointers because every DWARF unwind cache was in use.
    pub const METHOD_FP_NO_CACHE: u8 = 2;
    /// Frame pointers because too little stack was left below the interrupted one for DWARF.
    pub const METHOD_FP_NO_STACK_ROOM: u8 = 3;
    /// Frame pointers because the unwind tables were not built yet (first milliseconds).
    pub const METHOD_FP_NOT_READY: u8 = 4;
    /// Only the interrupted PC: DWARF was forced (`SIGTRACE_UNWIND=dwarf`) but could not run.
    pub const METHOD_PC_ONLY: u8 = 5;
    /// Only the interrupted PC: the stack the handler ran on had too little room for a walk.
    pub const METHOD_PC_ONLY_NO_STACK_ROOM: u8 = 6;

    /// The walk reached the outermost frame (a null return address or undefined CFI).
    pub const END_ROOT: u8 = 0;
    /// A read fell outside the thread's stack.
    pub const END_STACK_BOUNDS: u8 = 1;
    /// A frame did not advance, or a return address points outside all code (bad CFI or frame pointer).
    pub const END_BAD_FRAME: u8 = 2;
    /// `SIGTRACE_DEPTH` frames were taken.
    pub const END_DEPTH_LIMIT: u8 = 3;

    /// How `sigtrace info` names the method of a walk code.
    pub fn method_name(code: u8) -> &'static str {
        match code >> 4 {
            METHOD_FP => "fp",
            METHOD_DWARF => "dwarf",
            METHOD_FP_NO_CACHE => "fp (no free DWARF cache)",
            METHOD_FP_NO_STACK_ROOM => "fp (no stack room for DWARF)",
            METHOD_FP_NOT_READY => "fp (unwind tables not ready)",
            METHOD_PC_ONLY => "pc only",
            METHOD_PC_ONLY_NO_STACK_ROOM => "pc only (no stack room for a walk)",
            _ => "unknown",
        }
    }

    /// How `sigtrace info` names the end of a walk code.
    pub fn end_name(code: u8) -> &'static str {
        match code & 0x0f {
            END_ROOT => "root",
            END_STACK_BOUNDS => "stack bound",
            END_BAD_FRAME => "bad frame or CFI",
            END_DEPTH_LIMIT => "depth limit",
            _ => "unknown",
        }
    }

    /// The counters of samples per walk method (indexed by method) and per walk end (indexed
    /// by end) that each generation carries.
    pub const METHOD_COUNTERS: [&str; 7] = [
        "unwind.method.fp",
        "unwind.method.dwarf",
        "unwind.method.fp_no_cache",
        "unwind.method.fp_no_stack_room",
        "unwind.method.fp_not_ready",
        "unwind.method.pc_only",
        "unwind.method.pc_only_no_stack_room",
    ];
    /// The counters of samples per walk end, indexed by end.
    pub const END_COUNTERS: [&str; 4] = ["unwind.end.root", "unwind.end.stack_bounds", "unwind.end.bad_frame", "unwind.end.depth_limit"];
    /// The prefix shared by [`END_COUNTERS`].
    pub const END_COUNTER_PREFIX: &str = "unwind.end.";
}

/// The names of a generation's other counters (see docs/FORMAT.md, "Counters"). An absent counter
/// reads as zero.
pub mod counters {
    /// Samples of threads that had no registry slot (the registry was full), in periods.
    pub const DROPPED_NO_SLOT: &str = "dropped.no_slot";
    /// Threads that got no registry slot.
    pub const THREADS_WITHOUT_SLOT: &str = "threads.without_slot";
    /// Threads still inside the handler when the generation's wait gave up.
    pub const WRITERS_STILL_INSIDE: &str = "generation.writers_still_inside";
    /// Replaced unwind tables whose release waits for a completed advance.
    pub const SNAPSHOTS_DEFERRED: &str = "unwind.snapshots_deferred";
    /// Timers the storm guard re-programmed after a storm.
    pub const STORMS_REPROGRAMMED: &str = "timer.storms_reprogrammed";
    /// Timers the storm guard stopped after a second storm.
    pub const STORMS_SWITCHED_OFF: &str = "timer.storms_switched_off";
    /// Annotation events skipped because their thread was already inside the tracer.
    pub const ANNOTATIONS_SKIPPED_REENTRANT: &str = "annotations.skipped_reentrant";
    /// CPU time of sigtrace's drain thread so far, ns.
    pub const DRAIN_CPU_NS_TOTAL: &str = "drain.cpu_ns_total";
    /// Wall-clock mode: stacks of blocked threads walked (a new call site).
    pub const WALL_WALKS: &str = "wall.walks";
    /// Wall-clock mode: blocked samples that reused a stack walked before.
    pub const WALL_REUSED: &str = "wall.reused";
    /// Wall-clock mode: walks discarded because the call returned while the stack was read.
    pub const WALL_TORN: &str = "wall.torn";
    /// Wall-clock mode: blocked threads not sampled because the unwind tables were not ready.
    pub const WALL_NOT_READY: &str = "wall.not_ready";
    /// Wall-clock mode: threads outside interposed calls classified through `/proc`.
    pub const WALL_PROC_READS: &str = "wall.proc_reads";
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
        }
    }

    /// The reason of a code, `None` for a code this reader does not know.
    pub fn from_code(code: u64) -> Option<EndReason> {
        [EndReason::Exit, EndReason::UnderscoreExit, EndReason::FatalSignal, EndReason::Exec, EndReason::Error, EndReason::Sandbox]
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
}

impl End {
    /// How `sigtrace info` names it, e.g. `fatal signal 11 (SIGSEGV)`.
    pub fn describe(&self) -> String {
        match self.reason {
            EndReason::Exit => "clean exit".into(),
            EndReason::UnderscoreExit => "exit via _exit".into(),
            EndReason::FatalSignal => format!("fatal signal {} ({})", self.signal, signal_name(self.signal)),
            EndReason::Exec => "exec".into(),
            EndReason::Error => "sigtrace switched off after an error".into(),
            EndReason::Sandbox => "sandbox (the program installed a seccomp filter; sigtrace stopped before it)".into(),
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

/// Appends an end record chunk.
pub fn encode_end(out: &mut Vec<u8>, end: &End) {
    let mut payload = Vec::with_capacity(16);
    put_uvarint(&mut payload, end.reason.code());
    put_uvarint(&mut payload, end.signal.into());
    put_uvarint(&mut payload, end.time);
    encode_chunk(out, TAG_END, &payload);
}

/// Decodes an end record's payload.
pub fn decode_end(payload: &[u8]) -> Result<End, DecodeError> {
    let mut c = Cursor::new(payload);
    let reason = EndReason::from_code(c.uvarint()?).ok_or(DecodeError { offset: 0, what: "unknown end reason" })?;
    Ok(End { reason, signal: c.u32_varint()?, time: c.uvarint()? })
}

/// Writes the preamble that opens every trace file.
pub fn encode_preamble(out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
}

/// Frames `payload` as one chunk of kind `tag` with its checksum.
pub fn encode_chunk(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    let start = out.len();
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let checksum = crc32(&out[start..]);
    out.extend_from_slice(&checksum.to_le_bytes());
}

/// Appends the header chunk.
pub fn encode_header(out: &mut Vec<u8>, header: &Header) {
    let mut payload = Vec::with_capacity(256);
    put_uvarint(&mut payload, header.pid.into());
    put_uvarint(&mut payload, header.parent_pid.into());
    put_str(&mut payload, &header.executable);
    put_uvarint(&mut payload, header.args.len() as u64);
    for arg in &header.args {
        put_str(&mut payload, arg);
    }
    put_str(&mut payload, &header.clock);
    put_uvarint(&mut payload, header.clock_hz);
    put_uvarint(&mut payload, header.start_clock_ns);
    put_uvarint(&mut payload, header.start_unix_ns);
    put_uvarint(&mut payload, header.hz.into());
    put_str(&mut payload, &header.timer);
    put_str(&mut payload, &header.mode);
    put_uvarint(&mut payload, header.max_depth.into());
    put_uvarint(&mut payload, header.generation_ms.into());
    encode_chunk(out, TAG_HEADER, &payload);
}

/// Encodes a generation. Samples should be sorted by time (their timestamps are stored as
/// deltas; an unsorted list still round-trips, only less compactly). Stacks are stored in the
/// prefix tree's order (see `encode_stack_tree`), which a reader sees as the stack table:
/// samples and walk codes are renumbered with them, so a generation whose stacks are not in
/// that order decodes to the same samples under other stack ids.
///
/// ```text
/// sample := time_delta (zigzag, header clock ticks) (thread << 1 | weight != 1) stack [weight]
/// ```
pub fn encode_generation(out: &mut Vec<u8>, generation: &Generation) {
    let mut payload = Vec::with_capacity(64 + generation.samples.len() * 4);
    let p = &mut payload;
    put_uvarint(p, generation.sequence);
    put_uvarint(p, generation.start_time);
    put_svarint(p, generation.end_time as i64 - generation.start_time as i64);
    put_uvarint(p, generation.process_cpu_ns);

    put_uvarint(p, generation.threads.len() as u64);
    for thread in &generation.threads {
        put_uvarint(p, thread.tid.into());
        put_str(p, &thread.name);
        put_uvarint(p, thread.cpu_ns);
        put_uvarint(p, thread.dropped);
        put_uvarint(p, thread.exited.into());
    }

    put_uvarint(p, generation.modules.len() as u64);
    for module in &generation.modules {
        put_str(p, &module.path);
        put_uvarint(p, module.base);
        put_uvarint(p, module.start);
        put_uvarint(p, module.end.saturating_sub(module.start));
        put_bytes(p, &module.build_id);
    }

    // The writer's own stacks (at most `max_depth` frames each): copying them out is cheap.
    let stacks: Vec<Vec<u64>> = generation.stacks.iter().map(Iterator::collect).collect();
    let (stack_ids, stack_walks) = encode_stack_tree(p, &stacks, &generation.stack_walks);

    put_uvarint(p, generation.samples.len() as u64);
    let mut previous_time = generation.start_time;
    for sample in &generation.samples {
        put_svarint(p, sample.time.wrapping_sub(previous_time) as i64);
        previous_time = sample.time;
        put_uvarint(p, u64::from(sample.thread) << 1 | u64::from(sample.weight != 1));
        // A sample of a stack that is not in the table stays invalid (the reader rejects it).
        put_uvarint(p, stack_ids.get(sample.stack as usize).map_or(u64::MAX, |&id| id.into()));
        if sample.weight != 1 {
            put_uvarint(p, sample.weight.into());
        }
    }

    put_uvarint(p, generation.counters.len() as u64);
    for (name, value) in &generation.counters {
        put_str(p, name);
        put_uvarint(p, *value);
    }

    put_bytes(p, &stack_walks);

    put_uvarint(p, generation.events.len() as u64);
    let mut previous_time = generation.start_time;
    for event in &generation.events {
        put_svarint(p, event.time.wrapping_sub(previous_time) as i64);
        previous_time = event.time;
        put_uvarint(p, event.thread.into());
        put_uvarint(p, event.kind.code().into());
        put_str(p, &event.category);
        put_str(p, &event.text);
    }

    // Sample states only when some sample is not a running one: a `cpu` trace has none.
    if generation.samples.iter().any(|sample| sample.state != SampleState::RUNNING) {
        put_uvarint(p, generation.samples.len() as u64);
        for sample in &generation.samples {
            put_uvarint(p, sample.state.code());
        }
    }
    encode_chunk(out, TAG_GENERATION, &payload);
}

/// Writes stacks as a prefix tree of root-first frames, in depth-first order with siblings
/// sorted by address: stacks of one program share most of their outer frames, so each
/// distinct stack costs a node or two instead of all its frames, and a node's address is
/// stored as the (small) distance from its previous sibling's.
///
/// ```text
/// tree   := EMPTY_STACKS node_count node*
/// node   := (up * 3 + ends) frame_delta    up: frames to leave from the previous node's path
///           [count if ends = 2]            before this node is appended (0: it is a child of
///                                          the previous node); ends: 0 = no stack ends here,
///                                          1 = one, 2 = `count` stacks (frames walked differently)
///           frame_delta = frame - reference (zigzag): reference = the previous sibling's frame
///           when up > 0, else the parent's (0 for a root)
/// ```
/// Stack ids are assigned in that order: the empty stacks first, then each node's stacks.
/// Returns the new id of each stack of `stacks` and the walk codes in the new order.
fn encode_stack_tree(out: &mut Vec<u8>, stacks: &[Vec<u64>], walks: &[u8]) -> (Vec<u32>, Vec<u8>) {
    let walk_of = |stack: usize| walks.get(stack).copied().unwrap_or(0);
    let mut order: Vec<usize> = (0..stacks.len()).collect();
    order.sort_by(|&a, &b| stacks[a].iter().rev().cmp(stacks[b].iter().rev()).then(walk_of(a).cmp(&walk_of(b))));
    let mut new_ids = vec![0u32; stacks.len()];
    let mut sorted_walks = Vec::with_capacity(if walks.is_empty() { 0 } else { stacks.len() });
    let mut nodes: Vec<(u64, u64, u64)> = Vec::new(); // (up, frame delta as zigzag-able u64, stacks ending)
    let mut empty_stacks = 0u64;
    let mut path: Vec<u64> = Vec::new();
    for (new_id, &stack) in order.iter().enumerate() {
        new_ids[stack] = new_id as u32;
        if !walks.is_empty() {
            sorted_walks.push(walk_of(stack));
        }
        let frames: Vec<u64> = stacks[stack].iter().rev().copied().collect();
        if frames.is_empty() {
            empty_stacks += 1;
            continue;
        }
        let common = path.iter().zip(&frames).take_while(|(a, b)| a == b).count();
        if common == frames.len() && common == path.len() {
            if let Some(last) = nodes.last_mut() {
                last.2 += 1; // the same frames as the previous stack, walked differently
            }
            continue;
        }
        // Sorted order: a stack is never a prefix of the one before it, so it adds a node.
        for depth in common..frames.len() {
            let (up, reference) = if depth == common && path.len() > common {
                ((path.len() - common) as u64, path[common])
            } else {
                (0, if depth == 0 { 0 } else { frames[depth - 1] })
            };
            nodes.push((up, frames[depth].wrapping_sub(reference), 0));
        }
        if let Some(last) = nodes.last_mut() {
            last.2 = 1;
        }
        path = frames;
    }
    put_uvarint(out, empty_stacks);
    put_uvarint(out, nodes.len() as u64);
    for &(up, delta, ends) in &nodes {
        put_uvarint(out, up * 3 + ends.min(2));
        put_svarint(out, delta as i64);
        if ends >= 2 {
            put_uvarint(out, ends);
        }
    }
    (new_ids, sorted_walks)
}

/// The most stacks one tree node may end (they differ only in their walk code, a byte).
const MAX_STACKS_PER_NODE: u64 = 256;

/// Reads the stacks written by [`encode_stack_tree`] into a [`StackTable`] of the same shape:
/// a node per node of the file, a stack per stack, so memory is proportional to the payload
/// (at most `MAX_STACKS_PER_NODE` stacks per node of 3 bytes). Every reference is checked.
fn decode_stack_tree(c: &mut Cursor<'_>, payload_len: usize) -> Result<StackTable, DecodeError> {
    let broken = |c: &Cursor<'_>, what| DecodeError { offset: payload_len - c.remaining(), what };
    let mut table = StackTable::new();
    let empty_stacks = c.count(1)?;
    for _ in 0..empty_stacks {
        table.push_leaf(NO_NODE);
    }
    let node_count = c.count(2)?;
    // The nodes from the root to the previous node.
    let mut path: Vec<u32> = Vec::new();
    for _ in 0..node_count {
        let head = c.uvarint()?;
        let (up, ends) = (head / 3, head % 3);
        if up > path.len() as u64 {
            return Err(broken(c, "stack node leaves more frames than its path has"));
        }
        let up = up as usize;
        let frame_of = |node: u32| table.nodes()[node as usize].frame;
        let reference = if up > 0 { frame_of(path[path.len() - up]) } else { path.last().map_or(0, |&node| frame_of(node)) };
        path.truncate(path.len() - up);
        let frame = reference.wrapping_add(c.svarint()? as u64);
        let node = table.add_node(path.last().copied().unwrap_or(NO_NODE), frame);
        path.push(node);
        let ends = if ends == 2 { c.uvarint()? } else { ends };
        if ends > MAX_STACKS_PER_NODE {
            return Err(broken(c, "too many stacks end at one node"));
        }
        if table.len() as u64 + ends > u64::from(u32::MAX) {
            return Err(broken(c, "more stacks than 32-bit ids can name"));
        }
        for _ in 0..ends {
            table.push_leaf(node);
        }
    }
    Ok(table)
}

/// Decodes a header chunk's payload.
pub fn decode_header(payload: &[u8]) -> Result<Header, DecodeError> {
    let mut c = Cursor::new(payload);
    let pid = c.u32_varint()?;
    let parent_pid = c.u32_varint()?;
    let executable = c.string()?;
    let arg_count = c.count(1)?;
    let mut args = Vec::with_capacity(arg_count);
    for _ in 0..arg_count {
        args.push(c.string()?);
    }
    Ok(Header {
        pid,
        parent_pid,
        executable,
        args,
        clock: c.string()?,
        clock_hz: c.uvarint()?,
        start_clock_ns: c.uvarint()?,
        start_unix_ns: c.uvarint()?,
        hz: c.u32_varint()?,
        timer: c.string()?,
        mode: c.string()?,
        max_depth: c.u32_varint()?,
        generation_ms: c.u32_varint()?,
    })
}

/// Decodes a generation chunk's payload; every reference and count is checked (docs/FORMAT.md, "Checks").
pub fn decode_generation(payload: &[u8]) -> Result<Generation, DecodeError> {
    let mut c = Cursor::new(payload);
    let sequence = c.uvarint()?;
    let start_time = c.uvarint()?;
    let end_time = start_time.wrapping_add(c.svarint()? as u64);
    let process_cpu_ns = c.uvarint()?;
    let threads = decode_threads(&mut c)?;
    let modules = decode_modules(&mut c)?;
    let stacks = decode_stack_tree(&mut c, payload.len())?;
    let samples = decode_samples(&mut c, payload.len(), start_time, threads.len(), stacks.len())?;
    let counter_count = c.count(2)?;
    let mut counters = Vec::with_capacity(counter_count);
    for _ in 0..counter_count {
        counters.push((c.string()?, c.uvarint()?));
    }
    // The optional tail, in the order fields were appended to the format.
    let stack_walks = if c.remaining() > 0 { c.bytes()?.to_vec() } else { Vec::new() };
    if !stack_walks.is_empty() && stack_walks.len() != stacks.len() {
        return Err(DecodeError { offset: payload.len() - c.remaining(), what: "stack walk codes do not match the stacks" });
    }
    let events = if c.remaining() > 0 { decode_events(&mut c, payload.len(), start_time, threads.len())? } else { Vec::new() };
    let mut samples = samples;
    if c.remaining() > 0 {
        decode_sample_states(&mut c, payload.len(), &mut samples)?;
    }
    Ok(Generation { sequence, start_time, end_time, process_cpu_ns, threads, modules, stacks, samples, counters, stack_walks, events })
}

/// The thread table of a generation.
fn decode_threads(c: &mut Cursor<'_>) -> Result<Vec<Thread>, DecodeError> {
    let thread_count = c.count(5)?;
    let mut threads = Vec::with_capacity(thread_count);
    for _ in 0..thread_count {
        threads.push(Thread { tid: c.u32_varint()?, name: c.string()?, cpu_ns: c.uvarint()?, dropped: c.uvarint()?, exited: c.uvarint()? != 0 });
    }
    Ok(threads)
}

/// The module table of a generation.
fn decode_modules(c: &mut Cursor<'_>) -> Result<Vec<Module>, DecodeError> {
    let module_count = c.count(5)?;
    let mut modules = Vec::with_capacity(module_count);
    for _ in 0..module_count {
        let path = c.string()?;
        let base = c.uvarint()?;
        let start = c.uvarint()?;
        let end = start.wrapping_add(c.uvarint()?);
        let build_id = c.bytes()?.to_vec();
        modules.push(Module { path, base, start, end, build_id });
    }
    Ok(modules)
}

/// The sample records of a generation (times delta-coded from `start_time`), each checked to
/// refer to one of `threads` threads and `stacks` stacks. `payload_len` places errors.
fn decode_samples(c: &mut Cursor<'_>, payload_len: usize, start_time: u64, threads: usize, stacks: usize) -> Result<Vec<Sample>, DecodeError> {
    let sample_count = c.count(3)?; // time delta, thread, stack: a byte each at least
    let mut samples = Vec::with_capacity(sample_count);
    let mut previous_time = start_time;
    for _ in 0..sample_count {
        previous_time = previous_time.wrapping_add(c.svarint()? as u64);
        let thread_and_flag = c.uvarint()?;
        let stack = c.u32_varint()?;
        let weight = if thread_and_flag & 1 == 1 { c.u32_varint()? } else { 1 };
        let sample =
            Sample { time: previous_time, thread: u32::try_from(thread_and_flag >> 1).unwrap_or(u32::MAX), stack, weight, state: SampleState::RUNNING };
        if sample.thread as usize >= threads || sample.stack as usize >= stacks {
            return Err(DecodeError { offset: payload_len - c.remaining(), what: "sample refers to a missing thread or stack" });
        }
        samples.push(sample);
    }
    Ok(samples)
}

/// The sample states of a generation, one per sample, into `samples`.
fn decode_sample_states(c: &mut Cursor<'_>, payload_len: usize, samples: &mut [Sample]) -> Result<(), DecodeError> {
    let count = c.count(1)?;
    if count != samples.len() {
        return Err(DecodeError { offset: payload_len - c.remaining(), what: "sample states do not match the samples" });
    }
    for sample in samples {
        sample.state = SampleState::from_code(c.uvarint()?).ok_or(DecodeError { offset: payload_len - c.remaining(), what: "unknown thread state" })?;
    }
    Ok(())
}

/// The events of a generation (times delta-coded from `start_time`), each checked to refer to
/// one of `threads` threads. `payload_len` places errors.
fn decode_events(c: &mut Cursor<'_>, payload_len: usize, start_time: u64, threads: usize) -> Result<Vec<Event>, DecodeError> {
    let event_count = c.count(5)?;
    let mut events = Vec::with_capacity(event_count);
    let mut previous_time = start_time;
    for _ in 0..event_count {
        previous_time = previous_time.wrapping_add(c.svarint()? as u64);
        let thread = c.u32_varint()?;
        let kind = u8::try_from(c.uvarint()?).ok().and_then(EventKind::from_code);
        let (category, text) = (c.string()?, c.string()?);
        let kind = kind.ok_or(DecodeError { offset: payload_len - c.remaining(), what: "unknown event kind" })?;
        if thread as usize >= threads {
            return Err(DecodeError { offset: payload_len - c.remaining(), what: "event refers to a missing thread" });
        }
        events.push(Event { time: previous_time, thread, kind, category, text });
    }
    Ok(events)
}

/// Everything a reader recovered from one trace file.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The version in the file's preamble.
    pub format_version: u16,
    /// The header, when its chunk was read.
    pub header: Option<Header>,
    /// Every complete generation, in file order.
    pub generations: Vec<Generation>,
    /// Bytes at the end of the file that were not part of a complete, valid chunk.
    pub ignored_bytes: u64,
    /// Why reading stopped before the end of the file, if it did.
    pub stopped_because: Option<ReadStop>,
    /// How the traced image ended; `None` when the trace was cut short (killed).
    pub end: Option<End>,
}

/// Why [`read_trace`] stopped before the end of a file (docs/FORMAT.md, "What a reader must do").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStop {
    /// The file does not start with [`MAGIC`].
    NotATrace,
    /// The file is a trace of another format version; nothing was read.
    UnsupportedVersion {
        /// The version the file has.
        found: u16,
    },
    /// The file ends inside a chunk (cut short while it was written).
    Truncated {
        /// Bytes after the last complete chunk.
        ignored: u64,
    },
    /// A chunk's framing is broken (a checksum mismatch, an impossible length).
    Damaged {
        /// Where the chunk starts in the file.
        offset: usize,
        /// What is wrong with it.
        why: &'static str,
        /// Bytes from that chunk to the end of the file.
        ignored: u64,
    },
    /// A chunk's payload does not decode.
    Undecodable {
        /// Where the chunk starts in the file.
        offset: usize,
        /// The decoder's error.
        error: DecodeError,
    },
}

impl std::fmt::Display for ReadStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadStop::NotATrace => write!(f, "not a sigtrace file (no SIGTRACE magic)"),
            ReadStop::UnsupportedVersion { found } => write!(f, "format version {found} is not supported (this reader knows {FORMAT_VERSION})"),
            ReadStop::Truncated { ignored } => write!(f, "trace ends in a partial generation: {ignored} bytes ignored"),
            ReadStop::Damaged { offset, why, ignored } => write!(f, "chunk at byte {offset}: {why}; {ignored} bytes ignored"),
            ReadStop::Undecodable { offset, error } => write!(f, "chunk at byte {offset}: {error}"),
        }
    }
}

/// Decodes a trace file held in memory. Never panics: a damaged or truncated tail ends the
/// trace, and the complete chunks before it are kept. [`TraceReader::read_with`] keeping every
/// generation.
pub fn read_trace(bytes: &[u8]) -> Trace {
    let mut generations = Vec::new();
    let mut trace = TraceReader::new(bytes).read_with(|_, generation, _| generations.push(generation));
    trace.generations = generations;
    trace
}

/// A decoded chunk of a trace file.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// The header (only the first header chunk of a file is returned).
    Header(Header),
    /// A generation.
    Generation(Generation),
    /// An end record. A generation after it means the image went on (a failed exec).
    End(End),
}

/// Reads a trace file chunk by chunk from any byte source, holding one chunk in memory at a
/// time: a reader's memory follows the largest generation, not the file. Never panics; a
/// damaged or truncated tail ends the chunks, and [`TraceReader::stopped_because`] says why.
pub struct TraceReader<R> {
    source: R,
    /// File offset of the next chunk.
    offset: usize,
    /// The version in the preamble, once read.
    format_version: u16,
    /// Whether the preamble has been read (and found to be a trace of this version).
    started: bool,
    header_seen: bool,
    stopped: Option<ReadStop>,
    /// Bytes after the last complete chunk that were not read as one.
    ignored: u64,
    /// Set when the reader has stopped, cleanly or not.
    done: bool,
}

impl<R: std::io::Read> TraceReader<R> {
    /// A reader at the start of a trace file.
    pub fn new(source: R) -> TraceReader<R> {
        TraceReader { source, offset: 0, format_version: 0, started: false, header_seen: false, stopped: None, ignored: 0, done: false }
    }

    /// The version in the file's preamble (0 until it has been read).
    pub fn format_version(&self) -> u16 {
        self.format_version
    }

    /// Why reading stopped before the end of the file, once it has.
    pub fn stopped_because(&self) -> Option<&ReadStop> {
        self.stopped.as_ref()
    }

    /// Bytes at the end of the file that were not part of a complete, valid chunk.
    pub fn ignored_bytes(&self) -> u64 {
        self.ignored
    }

    /// Bytes read as complete chunks (and the preamble) so far.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Reads the rest of the file, handing each generation to `each` with the header read before
    /// it (`None`: none yet) and the bytes read so far, so that one generation at a time is in
    /// memory. Returns everything else the file held — the header, how the image ended (an end
    /// record followed by a generation is dropped: the image went on after a failed exec), why
    /// reading stopped — with `generations` left empty.
    pub fn read_with(mut self, mut each: impl FnMut(Option<&Header>, Generation, usize)) -> Trace {
        let mut trace = Trace::default();
        while let Some(chunk) = self.next_chunk() {
            match chunk {
                Chunk::Header(header) => trace.header = Some(header),
                Chunk::Generation(generation) => {
                    trace.end = None;
                    each(trace.header.as_ref(), generation, self.offset);
                }
                Chunk::End(end) => trace.end = Some(end),
            }
        }
        trace.format_version = self.format_version;
        trace.ignored_bytes = self.ignored;
        trace.stopped_because = self.stopped;
        trace
    }

    /// The next chunk, or `None` at the end of the file or of its readable part. Chunks of
    /// unknown kinds (from a newer writer) and repeated headers are skipped.
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        if self.done {
            return None;
        }
        if !self.started && !self.read_preamble() {
            self.done = true;
            return None;
        }
        loop {
            let chunk_offset = self.offset;
            let (tag, payload) = match self.read_framed_chunk() {
                Ok(Some(framed)) => framed,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err((why, read)) => {
                    let ignored = read.saturating_add(self.count_rest());
                    self.ignored = ignored;
                    self.stopped =
                        Some(if why == TRUNCATED { ReadStop::Truncated { ignored } } else { ReadStop::Damaged { offset: chunk_offset, why, ignored } });
                    self.done = true;
                    return None;
                }
            };
            let decoded = match tag {
                TAG_HEADER if !self.header_seen => decode_header(&payload).map(|header| {
                    self.header_seen = true;
                    Some(Chunk::Header(header))
                }),
                TAG_GENERATION => decode_generation(&payload).map(|generation| Some(Chunk::Generation(generation))),
                TAG_END => decode_end(&payload).map(|end| Some(Chunk::End(end))),
                _ => Ok(None), // an unknown chunk kind from a newer writer, or a second header: skip it
            };
            match decoded {
                Ok(Some(chunk)) => return Some(chunk),
                Ok(None) => continue,
                Err(error) => {
                    // The chunk was complete: it and the rest of the file are not read.
                    let chunk_len = CHUNK_OVERHEAD as u64 + payload.len() as u64;
                    self.ignored = chunk_len.saturating_add(self.count_rest());
                    self.offset = chunk_offset;
                    self.stopped = Some(ReadStop::Undecodable { offset: chunk_offset, error });
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// Reads and checks the magic and the version; false (with the reason set) when the file is
    /// not a trace of this version.
    fn read_preamble(&mut self) -> bool {
        self.started = true;
        let mut preamble = [0u8; PREAMBLE_LEN];
        let read = self.read_up_to(&mut preamble);
        if read < PREAMBLE_LEN || preamble[..MAGIC.len()] != MAGIC {
            self.ignored = (read as u64).saturating_add(self.count_rest());
            self.stopped = Some(ReadStop::NotATrace);
            return false;
        }
        self.format_version = u16::from_le_bytes([preamble[8], preamble[9]]);
        if self.format_version != FORMAT_VERSION {
            self.ignored = self.count_rest();
            self.stopped = Some(ReadStop::UnsupportedVersion { found: self.format_version });
            return false;
        }
        self.offset = PREAMBLE_LEN;
        true
    }

    /// The next chunk's tag and payload, checksum checked: `Ok(None)` at a clean end of file,
    /// `Err((why, bytes read of the chunk))` when it is cut short or damaged.
    fn read_framed_chunk(&mut self) -> Result<Option<(u8, Vec<u8>)>, ChunkFault> {
        let mut framing = [0u8; 5];
        let read = self.read_up_to(&mut framing);
        if read == 0 {
            return Ok(None);
        }
        if read < framing.len() {
            return Err((TRUNCATED, read as u64));
        }
        let len = u32::from_le_bytes([framing[1], framing[2], framing[3], framing[4]]) as usize;
        // Grown as bytes arrive (not reserved from the length): a damaged length costs no memory.
        let mut body = Vec::new();
        let wanted = len as u64 + 4;
        // A read error ends the chunk where it happened: what was read counts as a cut-short tail.
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(&mut self.source, wanted), &mut body);
        let got = body.len() as u64;
        if got < wanted {
            return Err((TRUNCATED, 5 + got));
        }
        let stored = u32::from_le_bytes([body[len], body[len + 1], body[len + 2], body[len + 3]]);
        body.truncate(len);
        let mut checksum = crate::varint::Crc32::new();
        checksum.update(&framing);
        checksum.update(&body);
        if checksum.finish() != stored {
            return Err(("checksum mismatch (damaged chunk)", 5 + wanted));
        }
        self.offset += CHUNK_OVERHEAD + len;
        Ok(Some((framing[0], body)))
    }

    /// Fills as much of `buffer` as the source has; returns the bytes read.
    fn read_up_to(&mut self, buffer: &mut [u8]) -> usize {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.source.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        filled
    }

    /// Reads the rest of the source, returning how many bytes it had.
    fn count_rest(&mut self) -> u64 {
        std::io::copy(&mut self.source, &mut std::io::sink()).unwrap_or(0)
    }
}

const TRUNCATED: &str = "truncated chunk (file cut short)";

/// Why a chunk could not be read, and how many of its bytes were read.
type ChunkFault = (&'static str, u64);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_trace() -> (Header, Vec<Generation>, Vec<u8>) {
        let header = Header {
            pid: 42,
            parent_pid: 1,
            executable: "/usr/bin/app".into(),
            args: vec!["app".into(), "--fast".into()],
            clock: "CLOCK_MONOTONIC".into(),
            clock_hz: 1_000_000_000,
            start_clock_ns: 5_000,
            start_unix_ns: 1_700_000_000_000_000_000,
            hz: 999,
            timer: "perf".into(),
            mode: "cpu".into(),
            max_depth: 256,
            generation_ms: 1000,
        };
        let generations: Vec<Generation> = (1..=3)
            .map(|sequence| Generation {
                sequence,
                start_time: sequence * 1000,
                end_time: sequence * 1000 + 999,
                process_cpu_ns: sequence * 7,
                threads: vec![Thread { tid: 42, name: "main".into(), cpu_ns: 9, dropped: 1, exited: false }],
                modules: vec![Module { path: "/usr/bin/app".into(), base: 0x5555_0000, start: 0x5555_0000, end: 0x5556_0000, build_id: vec![1, 2, 3] }],
                // In the tree's order (empty first, then root-first address order), so they
                // decode under the same ids.
                stacks: vec![vec![], vec![0x10], vec![0x5555_1234, 0x5555_1000, 0x7fff_0000_0000], vec![0x5555_1300, 0x5555_1000, 0x7fff_0000_0000]].into(),
                samples: vec![
                    Sample { time: sequence * 1000 + 1, thread: 0, stack: 2, weight: 1, state: Default::default() },
                    Sample { time: sequence * 1000 + 5, thread: 0, stack: 1, weight: 3, state: Default::default() },
                ],
                counters: vec![("unwind.end.root".into(), 2)],
                stack_walks: vec![
                    walk::METHOD_PC_ONLY << 4 | walk::END_BAD_FRAME,
                    walk::METHOD_FP << 4 | walk::END_BAD_FRAME,
                    walk::METHOD_DWARF << 4 | walk::END_ROOT,
                    walk::METHOD_DWARF << 4 | walk::END_ROOT,
                ],
                events: vec![
                    Event { time: sequence * 1000 + 2, thread: 0, kind: EventKind::Log, category: "db".into(), text: "query took 3 ms".into() },
                    Event { time: sequence * 1000 + 3, thread: 0, kind: EventKind::RegionBegin, category: String::new(), text: "parse".into() },
                ],
            })
            .collect();
        let mut bytes = Vec::new();
        encode_preamble(&mut bytes);
        encode_header(&mut bytes, &header);
        for generation in &generations {
            encode_generation(&mut bytes, generation);
        }
        encode_end(&mut bytes, &End { reason: EndReason::FatalSignal, signal: 11, time: 9_999 });
        (header, generations, bytes)
    }

    #[test]
    fn stacks_sharing_outer_frames_share_tree_nodes() {
        let root = [0x4000_0000u64, 0x4000_1000, 0x4000_2000, 0x4000_3000, 0x4000_4000, 0x4000_5000];
        let stacks: Vec<Vec<u64>> = (0..100u64).map(|leaf| std::iter::once(0x5000_0000 + leaf * 16).chain(root.iter().rev().copied()).collect()).collect();
        let mut bytes = Vec::new();
        let (ids, _) = encode_stack_tree(&mut bytes, &stacks, &[]);
        // Flat, the 100 stacks of 7 frames would take ~3 600 bytes; shared, each leaf costs its
        // position change and its distance from the previous leaf: 2 bytes.
        assert!(bytes.len() < 100 * 2 + 6 * 8, "{} bytes for 100 stacks of 7 frames", bytes.len());
        let decoded = decode_stack_tree(&mut Cursor::new(&bytes), bytes.len()).unwrap();
        assert_eq!(decoded, StackTable::from(stacks));
        assert_eq!(ids, (0..100).collect::<Vec<u32>>());
    }

    /// Resolves each sample to (time, tid, frames, walk code, weight): what a reader sees.
    fn resolved(generation: &Generation) -> Vec<(u64, u32, Vec<u64>, u8, u32)> {
        let walk = |stack: u32| generation.stack_walks.get(stack as usize).copied().unwrap_or(0);
        generation
            .samples
            .iter()
            .map(|s| (s.time, generation.threads[s.thread as usize].tid, generation.stacks.get(s.stack as usize).unwrap().collect(), walk(s.stack), s.weight))
            .collect()
    }

    #[test]
    fn stacks_in_any_order_and_frames_walked_twice_keep_every_sample() {
        let threads = vec![Thread { tid: 7, ..Default::default() }, Thread { tid: 8, ..Default::default() }];
        let main = 0x7000_0000u64;
        // Unsorted; stacks 1 and 3 have the same frames walked differently; 4 is a prefix of 0;
        // 5 is empty; 2 shares nothing with the others.
        let stacks =
            vec![vec![0x6000_0040, 0x6000_0100, main], vec![0x6000_0010, main], vec![0x10, 0x20], vec![0x6000_0010, main], vec![0x6000_0100, main], vec![]];
        let stacks = StackTable::from(stacks);
        let stack_walks = vec![0x10, 0x10, 0x00, 0x23, 0x10, 0x52];
        let samples: Vec<Sample> = (0..6u32)
            .flat_map(|stack| {
                [1, 1, 70_000].map(|weight| Sample {
                    time: u64::from(stack) * 10 + u64::from(weight),
                    thread: stack % 2,
                    stack,
                    weight,
                    state: Default::default(),
                })
            })
            .collect();
        let generation = Generation { threads, stacks, stack_walks, samples, ..Default::default() };
        let mut bytes = Vec::new();
        encode_generation(&mut bytes, &generation);
        let decoded = decode_generation(&bytes[5..bytes.len() - 4]).unwrap();
        assert_eq!(decoded.stacks.len(), 6);
        assert_eq!(resolved(&decoded), resolved(&generation));
    }

    #[test]
    fn samples_of_three_bytes_decode() {
        // Many threads at a high rate: equal timestamps, one thread and one stack each take a byte.
        let samples = vec![Sample { time: 0, thread: 0, stack: 0, weight: 1, state: Default::default() }; 1000];
        let generation = Generation { threads: vec![Thread::default()], stacks: vec![vec![0x1000]].into(), samples, ..Default::default() };
        let mut bytes = Vec::new();
        encode_generation(&mut bytes, &generation);
        assert_eq!(decode_generation(&bytes[5..bytes.len() - 4]).unwrap(), generation);
    }

    #[test]
    fn round_trips() {
        let (header, generations, bytes) = sample_trace();
        let trace = read_trace(&bytes);
        assert_eq!(trace.header.as_ref(), Some(&header));
        assert_eq!(trace.generations, generations);
        assert_eq!(trace.ignored_bytes, 0);
        assert!(trace.stopped_because.is_none());
        assert_eq!(trace.end, Some(End { reason: EndReason::FatalSignal, signal: 11, time: 9_999 }));
        assert_eq!(trace.end.unwrap().describe(), "fatal signal 11 (SIGSEGV)");
    }

    #[test]
    fn a_cut_trace_says_it_ends_in_a_partial_generation() {
        let (_, _, bytes) = sample_trace();
        let trace = read_trace(&bytes[..bytes.len() - 30]);
        assert!(trace.end.is_none());
        let Some(ReadStop::Truncated { ignored }) = trace.stopped_because else { panic!("{:?}", trace.stopped_because) };
        assert_eq!(ignored, trace.ignored_bytes);
        assert_eq!(trace.stopped_because.unwrap().to_string(), format!("trace ends in a partial generation: {ignored} bytes ignored"));
    }

    #[test]
    fn the_streaming_reader_reads_from_a_slow_source_as_from_memory() {
        /// Hands out at most 3 bytes per read, as a pipe might.
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
                let n = buffer.len().min(3).min(self.0.len());
                buffer[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let (header, generations, bytes) = sample_trace();
        for cut in [bytes.len(), bytes.len() - 30, 12] {
            let mut reader = TraceReader::new(Trickle(&bytes[..cut]));
            let mut read_generations = Vec::new();
            let mut read_header = None;
            while let Some(chunk) = reader.next_chunk() {
                match chunk {
                    Chunk::Header(h) => read_header = Some(h),
                    Chunk::Generation(g) => read_generations.push(g),
                    Chunk::End(_) => {}
                }
            }
            let in_memory = read_trace(&bytes[..cut]);
            assert_eq!(read_header, in_memory.header, "cut at {cut}");
            assert_eq!(read_generations, in_memory.generations, "cut at {cut}");
            assert_eq!(reader.ignored_bytes(), in_memory.ignored_bytes, "cut at {cut}");
            assert_eq!(reader.stopped_because(), in_memory.stopped_because.as_ref(), "cut at {cut}");
            if cut == bytes.len() {
                assert_eq!(read_header.as_ref(), Some(&header));
                assert_eq!(read_generations, generations);
            }
        }
    }

    #[test]
    fn every_truncation_keeps_the_complete_generations() {
        let (_, generations, bytes) = sample_trace();
        let mut ends = vec![PREAMBLE_LEN];
        let mut offset = PREAMBLE_LEN;
        while offset < bytes.len() {
            let len = u32::from_le_bytes(bytes[offset + 1..offset + 5].try_into().unwrap()) as usize;
            offset += CHUNK_OVERHEAD + len;
            ends.push(offset);
        }
        for cut in 0..=bytes.len() {
            let trace = read_trace(&bytes[..cut]);
            let complete_chunks = ends.iter().filter(|&&end| end <= cut).count().saturating_sub(1);
            let complete_generations = complete_chunks.saturating_sub(1).min(generations.len());
            assert_eq!(trace.generations.len(), complete_generations, "cut at {cut}");
            assert_eq!(&trace.generations[..], &generations[..complete_generations]);
            let kept = ends.iter().copied().filter(|&end| end <= cut).max().unwrap_or(0);
            if cut >= PREAMBLE_LEN {
                assert_eq!(trace.ignored_bytes, (cut - kept) as u64, "cut at {cut}");
            }
        }
    }

    #[test]
    fn flipped_bytes_never_panic_and_keep_earlier_generations() {
        let (_, _, bytes) = sample_trace();
        for index in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[index] ^= flip;
                let trace = read_trace(&damaged);
                assert!(trace.generations.len() <= 3);
            }
        }
    }
}
