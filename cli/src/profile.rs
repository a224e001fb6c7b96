//! Trace files → one merged, symbolised profile in memory, shared by `report` and the exporters.
//!
//! Each generation of each file is symbolised against its own module table (a generation is
//! self-contained); identical symbolised frames and stacks are merged across all of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use writer::{Header, Trace};

use crate::symbols::{FrameName, ModuleMap, Symbolizer};

/// One trace file as read from disk.
pub struct LoadedTrace {
    pub path: PathBuf,
    pub header: Header,
    pub trace: Trace,
}

/// Reads and decodes one trace file. The error is a complete message (without `sigtrace:`).
pub fn load_trace(path: &Path) -> Result<LoadedTrace, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut trace = writer::read_trace(&bytes);
    let Some(header) = trace.header.take() else {
        return Err(match trace.stopped_because {
            Some(why) if why.starts_with("not a sigtrace file") => format!("{}: {why}", path.display()),
            Some(why) => format!("{}: not a sigtrace file: no header ({why})", path.display()),
            None => format!("{}: not a sigtrace file: no header", path.display()),
        });
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
    /// Distinct stacks as indices into `frames`, LEAF FIRST; an address with inline frames
    /// contributes them innermost first, then the function that holds it. Never empty: a
    /// sample recorded without frames gets the single frame `[no frames]`.
    pub stacks: Vec<Vec<u32>>,
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
    stack_ids: HashMap<Vec<u32>, u32>,
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
        let mut stack_map: Vec<Option<u32>> = vec![None; generation.stacks.len()];
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
            let (Some(&thread), Some(stack)) = (thread_map.get(sample.thread as usize), generation.stacks.get(sample.stack as usize)) else {
                continue; // the decoder rejects these; stay defensive anyway
            };
            let stack_id = match stack_map[sample.stack as usize] {
                Some(id) => id,
                None => {
                    let mut frames: Vec<u32> = Vec::with_capacity(stack.len());
                    if stack.is_empty() {
                        frames.push(self.frame_id(FrameName::unresolved(NO_FRAMES.into(), String::new())));
                    }
                    for (depth, &avma) in stack.iter().enumerate() {
                        let key = (avma, depth > 0);
                        if let Some(ids) = address_frames.get(&key) {
                            frames.extend_from_slice(ids);
                            continue;
                        }
                        let names = symbolizer.symbolize(&modules, avma, depth > 0);
                        let ids: Vec<u32> = names.iter().map(|name| self.frame_id(name.clone())).collect();
                        frames.extend_from_slice(&ids);
                        address_frames.insert(key, ids);
                    }
                    let id = self.stack_id(frames);
                    stack_map[sample.stack as usize] = Some(id);
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

    fn stack_id(&mut self, frames: Vec<u32>) -> u32 {
        if let Some(&id) = self.stack_ids.get(&frames) {
            return id;
        }
        let id = self.profile.stacks.len() as u32;
        self.profile.stacks.push(frames.clone());
        self.stack_ids.insert(frames, id);
        id
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
