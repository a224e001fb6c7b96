//! Firefox Profiler processed-profile JSON (profiler.firefox.com and Perfetto UI open it),
//! built with `fxprof-processed-profile`. Needs the profile's samples (`keep_samples`).
//!
//! * One process per pid. An image started by `exec` (same pid, a later trace file) continues
//!   its pid's process rather than starting a second one: its threads are the same kernel
//!   threads (the profile merges them by pid and tid, and the main thread goes on through the
//!   exec), so one track per pid shows the thread's whole life on one timeline, as `ps` would.
//!   The process takes the last image's name, and an `exec` marker on its main thread shows
//!   where each later image began and with which command line.
//! * One thread per traced thread, with its last name; the main thread (tid = pid) is flagged
//!   (the Firefox Profiler shows it under the process's name). It lives from its `ThreadStart`
//!   event (else its image's start) to its `ThreadExit` event (else the end of the image it was
//!   last seen in).
//! * Every sample with its time, its weight (periods) and its CPU time as the CPU delta, in µs:
//!   the nanoseconds are carried from one sample to the next, so a thread's deltas add up to its
//!   CPU time rounded down to the µs. A weight beyond `i32::MAX` periods is clamped there. In a
//!   `wall` trace the weight of a runnable or blocked sample is periods of wall time (the call
//!   tree then weighs wall time, waiting stacks ending in `[blocked: CALL]` or `[runnable]`)
//!   and its CPU delta is 0: only running samples carry CPU time.
//! * In a `wall` trace, the time a thread spent blocked as interval markers on it, named after
//!   the call (`blocked: read`): a blocked sample stands for the wall time since the thread's
//!   previous tick (its weight × period, up to its time), and consecutive blocked samples of a
//!   thread in the same call make one marker, from the first one's start to the last one's time.
//! * Regions as interval markers (per thread, nested; one left open ends with its thread), log
//!   messages as instant markers named after their category.
//! * Time 0 is the earliest start of the traced images; meta.interval is the first image's period.

mod frames;
mod markers;

use std::collections::HashMap;

use format::{EventKind, NO_NODE};
use fxprof_processed_profile::{
    CategoryColor, CategoryHandle, CpuDelta, Frame, FrameFlags, FrameInfo, MarkerTiming, ProcessHandle, ReferenceTimestamp, SamplingInterval, StackHandle,
    StringHandle, ThreadHandle, Timestamp,
};

use crate::profile::{ProcessInfo, Profile};
use format::{call_name, ThreadState};
use markers::{BlockedMarker, ExecMarker, LogMarker, RegionMarker};

/// The product name when the profile names no process.
const NO_PRODUCT: &str = "sigtrace";

/// `profile` as Firefox Profiler JSON.
pub fn render(profile: &Profile) -> Vec<u8> {
    let out = build(profile);
    // Serialising in-memory tables into a Vec cannot fail (no I/O, string keys only).
    serde_json::to_vec(&out).unwrap_or_default()
}

/// The Firefox Profiler profile of `profile`.
pub fn build(profile: &Profile) -> fxprof_processed_profile::Profile {
    let clock = Clock::of(profile);
    let interval = profile.processes.first().map_or(1_000_000, |p| p.period_ns).max(1);
    let mut out = fxprof_processed_profile::Profile::new(&product(profile), clock.reference(), SamplingInterval::from_nanos(interval));
    out.set_symbolicated(true);
    out.set_os_name(std::env::consts::OS);
    let categories = Categories {
        region: out.add_category("Region", CategoryColor::Blue),
        log: out.add_category("Log", CategoryColor::Green),
        exec: out.add_category("Process", CategoryColor::Orange),
    };
    let blocked = profile.has_wall().then(|| out.add_category("Blocked", CategoryColor::Gray));

    let images = images_by_pid(profile);
    let lifetimes = Lifetimes::of(profile, &images);
    let mut processes: HashMap<u32, ProcessHandle> = HashMap::new();
    let mut threads = Vec::with_capacity(profile.threads.len());
    for (index, thread) in profile.threads.iter().enumerate() {
        let process = *processes.entry(thread.pid).or_insert_with(|| add_process(&mut out, &clock, thread.pid, images.get(&thread.pid)));
        let lifetime = &lifetimes.0[index];
        let handle = out.add_thread(process, thread.tid, clock.at(lifetime.start_ns), thread.tid == thread.pid);
        out.set_thread_end_time(handle, clock.at(lifetime.end_ns));
        if !thread.name.is_empty() {
            out.set_thread_name(handle, &thread.name);
        }
        threads.push(handle);
    }

    add_samples(profile, &mut out, &clock, &threads);
    add_exec_markers(profile, &mut out, &clock, &threads, &images, categories.exec);
    add_event_markers(profile, &mut out, &clock, &threads, &lifetimes, &categories);
    if let Some(category) = blocked {
        add_blocked_markers(profile, &mut out, &clock, &threads, category);
    }
    out
}

/// The command line of the first traced image.
fn product(profile: &Profile) -> String {
    match profile.processes.first() {
        Some(process) => command_line(process),
        None => NO_PRODUCT.to_string(),
    }
}

fn command_line(process: &ProcessInfo) -> String {
    if process.args.is_empty() {
        process.executable.clone()
    } else {
        process.args.join(" ")
    }
}

/// The file name of an image's executable.
fn image_name(process: &ProcessInfo) -> &str {
    process.executable.rsplit('/').next().filter(|name| !name.is_empty()).unwrap_or(&process.executable)
}

/// Unix ns → profile time: ns since the earliest start of a traced image (or the earliest
/// sample or event, when one is earlier).
struct Clock {
    reference_ns: u64,
}

impl Clock {
    fn of(profile: &Profile) -> Clock {
        let starts = profile.processes.iter().map(|p| p.start_unix_ns);
        let samples = profile.samples.iter().map(|s| s.unix_ns);
        let events = profile.events.iter().map(|e| e.unix_ns);
        Clock { reference_ns: starts.chain(samples).chain(events).min().unwrap_or(0) }
    }

    fn reference(&self) -> ReferenceTimestamp {
        ReferenceTimestamp::from_millis_since_unix_epoch(self.reference_ns as f64 / 1e6)
    }

    fn at(&self, unix_ns: u64) -> Timestamp {
        Timestamp::from_nanos_since_reference(unix_ns.saturating_sub(self.reference_ns))
    }
}

/// The marker categories.
struct Categories {
    region: CategoryHandle,
    log: CategoryHandle,
    exec: CategoryHandle,
}

/// The images of each pid, earliest first.
fn images_by_pid(profile: &Profile) -> HashMap<u32, Vec<&ProcessInfo>> {
    let mut images: HashMap<u32, Vec<&ProcessInfo>> = HashMap::new();
    for process in &profile.processes {
        images.entry(process.pid).or_default().push(process);
    }
    for list in images.values_mut() {
        list.sort_by_key(|image| image.start_unix_ns);
    }
    images
}

/// Adds the process `pid`, named after its last image, living from its first image's start to
/// its last image's end.
fn add_process(out: &mut fxprof_processed_profile::Profile, clock: &Clock, pid: u32, images: Option<&Vec<&ProcessInfo>>) -> ProcessHandle {
    let images = images.map_or(&[][..], Vec::as_slice);
    let name = images.last().map_or_else(|| format!("pid {pid}"), |image| image_name(image).to_string());
    let start = images.iter().map(|image| image.start_unix_ns).min().unwrap_or(clock.reference_ns);
    let process = out.add_process(&name, pid, clock.at(start));
    if let Some(end) = images.iter().map(|image| image.end_unix_ns).max().filter(|&end| end > 0) {
        out.set_process_end_time(process, clock.at(end.max(start)));
    }
    process
}

/// When each thread of the profile started and ended (Unix ns).
struct Lifetime {
    start_ns: u64,
    end_ns: u64,
}

struct Lifetimes(Vec<Lifetime>);

impl Lifetimes {
    /// From the `ThreadStart`/`ThreadExit` events; a thread without a start event was running
    /// when its image's tracing began, one without an exit event ran to the end of the image it
    /// was last seen in (an `exec` ends the other threads of the image before it). A
    /// sample or event outside these bounds widens them.
    fn of(profile: &Profile, images: &HashMap<u32, Vec<&ProcessInfo>>) -> Lifetimes {
        let mut started: Vec<Option<u64>> = vec![None; profile.threads.len()];
        let mut exited: Vec<Option<u64>> = vec![None; profile.threads.len()];
        let mut seen: Vec<Option<(u64, u64)>> = vec![None; profile.threads.len()];
        let mut see = |thread: u32, unix_ns: u64| {
            if let Some(slot) = seen.get_mut(thread as usize) {
                let (first, last) = slot.get_or_insert((unix_ns, unix_ns));
                *first = (*first).min(unix_ns);
                *last = (*last).max(unix_ns);
            }
        };
        for event in &profile.events {
            see(event.thread, event.unix_ns);
            let index = event.thread as usize;
            match event.kind {
                EventKind::ThreadStart if index < started.len() => started[index] = Some(started[index].map_or(event.unix_ns, |t| t.min(event.unix_ns))),
                EventKind::ThreadExit if index < exited.len() => exited[index] = Some(exited[index].map_or(event.unix_ns, |t| t.max(event.unix_ns))),
                _ => {}
            }
        }
        for sample in &profile.samples {
            see(sample.thread, sample.unix_ns);
        }
        let lifetimes = profile
            .threads
            .iter()
            .enumerate()
            .map(|(index, thread)| {
                let images = images.get(&thread.pid).map_or(&[][..], Vec::as_slice);
                let seen = seen[index];
                let image_start = images.iter().map(|image| image.start_unix_ns).min();
                let last_seen = seen.map_or(0, |(_, last)| last);
                let image_end = images.iter().map(|image| image.end_unix_ns).filter(|&end| end >= last_seen).min();
                let end_of_its_image = image_end.or_else(|| images.iter().map(|image| image.end_unix_ns).max());
                let start_ns = [started[index].or(image_start), seen.map(|(first, _)| first)].into_iter().flatten().min().unwrap_or(0);
                let end_ns = [exited[index].or(end_of_its_image), seen.map(|(_, last)| last), Some(start_ns)].into_iter().flatten().max().unwrap_or(start_ns);
                Lifetime { start_ns, end_ns }
            })
            .collect();
        Lifetimes(lifetimes)
    }
}

/// Adds every sample of `profile` to its thread.
fn add_samples(profile: &Profile, out: &mut fxprof_processed_profile::Profile, clock: &Clock, threads: &[ThreadHandle]) {
    let frames = frames::frames_of(profile, out);
    let mut stacks = StackInterner { profile, frames: &frames, nodes: vec![HashMap::new(); threads.len()] };
    // Per thread: CPU ns given so far, and µs given so far (their floor, so deltas add up).
    let mut cpu_given: Vec<(u64, u64)> = vec![(0, 0); threads.len()];
    for sample in &profile.samples {
        let index = sample.thread as usize;
        let Some(&thread) = threads.get(index) else { continue };
        let stack = stacks.stack(out, index, thread, sample.stack);
        let (ns, us) = &mut cpu_given[index];
        *ns = ns.saturating_add(sample.cpu_ns());
        let delta_us = *ns / 1000 - *us;
        *us += delta_us;
        let weight = i32::try_from(sample.weight).unwrap_or(i32::MAX);
        out.add_sample(thread, clock.at(sample.unix_ns), stack, CpuDelta::from_micros(delta_us), weight);
    }
}

/// Turns the profile's stacks into each thread's stacks, one node at a time: the work follows
/// the nodes of each thread's stack tree, not the frames of every sample.
struct StackInterner<'a> {
    profile: &'a Profile,
    frames: &'a [Frame],
    /// Per thread: node of `profile.stacks` → the thread's stack ending there.
    nodes: Vec<HashMap<u32, StackHandle>>,
}

impl StackInterner<'_> {
    /// The thread's stack for stack id `stack`; `None` when it is empty or unknown.
    fn stack(&mut self, out: &mut fxprof_processed_profile::Profile, index: usize, thread: ThreadHandle, stack: u32) -> Option<StackHandle> {
        let table = &self.profile.stacks;
        let leaf = table.leaf(stack as usize).filter(|&leaf| leaf != NO_NODE)?;
        let known = &mut self.nodes[index];
        if let Some(&handle) = known.get(&leaf) {
            return Some(handle);
        }
        // The nodes not yet interned, leaf first, up to the nearest known one (or the root).
        let mut pending = Vec::new();
        let mut node = leaf;
        let mut parent = None;
        while node != NO_NODE {
            if let Some(&handle) = known.get(&node) {
                parent = Some(handle);
                break;
            }
            pending.push(node);
            node = table.nodes().get(node as usize).map_or(NO_NODE, |n| n.parent);
        }
        for &node in pending.iter().rev() {
            let frame_id = table.nodes()[node as usize].frame;
            let frame = match usize::try_from(frame_id).ok().and_then(|id| self.frames.get(id)) {
                Some(frame) => frame.clone(),
                None => Frame::Label(out.intern_string(&format!("[frame {frame_id}]"))),
            };
            let frame = out.intern_frame(thread, FrameInfo { frame, category_pair: CategoryHandle::OTHER.into(), flags: FrameFlags::empty() });
            let handle = out.intern_stack(thread, parent, frame);
            known.insert(node, handle);
            parent = Some(handle);
        }
        parent
    }
}

/// An `exec` marker on the main thread of every pid where each image after the first began.
fn add_exec_markers(
    profile: &Profile,
    out: &mut fxprof_processed_profile::Profile,
    clock: &Clock,
    threads: &[ThreadHandle],
    images: &HashMap<u32, Vec<&ProcessInfo>>,
    category: CategoryHandle,
) {
    let main_threads: HashMap<u32, ThreadHandle> =
        profile.threads.iter().zip(threads).filter(|(thread, _)| thread.tid == thread.pid).map(|(thread, &handle)| (thread.pid, handle)).collect();
    let name = out.intern_string("exec");
    for (pid, images) in images {
        let Some(&main) = main_threads.get(pid) else { continue };
        for image in images.iter().skip(1) {
            let command = out.intern_string(&command_line(image));
            out.add_marker(main, MarkerTiming::Instant(clock.at(image.start_unix_ns)), ExecMarker { name, command, category });
        }
    }
}

/// A stretch of wall time a thread spent blocked in one call.
struct BlockedStretch {
    call: u32,
    start_ns: u64,
    end_ns: u64,
    samples: u64,
}

/// The blocked stretches of every thread as interval markers (see the module's comment).
fn add_blocked_markers(profile: &Profile, out: &mut fxprof_processed_profile::Profile, clock: &Clock, threads: &[ThreadHandle], category: CategoryHandle) {
    let mut open: Vec<Option<BlockedStretch>> = (0..threads.len()).map(|_| None).collect();
    let mut names: HashMap<u32, (StringHandle, StringHandle)> = HashMap::new();
    let mut add = |out: &mut fxprof_processed_profile::Profile, thread: ThreadHandle, stretch: BlockedStretch| {
        let (name, call) = *names.entry(stretch.call).or_insert_with(|| {
            let call = call_name(stretch.call);
            (out.intern_string(&format!("blocked: {call}")), out.intern_string(&call))
        });
        let timing = MarkerTiming::Interval(clock.at(stretch.start_ns), clock.at(stretch.end_ns.max(stretch.start_ns)));
        out.add_marker(thread, timing, BlockedMarker { name, call, samples: stretch.samples, category });
    };
    for sample in &profile.samples {
        let index = sample.thread as usize;
        let Some(&thread) = threads.get(index) else { continue };
        let blocked = sample.state.state == ThreadState::Blocked;
        let slot = &mut open[index];
        match slot {
            Some(stretch) if blocked && stretch.call == sample.state.call => {
                stretch.end_ns = stretch.end_ns.max(sample.unix_ns);
                stretch.samples += 1;
                continue;
            }
            _ => {}
        }
        if let Some(stretch) = slot.take() {
            add(out, thread, stretch);
        }
        if blocked {
            let start_ns = sample.unix_ns.saturating_sub(sample.time_ns);
            *slot = Some(BlockedStretch { call: sample.state.call, start_ns, end_ns: sample.unix_ns, samples: 1 });
        }
    }
    for (index, stretch) in open.into_iter().enumerate() {
        if let Some(stretch) = stretch {
            add(out, threads[index], stretch);
        }
    }
}

/// Regions as interval markers and log messages as instant markers, on their threads; each
/// paused interval of sampling as a `sampling paused (…)` interval on the thread that paused
/// it (to the next resume on any thread, or that thread's end).
fn add_event_markers(
    profile: &Profile,
    out: &mut fxprof_processed_profile::Profile,
    clock: &Clock,
    threads: &[ThreadHandle],
    lifetimes: &Lifetimes,
    categories: &Categories,
) {
    // Per thread: the open regions, outermost first (name, begin time).
    let mut open: Vec<Vec<(String, u64)>> = vec![Vec::new(); threads.len()];
    // The pause in force: the pausing thread's index, what paused, since when.
    let mut paused: Option<(usize, String, u64)> = None;
    for event in &profile.events {
        let index = event.thread as usize;
        let Some(&thread) = threads.get(index) else { continue };
        match event.kind {
            EventKind::RegionBegin => open[index].push((event.text.clone(), event.unix_ns)),
            EventKind::RegionEnd => {
                if let Some((name, begin)) = open[index].pop() {
                    add_region(out, clock, thread, &name, open[index].len(), begin, event.unix_ns, categories.region);
                }
            }
            EventKind::Log => {
                let log_category = out.intern_string(&event.category);
                let name = if event.category.is_empty() { out.intern_string("log") } else { log_category };
                let text = out.intern_string(&event.text);
                out.add_marker(thread, MarkerTiming::Instant(clock.at(event.unix_ns)), LogMarker { name, log_category, text, category: categories.log });
            }
            EventKind::Paused => {
                paused.get_or_insert((index, format!("sampling paused ({})", event.text), event.unix_ns));
            }
            EventKind::Resumed => {
                if let Some((by, name, begin)) = paused.take() {
                    add_region(out, clock, threads[by], &name, 0, begin, event.unix_ns, categories.region);
                }
            }
            EventKind::ThreadStart | EventKind::ThreadExit => {}
        }
    }
    if let Some((by, name, begin)) = paused {
        add_region(out, clock, threads[by], &name, 0, begin, lifetimes.0[by].end_ns.max(begin), categories.region);
    }
    for (index, regions) in open.into_iter().enumerate() {
        let end = lifetimes.0[index].end_ns;
        for (depth, (name, begin)) in regions.into_iter().enumerate().rev() {
            add_region(out, clock, threads[index], &name, depth, begin, end, categories.region);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn add_region(
    out: &mut fxprof_processed_profile::Profile,
    clock: &Clock,
    thread: ThreadHandle,
    name: &str,
    depth: usize,
    begin_ns: u64,
    end_ns: u64,
    category: CategoryHandle,
) {
    let name = out.intern_string(name);
    let depth = u32::try_from(depth).unwrap_or(u32::MAX);
    let timing = MarkerTiming::Interval(clock.at(begin_ns), clock.at(end_ns.max(begin_ns)));
    out.add_marker(thread, timing, RegionMarker { name, depth, category });
}

#[cfg(test)]
mod tests;
