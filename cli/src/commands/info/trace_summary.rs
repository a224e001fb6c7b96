//! The totals of one trace file that `info` shows and `record` prints a line of: samples,
//! weight and drops per thread, time by state, capture ratio, effective rate, counters, events.

use std::collections::BTreeMap;

use format::ThreadState;
use format::{counters, walk};

use crate::format_numbers::{percent, seconds_with_decimals, time_by_state};
use crate::profile::{is_wall_header, ticks_to_ns, LoadedTrace};
use config::period_ns;

/// One thread's totals over all generations of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadTotals {
    pub tid: u32,
    pub name: String,
    pub samples: u64,
    pub weight: u64,
    /// The weight of its samples in each state (indexed by `ThreadState as usize`).
    pub state_weights: [u64; 3],
    /// The largest CPU time the thread was seen with, ns.
    pub cpu_ns: u64,
    pub dropped: u64,
}

/// Totals of one trace file, as shown by `info` and by `record`'s closing lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSummary {
    pub generations: usize,
    /// Sample records.
    pub samples: u64,
    /// Sum of the samples' weights (sampling periods they stand for).
    pub weight: u64,
    /// Sample records in each state (indexed by `ThreadState as usize`; all running in a `cpu` trace).
    pub state_samples: [u64; 3],
    /// Weight in each state (indexed by `ThreadState as usize`).
    pub state_weights: [u64; 3],
    /// A `wall` trace: weights add up to each thread's wall time, and only running samples
    /// measure CPU time (capture ratio, effective rate).
    pub wall: bool,
    /// ns of one sampling period (1e9 / hz).
    pub period_ns: u64,
    /// Threads' drop counts plus the `dropped.no_slot` counter.
    pub dropped: u64,
    /// The last generation's CPU time of the process, ns.
    pub cpu_ns: u64,
    /// From the header's start to the end of the last generation, ns.
    pub duration_ns: u64,
    /// Counters summed over generations.
    pub counters: BTreeMap<String, u64>,
    /// Per distinct tid, in order of first appearance.
    pub threads: Vec<ThreadTotals>,
    /// `weight / (cpu_ns × hz / 1e9)`: the share of the CPU time that samples account for
    /// (in a `wall` trace, the weight of the running samples).
    pub capture_ratio: Option<f64>,
    /// Sample records per CPU second; `None` without CPU time.
    pub effective_rate: Option<EffectiveRate>,
    /// Events by kind, indexed by the kind's code.
    pub events: [usize; format::EventKind::ALL.len()],
    /// What a time window kept, when one was given.
    pub window: Option<WindowKept>,
    /// tid → index into `threads`.
    thread_index: BTreeMap<u32, usize>,
    /// The end of the last generation added, header clock ticks.
    end_time: u64,
    /// The process's CPU time before the trace began, said by the first generation that says
    /// it (`Generation::process_cpu_ns_before`; a rotated series' later files say theirs).
    /// `None` until that generation.
    cpu_ns_before: Option<u64>,
}

/// The time window a summary was cut to, and what the whole file held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowKept {
    pub window: crate::time_window::TimeWindow,
    pub samples_in_file: u64,
    pub weight_in_file: u64,
}

/// The sampling rate a trace's records show, which a timer the kernel checks on its tick only
/// (POSIX thread CPU timers, `setitimer`) caps at CONFIG_HZ: asked for 999 Hz, they deliver at
/// most ~250 signals per CPU second here, each weighted by the periods it stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectiveRate {
    /// Sample records per second of the threads' CPU time.
    pub hz: f64,
    /// The timer is tick-limited and the records fall clearly short of the requested rate: by
    /// more than 10% and more than [`SHORTFALL_SIGMAS`] Poisson deviations of the expected count.
    pub tick_limited: bool,
}

/// How many standard deviations of the expected record count a shortfall must exceed to be
/// called tick-limited (a run cut short by a few ticks is not).
pub const SHORTFALL_SIGMAS: f64 = 4.5;

/// The timers the kernel checks only on its scheduler tick (as the header names them).
pub const TICK_LIMITED_TIMERS: [&str; 2] = ["posix", "itimer"];

impl EffectiveRate {
    /// The rate of `records` sample records over `cpu_ns` of CPU time, for a trace that asked
    /// for `hz` with `timer`; `None` without CPU time.
    pub fn of(records: u64, cpu_ns: u64, hz: u32, timer: &str) -> Option<EffectiveRate> {
        if cpu_ns == 0 {
            return None;
        }
        let cpu_s = cpu_ns as f64 / 1e9;
        let expected = cpu_s * f64::from(hz);
        let shortfall = expected - records as f64;
        let clearly_short = shortfall > 0.1 * expected && shortfall > SHORTFALL_SIGMAS * expected.sqrt();
        Some(EffectiveRate { hz: records as f64 / cpu_s, tick_limited: clearly_short && TICK_LIMITED_TIMERS.contains(&timer) })
    }
}

impl TraceSummary {
    /// The summary of every generation of `loaded`.
    pub fn of(loaded: &LoadedTrace) -> TraceSummary {
        let mut summary = TraceSummary::default();
        for generation in &loaded.trace.generations {
            summary.add_generation(generation);
        }
        summary.finish(&loaded.header);
        summary
    }

    /// Adds one generation (generations come in file order).
    pub fn add_generation(&mut self, generation: &format::Generation) {
        self.generations += 1;
        let local: Vec<usize> = generation
            .threads
            .iter()
            .map(|thread| {
                let index = *self.thread_index.entry(thread.tid).or_insert_with(|| {
                    self.threads.push(ThreadTotals { tid: thread.tid, ..ThreadTotals::default() });
                    self.threads.len() - 1
                });
                let totals = &mut self.threads[index];
                if !thread.name.is_empty() {
                    totals.name.clone_from(&thread.name);
                }
                totals.cpu_ns = totals.cpu_ns.max(thread.cpu_ns);
                totals.dropped = totals.dropped.saturating_add(thread.dropped);
                self.dropped = self.dropped.saturating_add(thread.dropped);
                index
            })
            .collect();
        for sample in &generation.samples {
            let state = sample.state.state as usize;
            self.samples += 1;
            self.weight = self.weight.saturating_add(sample.weight.into());
            self.state_samples[state] += 1;
            self.state_weights[state] = self.state_weights[state].saturating_add(sample.weight.into());
            if let Some(&index) = local.get(sample.thread as usize) {
                let thread = &mut self.threads[index];
                thread.samples += 1;
                thread.weight = thread.weight.saturating_add(sample.weight.into());
                thread.state_weights[state] = thread.state_weights[state].saturating_add(sample.weight.into());
            }
        }
        // The CPU time before a rotated file is where its CPU counts from, not a count to add up;
        // the drain thread's CPU time is a running total: its last value is the trace's.
        for (name, value) in generation.counters.iter().filter(|(name, _)| name != counters::SERIES_CPU_NS_BEFORE) {
            let total = self.counters.entry(name.clone()).or_insert(0);
            *total = if name == counters::DRAIN_CPU_NS_TOTAL { (*total).max(*value) } else { total.saturating_add(*value) };
        }
        for event in &generation.events {
            self.events[usize::from(event.kind.code())] += 1;
        }
        if self.cpu_ns_before.is_none() {
            self.cpu_ns_before = generation.process_cpu_ns_before();
        }
        // The CPU time the trace's generations stand for: not the process's before the trace
        // began (earlier images of an exec'd process; a series' deleted first files).
        self.cpu_ns = generation.process_cpu_ns.saturating_sub(self.cpu_ns_before.unwrap_or(0));
        self.end_time = generation.end_time;
    }

    /// The end of the last generation added, header clock ticks.
    pub fn end_time(&self) -> u64 {
        self.end_time
    }

    /// Sets the CPU time to that of a time window: the process's `process_cpu_ns`, each
    /// thread's from `thread_cpu_ns` (by tid). Before `finish`.
    pub fn set_cpu_in_window(&mut self, process_cpu_ns: u64, thread_cpu_ns: &std::collections::HashMap<u32, u64>) {
        self.cpu_ns = process_cpu_ns;
        for thread in &mut self.threads {
            thread.cpu_ns = thread_cpu_ns.get(&thread.tid).copied().unwrap_or(0);
        }
    }

    /// Completes the totals once every generation was added.
    pub fn finish(&mut self, header: &format::Header) {
        self.dropped = self.dropped.saturating_add(self.counters.get(counters::DROPPED_NO_SLOT).copied().unwrap_or(0));
        if self.generations > 0 {
            self.duration_ns = ticks_to_ns(header, self.end_time).saturating_sub(header.start_clock_ns);
        }
        self.wall = is_wall_header(header);
        self.period_ns = period_ns(header.hz);
        let expected = self.cpu_ns as f64 * f64::from(header.hz) / 1e9;
        let cpu_weight = self.cpu_weight();
        self.capture_ratio = (expected > 0.0).then(|| cpu_weight as f64 / expected);
        // Per thread: records over the CPU time of the threads they were taken on (the process
        // figure when no thread carries one).
        let thread_cpu_ns = self.threads.iter().map(|thread| thread.cpu_ns).fold(0u64, u64::saturating_add);
        let rate_cpu_ns = if thread_cpu_ns > 0 { thread_cpu_ns } else { self.cpu_ns };
        let cpu_records = if self.wall { self.state_samples[ThreadState::Running as usize] } else { self.samples };
        self.effective_rate = EffectiveRate::of(cpu_records, rate_cpu_ns, header.hz, &header.timer);
    }

    /// The weight that measures CPU time: every sample's in a `cpu` trace, the running
    /// samples' in a `wall` trace.
    pub fn cpu_weight(&self) -> u64 {
        if self.wall {
            self.state_weights[ThreadState::Running as usize]
        } else {
            self.weight
        }
    }

    /// The wall time a `wall` trace's samples stand for in each state, ns (indexed by `ThreadState as usize`).
    pub fn state_ns(&self) -> [u64; 3] {
        self.state_weights.map(|weight| weight.saturating_mul(self.period_ns))
    }

    /// The wall time of a `wall` trace by state: `7.512 s: running 1.502 s (20.0%), …`.
    pub fn wall_time_by_state(&self) -> String {
        time_by_state(self.state_ns())
    }

    /// How many events of each kind the trace holds, in a fixed order, with their names.
    pub fn event_counts(&self) -> Vec<(&'static str, usize)> {
        format::EventKind::ALL.iter().zip(self.events).filter_map(|(&kind, count)| event_kind_name(kind).map(|name| (name, count))).collect()
    }

    /// Sum of the `unwind.end.*` counters: how many stack walks ended, for whatever reason.
    pub fn unwind_ends_total(&self) -> u64 {
        self.counters.iter().filter(|(name, _)| name.starts_with(walk::END_COUNTER_PREFIX)).map(|(_, v)| *v).fold(0u64, |a, v| a.saturating_add(v))
    }

    /// The one-line summary `record` prints per file (a `wall` trace's with its wall time by state).
    pub fn one_line(&self) -> String {
        let line = format!(
            "{} samples (weight {}) over {}, {} threads, {} dropped, {} of CPU time × Hz",
            self.samples,
            self.weight,
            seconds_with_decimals(self.duration_ns, 2),
            self.threads.len(),
            self.dropped,
            percent(self.capture_ratio)
        );
        if self.wall {
            format!("{line}; wall time {}", self.wall_time_by_state())
        } else {
            line
        }
    }
}

/// The name `info` counts events of `kind` under; `None` for kinds it does not count (a
/// region's end: regions are counted once, by their begin).
fn event_kind_name(kind: format::EventKind) -> Option<&'static str> {
    use format::EventKind;
    match kind {
        EventKind::ThreadStart => Some("thread starts"),
        EventKind::ThreadExit => Some("thread exits"),
        EventKind::Log => Some("log messages"),
        EventKind::RegionBegin => Some("regions"),
        EventKind::RegionEnd => None,
        EventKind::Paused => Some("pauses"),
        EventKind::Resumed => None,
    }
}

#[cfg(test)]
mod tests {
    use super::EffectiveRate;

    #[test]
    fn a_tick_limited_rate_is_called_so_only_when_clearly_short() {
        // 1 s of CPU asked at 999 Hz, 250 records: a POSIX timer on a 250 Hz tick.
        let rate = EffectiveRate::of(250, 1_000_000_000, 999, "posix").unwrap();
        assert!((rate.hz - 250.0).abs() < 1e-9 && rate.tick_limited);
        assert!(EffectiveRate::of(250, 1_000_000_000, 999, "itimer").unwrap().tick_limited);
        // The perf timer is never tick-limited, whatever its records say.
        assert!(!EffectiveRate::of(250, 1_000_000_000, 999, "perf").unwrap().tick_limited);
        // Within 10%, or within the noise of a few expected records: not clearly short.
        assert!(!EffectiveRate::of(950, 1_000_000_000, 999, "posix").unwrap().tick_limited);
        assert!(!EffectiveRate::of(2, 4_000_000, 999, "posix").unwrap().tick_limited);
        // Below the tick rate, the timer keeps up.
        assert!(!EffectiveRate::of(100, 1_000_000_000, 100, "posix").unwrap().tick_limited);
        assert_eq!(EffectiveRate::of(10, 0, 999, "posix"), None);
    }
}
