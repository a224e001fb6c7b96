//! Trace files → one merged, symbolised profile in memory, shared by `report` and the exporters.
//!
//! Each generation of each file is symbolised against its own module table (a generation is
//! self-contained); identical symbolised frames and stacks are merged across all of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use writer::{Header, ReadStop, StackTable, Trace, NO_NODE};

use crate::symbols::{FrameName, ModuleMap, Symbolizer};

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
    let mut trace = writer::read_trace(bytes);
    let Some(header) = trace.header.take() else {
        return Err(LoadError::NoHeader { path: path.to_path_buf(), why: trace.stopped_because });
    };
    Ok(LoadedTrace { path: path.to_path_buf(), header, trace })
}

/// Loads every file, reporting failures (and damaged tails) on stderr as it goes.
/// Returns the traces that loaded and whether every file did.
pub fn load_traces(paths: &[PathBuf]) -> (Vec<LoadedTrace>, bool) {
    let mut loaded = Vec::with_capacity(paths.len());
    let mut all_ok = true;
    for path in paths {
        match load_trace(path) {
            Ok(trace) => {
                if let Some(why) = &trace.trace.stopped_because {
                    crate::warn!("{}: ignored the last {} bytes: {why}", path.display(), trace.trace.ignored_bytes);
                }
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

/// A thread of one traced process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    pub pid: u32,
    pub tid: u32,
    /// The last non-empty name the thread had.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileSample {
    /// When the sample was taken, Unix time in ns.
    pub unix_ns: u64,
    /// Index into `Profile::threads`.
    pub thread: u32,
    /// Index into `Profile::stacks`.
    pub stack: u32,
    pub weight: u64,
}

/// Symbolised samples of one or more trace files.
#[derive(Debug, Default)]
pub struct Profile {
    /// Distinct symbolised frames (a function at a source line, when lines are known).
    pub frames: Vec<FrameName>,
    /// Distinct stacks of indices into `frames` (as `u64`), LEAF FIRST, sharing their outer
    /// frames in a prefix tree; an address with inline frames contributes them innermost first,
    /// then the function that holds it. Never empty: a sample recorded without frames gets the
    /// single frame `[no frames]`. Distinct stacks end at distinct nodes.
    pub stacks: StackTable,
    pub threads: Vec<ThreadInfo>,
    pub samples: Vec<ProfileSample>,
}

/// The frame given to samples that were recorded without any.
pub const NO_FRAMES: &str = "[no frames]";

impl Profile {
    /// Symbolises and merges every generation of `traces`.
    pub fn build(traces: &[LoadedTrace], symbolizer: &mut Symbolizer) -> Profile {
        Profile::build_in_region(traces, symbolizer, None)
    }

    /// Like [`Profile::build`], keeping only the samples taken while their thread was inside a
    /// region named `region` (`sigtrace_region_begin`/`_end`, nested regions included).
    pub fn build_in_region(traces: &[LoadedTrace], symbolizer: &mut Symbolizer, region: Option<&str>) -> Profile {
        let mut builder = Builder { region: region.map(str::to_string), ..Builder::default() };
        for loaded in traces {
            for generation in &loaded.trace.generations {
                builder.add_generation(&loaded.header, generation, symbolizer);
            }
        }
        builder.profile
    }

    pub fn total_weight(&self) -> u64 {
        self.samples.iter().map(|s| s.weight).sum()
    }
}

#[derive(Default)]
struct Builder {
    profile: Profile,
    frame_ids: HashMap<FrameName, u32>,
    /// Leaf node in `profile.stacks` → stack id.
    stack_ids: HashMap<u32, u32>,
    thread_ids: HashMap<(u32, u32), u32>,
    /// Only samples inside this region are kept.
    region: Option<String>,
    /// The open regions of each (pid, tid), innermost last.
    open_regions: HashMap<(u32, u32), Vec<String>>,
}

impl Builder {
    fn add_generation(&mut self, header: &Header, generation: &writer::Generation, symbolizer: &mut Symbolizer) {
        let modules = ModuleMap::new(&generation.modules);
        // (avma, is return address) → frame ids (inline frames first), for this generation's
        // module table only.
        let mut address_frames: HashMap<(u64, bool), Vec<u32>> = HashMap::new();
        // Trace stack id → profile stack id, for the stacks samples use (a map, not a table of
        // every stack: a node of 4 bytes can end 256 stacks).
        let mut stack_map: HashMap<u32, u32> = HashMap::new();
        // Node of the trace's stack tree → the profile's node for the frames from it to the
        // root when it is a caller (its address a return address): each node is symbolised
        // once, so the work and memory follow the tree, not the frames of every stack.
        let mut caller_nodes: Vec<Option<u32>> = vec![None; generation.stacks.nodes().len()];
        let thread_map: Vec<u32> = generation.threads.iter().map(|t| self.thread_id(header.pid, t.tid, &t.name)).collect();
        let mut events = generation.events.iter().peekable();

        for sample in &generation.samples {
            if let Some(region) = &self.region {
                while let Some(event) = events.next_if(|event| event.time <= sample.time) {
                    let Some(thread) = generation.threads.get(event.thread as usize) else { continue };
                    let open = self.open_regions.entry((header.pid, thread.tid)).or_default();
                    match event.kind {
                        writer::EventKind::RegionBegin => open.push(event.text.clone()),
                        writer::EventKind::RegionEnd => {
                            open.pop();
                        }
                        writer::EventKind::ThreadExit => open.clear(),
                        _ => {}
                    }
                }
                let tid = generation.threads.get(sample.thread as usize).map_or(0, |t| t.tid);
                if !self.open_regions.get(&(header.pid, tid)).is_some_and(|open| open.iter().any(|name| name == region)) {
                    continue;
                }
            }
            let (Some(&thread), Some(leaf)) = (thread_map.get(sample.thread as usize), generation.stacks.leaf(sample.stack as usize)) else {
                continue; // the decoder rejects these; stay defensive anyway
            };
            let stack_id = match stack_map.get(&sample.stack) {
                Some(&id) => id,
                None => {
                    let mut symbolise = |builder: &mut Builder, parent: u32, avma: u64, is_return: bool| {
                        let ids = address_frames.entry((avma, is_return)).or_insert_with(|| {
                            let names = symbolizer.symbolize(&modules, avma, is_return);
                            names.iter().map(|name| builder.frame_id(name.clone())).collect()
                        });
                        // Inline frames are innermost first: the tree is built from the root.
                        ids.iter().rev().fold(parent, |node, &frame| builder.profile.stacks.child(node, frame.into()))
                    };
                    let profile_leaf = if leaf == NO_NODE {
                        let no_frames = self.frame_id(FrameName::unresolved(NO_FRAMES.into(), String::new()));
                        self.profile.stacks.child(NO_NODE, no_frames.into())
                    } else {
                        let node = generation.stacks.nodes()[leaf as usize];
                        // The callers' nodes not yet symbolised, nearest first, then outward from the root.
                        let mut pending = Vec::new();
                        let mut caller = node.parent;
                        while caller != NO_NODE && caller_nodes[caller as usize].is_none() {
                            pending.push(caller);
                            caller = generation.stacks.nodes()[caller as usize].parent;
                        }
                        let mut parent = if caller == NO_NODE { NO_NODE } else { caller_nodes[caller as usize].unwrap_or(NO_NODE) };
                        for &pending_node in pending.iter().rev() {
                            parent = symbolise(self, parent, generation.stacks.nodes()[pending_node as usize].frame, true);
                            caller_nodes[pending_node as usize] = Some(parent);
                        }
                        symbolise(self, parent, node.frame, false)
                    };
                    let id = self.stack_id(profile_leaf);
                    stack_map.insert(sample.stack, id);
                    id
                }
            };
            let clock_ns = ticks_to_ns(header, sample.time);
            let unix_ns = header.start_unix_ns.saturating_add(clock_ns.saturating_sub(header.start_clock_ns));
            self.profile.samples.push(ProfileSample { unix_ns, thread, stack: stack_id, weight: sample.weight.into() });
        }
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

    /// The stack id of the stack ending at `leaf` of `profile.stacks`.
    fn stack_id(&mut self, leaf: u32) -> u32 {
        *self.stack_ids.entry(leaf).or_insert_with(|| self.profile.stacks.push_leaf(leaf))
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
