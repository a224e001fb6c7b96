//! What `top` shows: the generations of the last N seconds, each summarised once when it
//! arrives (symbolised, its functions' self and total weight, its threads' weight), summed over
//! the window at each refresh.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use format::{Generation, Header, Trace};

use crate::commands::report::function_rows;
use crate::profile::{LoadedTrace, Profile};
use crate::symbolize::Symbolizer;
use crate::time_window::unix_ns_of;

/// One generation, summarised.
struct GenerationSummary {
    end_unix_ns: u64,
    /// (function, module) → (self, total) weight.
    functions: HashMap<(String, String), (u64, u64)>,
    /// tid → (name, weight).
    threads: HashMap<u32, (String, u64)>,
    samples: u64,
    weight: u64,
    dropped: u64,
    process_cpu_ns: u64,
}

/// A function's row in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLine {
    pub function: String,
    pub module: String,
    pub self_weight: u64,
    pub total_weight: u64,
}

/// A thread's row in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLine {
    pub tid: u32,
    pub name: String,
    /// Its sampled CPU time over the window, ns.
    pub cpu_ns: u64,
}

/// The window's totals, as drawn.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub functions: Vec<FunctionLine>,
    pub threads: Vec<ThreadLine>,
    pub samples: u64,
    pub weight: u64,
    pub dropped: u64,
    /// Sampled CPU time over the process's CPU time in the window (`None` before two generations).
    pub capture_ratio: Option<f64>,
    /// The window's length as covered by generations, ns.
    pub span_ns: u64,
    /// Generations read since the start.
    pub generations: u64,
    /// The end of the newest generation, ns after the trace's start.
    pub trace_time_ns: u64,
}

/// The last `seconds` of a trace.
pub struct RollingWindow {
    seconds: u64,
    summaries: VecDeque<GenerationSummary>,
    /// Where the window's CPU time counts from: (Unix ns, the process's CPU time) at the end of
    /// the generation before the window's first one, or at the trace's start
    /// (`Generation::process_cpu_ns_before` of the first generation that says it).
    cpu_before: Option<(u64, u64)>,
    generations: u64,
    symbolizer: Symbolizer,
}

impl RollingWindow {
    pub fn new(seconds: u64) -> RollingWindow {
        RollingWindow { seconds, summaries: VecDeque::new(), cpu_before: None, generations: 0, symbolizer: Symbolizer::new() }
    }

    /// Adds a generation of the trace at `path` with `header`.
    pub fn add(&mut self, path: &Path, header: &Header, generation: Generation) {
        self.generations += 1;
        if self.cpu_before.is_none() {
            self.cpu_before = generation.process_cpu_ns_before().map(|cpu_ns| (header.start_unix_ns, cpu_ns));
        }
        let end_unix_ns = unix_ns_of(header, generation.end_time);
        let (process_cpu_ns, dropped_in_threads) = (generation.process_cpu_ns, generation.threads.iter().map(|t| t.dropped).sum::<u64>());
        let dropped =
            dropped_in_threads + generation.counters.iter().filter(|(name, _)| name == format::counters::DROPPED_NO_SLOT).map(|(_, value)| value).sum::<u64>();
        let loaded = LoadedTrace { path: path.to_path_buf(), header: header.clone(), trace: Trace { generations: vec![generation], ..Trace::default() } };
        let profile = Profile::build(std::slice::from_ref(&loaded), &mut self.symbolizer);
        let mut functions = HashMap::new();
        for row in function_rows(&profile, false) {
            let Some(frame) = profile.frames.get(row.frame as usize) else { continue };
            let entry = functions.entry((frame.function.clone(), frame.module.clone())).or_insert((0, 0));
            entry.0 += row.self_weight;
            entry.1 += row.total_weight;
        }
        let mut threads: HashMap<u32, (String, u64)> = HashMap::new();
        for total in &profile.totals {
            if let Some(thread) = profile.threads.get(total.thread as usize) {
                threads.entry(thread.tid).or_insert_with(|| (thread.name.clone(), 0)).1 += total.weight;
            }
        }
        self.summaries.push_back(GenerationSummary {
            end_unix_ns,
            functions,
            threads,
            samples: profile.total_samples(),
            weight: profile.total_weight(),
            dropped,
            process_cpu_ns,
        });
        let newest = end_unix_ns;
        while self.summaries.front().is_some_and(|oldest| oldest.end_unix_ns.saturating_add(self.seconds * 1_000_000_000) <= newest) {
            if let Some(oldest) = self.summaries.pop_front() {
                self.cpu_before = Some((oldest.end_unix_ns, oldest.process_cpu_ns));
            }
        }
    }

    /// The sums over the window; `period_ns` is one sample's time, `start_unix_ns` the trace's start.
    pub fn totals(&self, period_ns: u64, start_unix_ns: u64) -> Totals {
        let mut functions: HashMap<&(String, String), (u64, u64)> = HashMap::new();
        let mut threads: HashMap<u32, (String, u64)> = HashMap::new();
        let mut totals = Totals { generations: self.generations, ..Totals::default() };
        for summary in &self.summaries {
            for (key, (self_weight, total_weight)) in &summary.functions {
                let entry = functions.entry(key).or_insert((0, 0));
                entry.0 += self_weight;
                entry.1 += total_weight;
            }
            for (tid, (name, weight)) in &summary.threads {
                let entry = threads.entry(*tid).or_insert_with(|| (String::new(), 0));
                if !name.is_empty() {
                    entry.0.clone_from(name);
                }
                entry.1 += weight;
            }
            totals.samples += summary.samples;
            totals.weight += summary.weight;
            totals.dropped += summary.dropped;
        }
        totals.functions = functions
            .into_iter()
            .map(|((function, module), (self_weight, total_weight))| FunctionLine {
                function: function.clone(),
                module: module.clone(),
                self_weight,
                total_weight,
            })
            .collect();
        totals.functions.sort_by(|a, b| (b.self_weight, b.total_weight, &a.function).cmp(&(a.self_weight, a.total_weight, &b.function)));
        totals.threads = threads.into_iter().map(|(tid, (name, weight))| ThreadLine { tid, name, cpu_ns: weight.saturating_mul(period_ns) }).collect();
        totals.threads.sort_by(|a, b| (b.cpu_ns, a.tid).cmp(&(a.cpu_ns, b.tid)));
        if let (Some(newest), Some(first)) = (self.summaries.back(), self.summaries.front()) {
            let (from_ns, cpu_from) = self.cpu_before.unwrap_or((start_unix_ns, 0));
            totals.span_ns = newest.end_unix_ns.saturating_sub(from_ns.min(first.end_unix_ns));
            totals.trace_time_ns = newest.end_unix_ns.saturating_sub(start_unix_ns);
            let cpu = newest.process_cpu_ns.saturating_sub(cpu_from);
            totals.capture_ratio = (cpu > 0).then(|| totals.weight.saturating_mul(period_ns) as f64 / cpu as f64);
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use format::{Sample, Thread};

    /// The first window's capture counts the process's CPU time from the trace's start (an
    /// exec'd image's process had CPU time before it), not from 0.
    #[test]
    fn the_first_windows_capture_counts_cpu_time_from_the_trace_start() {
        let header = Header { clock_hz: 1_000_000, start_clock_ns: 1_000_000_000, start_unix_ns: 5_000_000_000, hz: 1000, ..Header::default() };
        let generation = Generation {
            sequence: 1,
            start_time: 1_000_000,
            end_time: 1_100_000,
            process_cpu_ns: 10_000_000,
            threads: vec![Thread { tid: 7, name: "main".into(), cpu_ns: 10_000_000, dropped: 0, exited: false }],
            stacks: vec![vec![0x1000]].into(),
            samples: vec![Sample { time: 1_050_000, thread: 0, stack: 0, weight: 6, state: Default::default() }],
            counters: vec![(format::counters::SERIES_CPU_NS_BEFORE.into(), 4_000_000)],
            ..Generation::default()
        };
        let mut window = RollingWindow::new(10);
        window.add(Path::new("t.sigtrace"), &header, generation);
        let capture = window.totals(1_000_000, header.start_unix_ns).capture_ratio.expect("a capture");
        // 6 periods of 1 ms for the 6 ms of CPU time since the trace began (of 10 ms in all).
        assert!((capture - 1.0).abs() < 1e-9, "capture {capture}");
    }
}
