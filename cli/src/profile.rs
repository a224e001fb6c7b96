//! Trace files → one merged, symbolised profile in memory, shared by `report` and the exporters.
//!
//! Each generation of each file is symbolised against its own module table (a generation is
//! self-contained); identical symbolised frames and stacks are merged across all of them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use format::{call_name, EventKind, Header, ReadStop, SampleState, StackTable, ThreadState, Trace, NO_NODE};

use crate::symbolize::{module_file_name, FrameName, JitTable, ModuleMap, Symbolizer};

#[path = "profile_python.rs"]
mod python;

/// The module name of every Python frame.
pub use python::PYTHON_MODULE;

/// One trace file as read from disk.
pub struct LoadedTrace {
    pub path: PathBuf,
    pub header: Header,
    pub trace: Trace,
}

/// Why a trace file could not be loaded. Its `Display` is a complete message (without
/// `sigtrace:`), naming the file.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Unreadable { path: PathBuf, error: std::io::Error },
    /// The file has no readable header: not a trace, another format version, or damaged from
    /// its start (`why`, when the reader said why).
    NoHeader { path: PathBuf, why: Option<ReadStop> },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Unreadable { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            LoadError::NoHeader { path, why: Some(why @ ReadStop::NotATrace) } => write!(f, "{}: {why}", path.display()),
            LoadError::NoHeader { path, why: Some(why) } => write!(f, "{}: not a sigtrace file: no header ({why})", path.display()),
            LoadError::NoHeader { path, why: None } => write!(f, "{}: not a sigtrace file: no header", path.display()),
        }
    }
}

/// Reads and decodes one trace file.
pub fn load_trace(path: &Path) -> Result<LoadedTrace, LoadError> {
    let bytes = std::fs::read(path).map_err(|error| LoadError::Unreadable { path: path.to_path_buf(), error })?;
    trace_from_bytes(path, &bytes)
}

/// Decodes the bytes of the trace file `path` (named in the error only).
pub fn trace_from_bytes(path: &Path, bytes: &[u8]) -> Result<LoadedTrace, LoadError> {
    let mut trace = format::read_trace(bytes);
    let Some(header) = trace.header.take() else {
        return Err(LoadError::NoHeader { path: path.to_path_buf(), why: trace.stopped_because });
    };
    Ok(LoadedTrace { path: path.to_path_buf(), header, trace })
}

/// Loads every file, reporting failures (and damaged tails) on stderr as it goes.
/// Returns the traces that loaded and whether every file did. (The tests' loader: the
/// commands read through [`load_profile`], one generation in memory at a time.)
#[cfg(test)]
pub fn load_traces(paths: &[PathBuf]) -> (Vec<LoadedTrace>, bool) {
    let mut loaded = Vec::with_capacity(paths.len());
    let mut all_ok = true;
    for path in paths {
        match load_trace(path) {
            Ok(trace) => {
                warn_of_damaged_tail(path, &trace.trace);
                loaded.push(trace);
            }
            Err(message) => {
                crate::warn!("{message}");
                all_ok = false;
            }
        }
    }
    (loaded, all_ok)
}

/// Converts a timestamp in the header clock's ticks to nanoseconds on that clock.
pub fn ticks_to_ns(header: &Header, ticks: u64) -> u64 {
    let hz = if header.clock_hz == 0 { 1_000_000_000 } else { header.clock_hz };
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// One trace file's image: a process, or the image an exec started (the same pid, a later file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub parent_pid: u32,
    /// The executable and command line, from the trace's header.
    pub executable: String,
    pub args: Vec<String>,
    /// Sampling settings, from the header.
    pub hz: u32,
    pub timer: String,
    /// `cpu` or `wall` (see [`ProcessInfo::is_wall`]).
    pub mode: String,
    /// Time one unit of sample weight (one period) stands for: 1e9 / hz, ns (0 when hz is 0).
    /// CPU time for a running sample, wall time for a runnable or blocked one.
    pub period_ns: u64,
    /// When tracing began, Unix ns.
    pub start_unix_ns: u64,
    /// The end of its last generation, Unix ns (`start_unix_ns` when it has none).
    pub end_unix_ns: u64,
    /// The trace file.
    pub path: PathBuf,
}

impl ProcessInfo {
    fn of(path: &Path, header: &Header) -> ProcessInfo {
        ProcessInfo {
            pid: header.pid,
            parent_pid: header.parent_pid,
            executable: header.executable.clone(),
            args: header.args.clone(),
            hz: header.hz,
            timer: header.timer.clone(),
            mode: header.mode.clone(),
            period_ns: config::period_ns(header.hz),
            start_unix_ns: header.start_unix_ns,
            end_unix_ns: header.start_unix_ns,
            path: path.to_path_buf(),
        }
    }

    /// Whether the trace was recorded in wall-clock mode (header mode `wall`): its samples carry
    /// thread states, and its weights add up to every thread's wall time.
    pub fn is_wall(&self) -> bool {
        self.mode == WALL_MODE
    }

    /// The command line as one string (the executable's path when the header has no arguments).
    pub fn command_line(&self) -> String {
        if self.args.is_empty() {
            self.executable.clone()
        } else {
            self.args.join(" ")
        }
    }
}

/// The header's `mode` of a wall-clock trace.
pub const WALL_MODE: &str = "wall";

/// Whether a trace with `header` was recorded in wall-clock mode.
pub fn is_wall_header(header: &Header) -> bool {
    header.mode == WALL_MODE
}

/// A thread of one traced process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    pub pid: u32,
    pub tid: u32,
    /// The last non-empty name the thread had.
    pub name: String,
}

/// A module (ELF object) that addresses fall into: one per (path, build id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub path: String,
    pub build_id: Vec<u8>,
    /// `path` without its directories.
    pub file_name: String,
}

/// One symbolised code address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Index into `Profile::mappings`; `None` when no module covers the address.
    pub mapping: Option<u32>,
    /// Module-relative (the file's virtual address) when `mapping` is set, else the address in
    /// the process. For a return address, the address looked up: one byte before it (the call).
    pub address: u64,
    /// Indices into `Profile::frames`, innermost first: the functions inlined at the address,
    /// then the function that holds it. Never empty.
    pub frames: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileSample {
    /// When the sample was taken, Unix time in ns.
    pub unix_ns: u64,
    /// Index into `Profile::threads`.
    pub thread: u32,
    /// Stack id (of `Profile::stacks` and `Profile::location_stacks`).
    pub stack: u32,
    /// Sampling periods the sample stands for.
    pub weight: u64,
    /// The time the sample stands for, `weight` × its process's `period_ns`: CPU time for a
    /// running sample (every sample of a `cpu` trace), wall time up to `unix_ns` for a
    /// runnable or blocked one.
    pub time_ns: u64,
    /// The thread's state (running in a `cpu` trace, whatever its file says).
    pub state: SampleState,
}

impl ProfileSample {
    /// The CPU time the sample stands for: `time_ns` when it is a running sample, else 0.
    pub fn cpu_ns(&self) -> u64 {
        if self.state.state == ThreadState::Running {
            self.time_ns
        } else {
            0
        }
    }
}

/// The samples of one (thread, stack, state), summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackTotal {
    /// Index into `Profile::threads`.
    pub thread: u32,
    /// Stack id.
    pub stack: u32,
    /// The state of these samples (with its call: one total per blocking call).
    pub state: SampleState,
    /// Sample records.
    pub samples: u64,
    /// Sampling periods.
    pub weight: u64,
    /// The time they stand for, ns: CPU time when `state` is running, else wall time
    /// ([`ProfileSample::time_ns`]).
    pub time_ns: u64,
}

/// Samples, weight and time of the samples of one state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateTotal {
    pub samples: u64,
    pub weight: u64,
    pub time_ns: u64,
}

/// What the time of a profile's samples measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// CPU time: every trace is a `cpu` trace.
    Cpu,
    /// Wall time: every trace is a `wall` trace (a running sample's CPU time is wall time on a CPU).
    Wall,
    /// `cpu` and `wall` traces merged: CPU time of the first, wall time of the others.
    Mixed,
}

impl TimeKind {
    /// How the time is named after an amount: `1.5 s of CPU`, `of wall time`, `of CPU and wall time`.
    pub fn noun(self) -> &'static str {
        match self {
            TimeKind::Cpu => "CPU",
            TimeKind::Wall => "wall time",
            TimeKind::Mixed => "CPU and wall time",
        }
    }
}

/// A thread start or exit, log message or region boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEvent {
    /// Unix time, ns.
    pub unix_ns: u64,
    /// Index into `Profile::threads`.
    pub thread: u32,
    pub kind: EventKind,
    /// A log message's category; empty for other kinds.
    pub category: String,
    /// A log message's text or a region's name (empty for `RegionEnd`).
    pub text: String,
}

/// Symbolised samples of one or more trace files.
#[derive(Debug, Default)]
pub struct Profile {
    /// Distinct symbolised frames (a function at a source line, when lines are known).
    pub frames: Vec<FrameName>,
    /// Distinct (module, address) pairs with their frames, and one location per state frame.
    pub locations: Vec<Location>,
    pub mappings: Vec<Mapping>,
    /// Distinct stacks of indices into `frames` (as `u64`), LEAF FIRST, sharing their outer
    /// frames in a prefix tree; an address with inline frames contributes them innermost first,
    /// then the function that holds it. Never empty: a sample recorded without frames gets the
    /// single frame `[no frames]`. A waiting sample of a `wall` trace has the frame naming its
    /// state as its leaf ([`state_frame`]), in a location of its own (no mapping, address 0).
    pub stacks: StackTable,
    /// The same stacks (same ids) as indices into `locations`, leaf first: one entry per
    /// address. Stack ids are distinct here; two ids may have the same frames in `stacks`.
    pub location_stacks: StackTable,
    pub threads: Vec<ThreadInfo>,
    /// One per trace file, in the order the files were given.
    pub processes: Vec<ProcessInfo>,
    /// Samples summed per (thread, stack, state), sorted by (thread, stack, state). Always filled.
    pub totals: Vec<StackTotal>,
    /// The samples of each state (indexed by `ThreadState as usize`) that the region filter
    /// kept, before the state filter: what a filtered view is a share of.
    pub by_state: [StateTotal; 3],
    /// The state filter it was built with ([`ProfileOptions::state`]).
    pub state_filter: Option<ThreadState>,
    /// Every sample record, in file order (time order within a file). Only filled when built
    /// with [`ProfileOptions::keep_samples`]: aggregate views use `totals`, whose memory
    /// follows distinct stacks instead of samples.
    pub samples: Vec<ProfileSample>,
    /// Thread starts and exits, logs and regions of every file, sorted by time.
    pub events: Vec<ProfileEvent>,
}

/// The frame given to samples that were recorded without any.
pub const NO_FRAMES: &str = "[no frames]";

/// The frame a sample of a `wall` trace gets below its leaf when its thread was not running:
/// `[runnable]`, or `[blocked: CALL]` with the call's name (`format::call_name`:
/// `[blocked: read]`, `[blocked: pthread_mutex_lock]`, `[blocked: syscall:futex]`,
/// `[blocked: unknown]`). `None` for a running sample, which keeps its stack as it is. Samples
/// of a `cpu` trace never get one.
pub fn state_frame(state: SampleState) -> Option<String> {
    match state.state {
        ThreadState::Running => None,
        ThreadState::Runnable => Some(RUNNABLE_FRAME.to_string()),
        ThreadState::Blocked => Some(format!("{BLOCKED_FRAME_PREFIX}{}]", call_name(state.call))),
    }
}

/// Whether `function` is the name of a frame [`state_frame`] gives.
pub fn is_state_frame(function: &str) -> bool {
    function == RUNNABLE_FRAME || (function.starts_with(BLOCKED_FRAME_PREFIX) && function.ends_with(']'))
}

/// The frame of runnable samples ([`state_frame`]).
pub const RUNNABLE_FRAME: &str = "[runnable]";
/// How the frame of blocked samples begins ([`state_frame`]).
pub const BLOCKED_FRAME_PREFIX: &str = "[blocked: ";

/// What [`Profile::build_with`] and [`load_profile`] keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProfileOptions<'a> {
    /// Only samples taken while their thread was inside a region of this name
    /// (`sigtrace_region_begin`/`_end`, nested regions included).
    pub region: Option<&'a str>,
    /// Keep every sample in `Profile::samples` (timelines need them).
    pub keep_samples: bool,
    /// Only samples of this state (in a `cpu` trace every sample is a running one).
    pub state: Option<ThreadState>,
    /// Native stacks as walked: the interpreter's evaluation frames are not replaced by the
    /// Python frames they ran (`--no-python`).
    pub no_python: bool,
    /// Only samples and events in this time window (regions opened before it still count).
    pub window: Option<crate::time_window::TimeWindow>,
}

impl Profile {
    /// Symbolises and merges every generation of `traces`, without keeping single samples.
    pub fn build(traces: &[LoadedTrace], symbolizer: &mut Symbolizer) -> Profile {
        Profile::build_with(traces, symbolizer, &ProfileOptions::default())
    }

    /// Symbolises and merges every generation of `traces` as `options` say.
    pub fn build_with(traces: &[LoadedTrace], symbolizer: &mut Symbolizer, options: &ProfileOptions) -> Profile {
        let mut builder = Builder::new(options);
        for loaded in traces {
            let process = builder.add_process(&loaded.path, &loaded.header);
            let mut symbols = loaded.trace.jit_symbols.clone();
            symbols.extend(JitTable::perf_map_on_disk(loaded.header.pid, loaded.header.start_unix_ns));
            let jit = JitTable::new(symbols);
            for generation in &loaded.trace.generations {
                builder.add_generation(process, &loaded.header, generation, symbolizer, &jit);
            }
        }
        builder.finish()
    }

    /// Sum of the sample weights (sampling periods).
    pub fn total_weight(&self) -> u64 {
        self.totals.iter().map(|t| t.weight).fold(0, u64::saturating_add)
    }

    /// Number of sample records.
    pub fn total_samples(&self) -> u64 {
        self.totals.iter().map(|t| t.samples).fold(0, u64::saturating_add)
    }

    /// The time the samples stand for, ns (CPU time of running samples, wall time of the others).
    pub fn total_time_ns(&self) -> u64 {
        self.totals.iter().map(|t| t.time_ns).fold(0, u64::saturating_add)
    }

    /// What the samples' time measures, from the modes of the traces.
    pub fn time_kind(&self) -> TimeKind {
        let wall = self.processes.iter().filter(|process| process.is_wall()).count();
        match wall {
            0 => TimeKind::Cpu,
            n if n == self.processes.len() => TimeKind::Wall,
            _ => TimeKind::Mixed,
        }
    }

    /// Whether any trace is a `wall` trace: its samples have states and its time is wall time.
    pub fn has_wall(&self) -> bool {
        self.processes.iter().any(ProcessInfo::is_wall)
    }

    /// The names of the regions any thread entered, sorted, each once.
    pub fn region_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self.events.iter().filter(|e| e.kind == EventKind::RegionBegin).map(|e| e.text.as_str()).collect();
        names.into_iter().map(str::to_string).collect()
    }
}

/// Reads `paths` generation by generation — one generation in memory at a time, so memory
/// follows distinct stacks, not samples (unless `options` keeps samples) — and merges them into
/// one profile. Unreadable files, damaged tails and a file given twice are reported on stderr.
/// Returns the profile and whether every file loaded.
pub fn load_profile(paths: &[PathBuf], symbolizer: &mut Symbolizer, options: &ProfileOptions) -> (Profile, bool) {
    let mut builder = Builder::new(options);
    let mut all_ok = true;
    let mut seen = HashSet::new();
    let mut images: HashMap<(u32, u64, u64), u32> = HashMap::new();
    let sizes: Vec<u64> = paths.iter().map(|path| std::fs::metadata(path).map_or(0, |m| m.len())).collect();
    let mut progress = crate::progress::ByteProgress::new(sizes.iter().sum());
    let mut done_before = 0u64;
    for (path, size) in paths.iter().zip(&sizes) {
        let start_of_file = done_before;
        done_before += size;
        if let Some(identity) = file_identity(path) {
            if !seen.insert(identity) {
                crate::warn!("{}: given more than once; read once", path.display());
                continue;
            }
        }
        let reader = match open_trace(path) {
            Ok(reader) => reader,
            Err(error) => {
                crate::warn!("{error}");
                all_ok = false;
                continue;
            }
        };
        let mut process = None;
        let mut jit: Option<JitTable> = None;
        let trace = reader.read_with(|header, generation, offset| {
            // A generation before the header cannot be placed in time (the in-memory reader's
            // users never see one either: no header, not a trace).
            let Some(header) = header else { return };
            // The files of a rotated series carry the same header: one process.
            let image = (header.pid, header.start_unix_ns, header.start_clock_ns);
            let id = *process.get_or_insert_with(|| *images.entry(image).or_insert_with(|| builder.add_process(path, header)));
            let jit = jit.get_or_insert_with(|| JitTable::of_trace_file(path, header.pid, header.start_unix_ns));
            builder.add_generation(id, header, &generation, symbolizer, jit);
            progress.set(start_of_file + offset as u64);
        });
        match &trace.header {
            None => {
                crate::warn!("{}", LoadError::NoHeader { path: path.clone(), why: trace.stopped_because });
                all_ok = false;
            }
            Some(header) => {
                if process.is_none() {
                    builder.add_process(path, header);
                }
                warn_of_damaged_tail(path, &trace);
            }
        }
    }
    (builder.finish(), all_ok)
}

/// A reader at the start of the trace file at `path` (buffered: chunks are read in pieces).
pub fn open_trace(path: &Path) -> Result<format::TraceReader<std::io::BufReader<std::fs::File>>, LoadError> {
    let file = std::fs::File::open(path).map_err(|error| LoadError::Unreadable { path: path.to_path_buf(), error })?;
    Ok(format::TraceReader::new(std::io::BufReader::with_capacity(1 << 16, file)))
}

/// Says on stderr that the end of the file at `path` was not read, and why, when it was not.
fn warn_of_damaged_tail(path: &Path, trace: &Trace) {
    if let Some(why) = &trace.stopped_because {
        crate::warn!("{}: ignored the last {} bytes: {why}", path.display(), trace.ignored_bytes);
    }
}

/// (device, inode) of the file at `path`, when it can be read: the same file named twice (by
/// another path, or a link) has the same identity.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A node of a trace's stack tree, placed in the profile's two trees.
#[derive(Debug, Clone, Copy)]
struct PlacedNode {
    /// Node of `Profile::stacks` (the location's innermost frame).
    frame_node: u32,
    /// Node of `Profile::location_stacks`.
    location_node: u32,
}

struct Builder {
    profile: Profile,
    frame_ids: HashMap<FrameName, u32>,
    mapping_ids: HashMap<(String, Vec<u8>), u32>,
    /// (mapping, address) → location id.
    /// (mapping, address, JIT symbol index + 1 or 0) → location id.
    location_ids: HashMap<(Option<u32>, u64, usize), u32>,
    /// Leaf node in `profile.location_stacks` → stack id.
    stack_ids: HashMap<u32, u32>,
    thread_ids: HashMap<(u32, u32), u32>,
    /// (thread, stack, state) → index into `profile.totals`.
    total_ids: HashMap<(u32, u32, SampleState), u32>,
    /// The location of each state frame ([`state_frame`]), by its name.
    state_locations: HashMap<String, u32>,
    /// Only samples inside this region are kept.
    region: Option<String>,
    /// Only samples of this state are kept.
    state: Option<ThreadState>,
    /// Only samples and events in this window are kept.
    window: Option<crate::time_window::TimeWindow>,
    keep_samples: bool,
    /// The open regions of each thread (index into `profile.threads`), innermost last.
    open_regions: HashMap<u32, Vec<String>>,
    /// Python code objects (of any generation) → a profile-wide id, for their locations.
    python_code_ids: HashMap<format::PythonCode, u64>,
    no_python: bool,
}

impl Builder {
    fn new(options: &ProfileOptions) -> Builder {
        Builder {
            profile: Profile::default(),
            frame_ids: HashMap::new(),
            mapping_ids: HashMap::new(),
            location_ids: HashMap::new(),
            stack_ids: HashMap::new(),
            thread_ids: HashMap::new(),
            total_ids: HashMap::new(),
            state_locations: HashMap::new(),
            region: options.region.map(str::to_string),
            state: options.state,
            window: options.window,
            keep_samples: options.keep_samples,
            open_regions: HashMap::new(),
            python_code_ids: HashMap::new(),
            no_python: options.no_python,
        }
    }

    fn add_process(&mut self, path: &Path, header: &Header) -> u32 {
        self.profile.processes.push(ProcessInfo::of(path, header));
        (self.profile.processes.len() - 1) as u32
    }

    fn finish(mut self) -> Profile {
        self.profile.state_filter = self.state;
        self.profile.totals.sort_by_key(|t| (t.thread, t.stack, t.state));
        // Stable: events of one time keep their file order (a region's end after its begin).
        self.profile.events.sort_by_key(|e| e.unix_ns);
        self.profile
    }

    fn add_generation(&mut self, process: u32, header: &Header, generation: &format::Generation, symbolizer: &mut Symbolizer, jit: &JitTable) {
        let unix_ns = |ticks: u64| header.start_unix_ns.saturating_add(ticks_to_ns(header, ticks).saturating_sub(header.start_clock_ns));
        let info = &mut self.profile.processes[process as usize];
        info.end_unix_ns = info.end_unix_ns.max(unix_ns(generation.end_time));
        let period_ns = info.period_ns;
        let wall = info.is_wall();

        let modules = ModuleMap::new(&generation.modules).with_jit(jit, generation.end_time);
        // (avma, is return address) → location id, for this generation's module table only.
        let mut address_locations: HashMap<(u64, bool), u32> = HashMap::new();
        // (trace stack id, location of its state frame or u32::MAX) → profile stack id, for the
        // stacks samples use (a map, not a table of every stack: a node of 4 bytes can end 256 stacks).
        let mut stack_map: HashMap<(u32, u32), u32> = HashMap::new();
        // Node of the trace's stack tree → its place in the profile's trees when it is a caller
        // (its address a return address): each node is symbolised once, so the work and memory
        // follow the tree, not the frames of every stack. `Some(None)`: the stack is cut there.
        let mut caller_nodes: Vec<Option<Option<PlacedNode>>> = vec![None; generation.stacks.nodes().len()];
        let thread_map: Vec<u32> = generation.threads.iter().map(|t| self.thread_id(header.pid, t.tid, &t.name)).collect();
        let mut events = generation.events.iter().peekable();

        for sample in &generation.samples {
            // The events up to the sample's time: kept, and followed for the region filter.
            while let Some(event) = events.next_if(|event| event.time <= sample.time) {
                self.add_event(&thread_map, event, unix_ns(event.time));
            }
            let (Some(&thread), Some(leaf)) = (thread_map.get(sample.thread as usize), generation.stacks.leaf(sample.stack as usize)) else {
                continue; // the decoder rejects these; stay defensive anyway
            };
            if self.window.is_some_and(|window| !window.contains(unix_ns(sample.time))) {
                continue;
            }
            if let Some(region) = &self.region {
                if !self.open_regions.get(&thread).is_some_and(|open| open.iter().any(|name| name == region)) {
                    continue;
                }
            }
            let weight = u64::from(sample.weight);
            let time_ns = weight.saturating_mul(period_ns);
            // Every sample of a cpu trace is a running one, whatever a damaged file says.
            let state = if wall { sample.state } else { SampleState::RUNNING };
            let by_state = &mut self.profile.by_state[state.state as usize];
            by_state.samples += 1;
            by_state.weight = by_state.weight.saturating_add(weight);
            by_state.time_ns = by_state.time_ns.saturating_add(time_ns);
            if self.state.is_some_and(|wanted| wanted != state.state) {
                continue;
            }
            // A wall trace's thread that was not running gets a frame naming its state below the leaf.
            let state_location = self.state_location(state);
            let stack = match stack_map.get(&(sample.stack, state_location.unwrap_or(u32::MAX))) {
                Some(&id) => id,
                None => {
                    let no_python = self.no_python;
                    let python_stack = if generation.python_code.is_empty() || leaf == NO_NODE {
                        None
                    } else {
                        self.place_python_stack(generation, sample.stack, &modules, symbolizer, no_python)
                    };
                    let mut place = |builder: &mut Builder, parent: Option<PlacedNode>, avma: u64, is_return: bool| {
                        let location = match address_locations.get(&(avma, is_return)) {
                            Some(&location) => location,
                            None => {
                                let location = builder.location(&modules, symbolizer, avma, is_return);
                                address_locations.insert((avma, is_return), location);
                                location
                            }
                        };
                        builder.place(parent, location)
                    };
                    let placed = if let Some(placed) = python_stack {
                        placed.unwrap_or_else(|| self.no_frames())
                    } else if leaf == NO_NODE {
                        self.no_frames()
                    } else {
                        let node = generation.stacks.nodes()[leaf as usize];
                        // The callers' nodes not yet placed, nearest first, then outward from the root.
                        let mut pending = Vec::new();
                        let mut caller = node.parent;
                        while caller != NO_NODE && caller_nodes[caller as usize].is_none() {
                            pending.push(caller);
                            caller = generation.stacks.nodes()[caller as usize].parent;
                        }
                        let mut parent = if caller == NO_NODE { None } else { caller_nodes[caller as usize].flatten() };
                        for &pending_node in pending.iter().rev() {
                            let return_address = generation.stacks.nodes()[pending_node as usize].frame;
                            // A return address in no module and no named generated code is not
                            // one (a frame-pointer walk read a loop bound or a stack address): the
                            // stack ends below it, and no value that is not code is ever shown as
                            // a frame.
                            parent = if modules.is_code(return_address.saturating_sub(1)) { Some(place(self, parent, return_address, true)) } else { None };
                            caller_nodes[pending_node as usize] = Some(parent);
                        }
                        place(self, parent, node.frame, false)
                    };
                    let placed = match state_location {
                        Some(location) => self.place(Some(placed), location),
                        None => placed,
                    };
                    let id = self.stack_id(placed);
                    stack_map.insert((sample.stack, state_location.unwrap_or(u32::MAX)), id);
                    id
                }
            };
            self.add_to_total(thread, stack, state, weight, time_ns);
            if self.keep_samples {
                self.profile.samples.push(ProfileSample { unix_ns: unix_ns(sample.time), thread, stack, weight, time_ns, state });
            }
        }
        for event in events {
            self.add_event(&thread_map, event, unix_ns(event.time));
        }
    }

    fn add_event(&mut self, thread_map: &[u32], event: &format::Event, unix_ns: u64) {
        let Some(&thread) = thread_map.get(event.thread as usize) else { return };
        let open = self.open_regions.entry(thread).or_default();
        match event.kind {
            EventKind::RegionBegin => open.push(event.text.clone()),
            EventKind::RegionEnd => {
                open.pop();
            }
            EventKind::ThreadExit => open.clear(),
            EventKind::ThreadStart | EventKind::Log | EventKind::Paused | EventKind::Resumed => {}
        }
        if self.window.is_some_and(|window| !window.contains(unix_ns)) {
            return;
        }
        self.profile.events.push(ProfileEvent { unix_ns, thread, kind: event.kind, category: event.category.clone(), text: event.text.clone() });
    }

    fn add_to_total(&mut self, thread: u32, stack: u32, state: SampleState, weight: u64, time_ns: u64) {
        let totals = &mut self.profile.totals;
        let index = *self.total_ids.entry((thread, stack, state)).or_insert_with(|| {
            totals.push(StackTotal { thread, stack, state, samples: 0, weight: 0, time_ns: 0 });
            (totals.len() - 1) as u32
        });
        let total = &mut totals[index as usize];
        total.samples += 1;
        total.weight = total.weight.saturating_add(weight);
        total.time_ns = total.time_ns.saturating_add(time_ns);
    }

    /// The location of the frame naming `state` ([`state_frame`]); `None` for a running state.
    /// It is in no mapping, at address 0, and is never shared with a code address.
    fn state_location(&mut self, state: SampleState) -> Option<u32> {
        let name = state_frame(state)?;
        if let Some(&id) = self.state_locations.get(&name) {
            return Some(id);
        }
        let frame = self.frame_id(FrameName::unresolved(name.clone(), String::new()));
        let id = self.profile.locations.len() as u32;
        self.profile.locations.push(Location { mapping: None, address: 0, frames: vec![frame] });
        self.state_locations.insert(name, id);
        Some(id)
    }

    /// The location of `avma` (a return address when `is_return`) in a generation whose
    /// modules are `modules`, symbolised when it is new.
    fn location(&mut self, modules: &ModuleMap<'_>, symbolizer: &mut Symbolizer, avma: u64, is_return: bool) -> u32 {
        let lookup = if is_return { avma.saturating_sub(1) } else { avma };
        let (mapping, address, jit) = match modules.find(lookup) {
            Some(module) => (Some(self.mapping_id(module)), lookup.wrapping_sub(module.base), 0),
            // An address reused by generated code is another location under each name.
            None => (None, lookup, modules.jit_symbol(lookup).map_or(0, |(index, _)| index + 1)),
        };
        if let Some(&id) = self.location_ids.get(&(mapping, address, jit)) {
            return id;
        }
        let names = symbolizer.symbolize(modules, avma, is_return);
        let frames: Vec<u32> = names.iter().map(|name| self.frame_id(name.clone())).collect();
        self.location_of((mapping, address, jit), || frames)
    }

    /// The location (mapping, address, JIT symbol), made with the frames `frames()` gives when
    /// it is new.
    fn location_of(&mut self, key: (Option<u32>, u64, usize), frames: impl FnOnce() -> Vec<u32>) -> u32 {
        if let Some(&id) = self.location_ids.get(&key) {
            return id;
        }
        let id = self.profile.locations.len() as u32;
        self.profile.locations.push(Location { mapping: key.0, address: key.1, frames: frames() });
        self.location_ids.insert(key, id);
        id
    }

    /// The single frame `[no frames]` as a whole stack.
    fn no_frames(&mut self) -> PlacedNode {
        let no_frames = self.frame_id(FrameName::unresolved(NO_FRAMES.into(), String::new()));
        let location = self.location_of((None, 0, 0), || vec![no_frames]);
        self.place(None, location)
    }

    /// `location` as the callee of `parent` (`None`: outermost) in both trees.
    fn place(&mut self, parent: Option<PlacedNode>, location: u32) -> PlacedNode {
        let frames = &self.profile.locations[location as usize].frames;
        // Inline frames are innermost first: the frame tree is built from the root.
        let parent_frame = parent.map_or(NO_NODE, |p| p.frame_node);
        let frame_node = frames.iter().rev().fold(parent_frame, |node, &frame| self.profile.stacks.child(node, frame.into()));
        let location_node = self.profile.location_stacks.child(parent.map_or(NO_NODE, |p| p.location_node), location.into());
        PlacedNode { frame_node, location_node }
    }

    fn mapping_id(&mut self, module: &format::Module) -> u32 {
        if let Some(&id) = self.mapping_ids.get(&(module.path.clone(), module.build_id.clone())) {
            return id;
        }
        let id = self.profile.mappings.len() as u32;
        self.profile.mappings.push(Mapping { path: module.path.clone(), build_id: module.build_id.clone(), file_name: module_file_name(&module.path) });
        self.mapping_ids.insert((module.path.clone(), module.build_id.clone()), id);
        id
    }

    fn frame_id(&mut self, name: FrameName) -> u32 {
        if let Some(&id) = self.frame_ids.get(&name) {
            return id;
        }
        let id = self.profile.frames.len() as u32;
        self.profile.frames.push(name.clone());
        self.frame_ids.insert(name, id);
        id
    }

    /// The stack id of the stack ending at `leaf`; the same id in both trees.
    fn stack_id(&mut self, leaf: PlacedNode) -> u32 {
        let profile = &mut self.profile;
        *self.stack_ids.entry(leaf.location_node).or_insert_with(|| {
            let id = profile.location_stacks.push_leaf(leaf.location_node);
            let same = profile.stacks.push_leaf(leaf.frame_node);
            debug_assert_eq!(id, same, "the two stack tables give out ids in step");
            id
        })
    }

    fn thread_id(&mut self, pid: u32, tid: u32, name: &str) -> u32 {
        let id = *self.thread_ids.entry((pid, tid)).or_insert_with(|| {
            self.profile.threads.push(ThreadInfo { pid, tid, name: String::new() });
            (self.profile.threads.len() - 1) as u32
        });
        if !name.is_empty() {
            self.profile.threads[id as usize].name = name.to_string();
        }
        id
    }
}
