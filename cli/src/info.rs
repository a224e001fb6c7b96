//! `sigtrace info`: what a trace file holds and how complete it is (samples, drops, capture
//! ratio, stacks unwound to the root); for a `wall` trace, also each thread's wall time by state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::profile::{is_wall_header, open_trace, period_ns, ticks_to_ns, LoadError, LoadedTrace};
use crate::symbols::Symbolizer;
use crate::unwind_stats::UnwindStats;
use format::{counters, walk, ThreadState};

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
    /// tid → index into `threads`.
    thread_index: BTreeMap<u32, usize>,
    /// The end of the last generation added, header clock ticks.
    end_time: u64,
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
        for (name, value) in &generation.counters {
            let total = self.counters.entry(name.clone()).or_insert(0);
            *total = total.saturating_add(*value);
        }
        for event in &generation.events {
            self.events[usize::from(event.kind.code())] += 1;
        }
        self.cpu_ns = generation.process_cpu_ns;
        self.end_time = generation.end_time;
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
            "{} samples (weight {}) over {:.2} s, {} threads, {} dropped, {} of CPU time × Hz",
            self.samples,
            self.weight,
            self.duration_ns as f64 / 1e9,
            self.threads.len(),
            self.dropped,
            percent(self.capture_ratio)
        );
        if self.wall {
            format!("{line}; wall time {}", state_split(self.state_ns()))
        } else {
            line
        }
    }
}

/// `98.7%`, or `n/a` when there was no CPU time to compare with.
pub fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(ratio) => format!("{:.1}%", ratio * 100.0),
        None => "n/a".into(),
    }
}

fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// `7.512 s: running 1.502 s (20.0%), runnable 0.010 s (0.1%), blocked 6.000 s (79.9%)`.
fn state_split(state_ns: [u64; 3]) -> String {
    let all = state_ns.iter().fold(0u64, |sum, &ns| sum.saturating_add(ns));
    let parts: Vec<String> = ThreadState::ALL
        .iter()
        .map(|&state| format!("{} {} ({:.1}%)", state.name(), seconds(state_ns[state as usize]), share(state_ns[state as usize], all)))
        .collect();
    format!("{}: {}", seconds(all), parts.join(", "))
}

/// `part` in percent of `whole` (0 when `whole` is).
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Quotes an argument for display when the shell would need it.
pub(crate) fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The human-readable description of one file.
pub fn render_text(loaded: &LoadedTrace, summary: &TraceSummary, unwinding: &UnwindStats) -> String {
    let header = &loaded.header;
    let trace = &loaded.trace;
    let mut rows: Vec<(String, String)> = vec![
        ("file".into(), loaded.path.display().to_string()),
        ("pid".into(), format!("{} (parent {})", header.pid, header.parent_pid)),
        ("executable".into(), header.executable.clone()),
        ("command line".into(), header.args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")),
        ("duration".into(), seconds(summary.duration_ns)),
        ("generations".into(), format!("{} complete", summary.generations)),
        ("threads".into(), summary.threads.len().to_string()),
        ("samples".into(), summary.samples.to_string()),
        ("weight".into(), summary.weight.to_string()),
        ("dropped".into(), summary.dropped.to_string()),
    ];
    let truncated = match &trace.stopped_because {
        Some(why) => format!("{} bytes ({why})", trace.ignored_bytes),
        None => format!("{} bytes", trace.ignored_bytes),
    };
    rows.push(("truncated".into(), truncated));
    rows.push(("ended".into(), end_description(&loaded.trace)));
    rows.push(("events".into(), summary.event_counts().iter().map(|(kind, n)| format!("{n} {kind}")).collect::<Vec<_>>().join(", ")));
    rows.push(("sampling".into(), format!("{} Hz, timer {}, mode {}", header.hz, or_unknown(&header.timer), or_unknown(&header.mode))));
    rows.push(("cpu time".into(), seconds(summary.cpu_ns)));
    if summary.wall {
        rows.push(("wall time".into(), state_split(summary.state_ns())));
        rows.push(("capture ratio".into(), format!("{} (running weight / CPU time × Hz)", percent(summary.capture_ratio))));
    } else {
        rows.push(("capture ratio".into(), format!("{} (weight / CPU time × Hz)", percent(summary.capture_ratio))));
    }
    if let Some(rate) = summary.effective_rate.filter(|rate| rate.tick_limited) {
        rows.push(("effective rate".into(), format!("{:.0} Hz (tick-limited)", rate.hz)));
    }
    rows.extend(unwinding.text_rows(header.max_depth));
    for (name, value) in &summary.counters {
        rows.push((name.clone(), value.to_string()));
    }
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (key, value) in &rows {
        let _ = writeln!(out, "{:width$} {value}", format!("{key}:"));
    }
    if !summary.threads.is_empty() {
        let _ = writeln!(out, "per thread:");
        let _ = writeln!(out, "  {:>8}  {:<16} {:>9} {:>9} {:>11} {:>8}", "tid", "name", "samples", "weight", "cpu", "dropped");
        for thread in &summary.threads {
            let _ = writeln!(
                out,
                "  {:>8}  {:<16} {:>9} {:>9} {:>11} {:>8}",
                thread.tid,
                thread.name,
                thread.samples,
                thread.weight,
                seconds(thread.cpu_ns),
                thread.dropped
            );
        }
        if summary.wall {
            let _ = writeln!(out, "wall time by state:");
            let _ = writeln!(out, "  {:>8}  {:<16} {:>9}  {:>16}  {:>16}  {:>16}", "tid", "name", "wall", "running", "runnable", "blocked");
            for thread in &summary.threads {
                let state_ns = thread.state_weights.map(|weight| weight.saturating_mul(summary.period_ns));
                let wall_ns = state_ns.iter().fold(0u64, |sum, &ns| sum.saturating_add(ns));
                let part = |ns: u64| format!("{} {:>5.1}%", seconds(ns), share(ns, wall_ns));
                let _ = writeln!(
                    out,
                    "  {:>8}  {:<16} {:>9}  {:>16}  {:>16}  {:>16}",
                    thread.tid,
                    thread.name,
                    seconds(wall_ns),
                    part(state_ns[0]),
                    part(state_ns[1]),
                    part(state_ns[2])
                );
            }
        }
    }
    out
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
    }
}

/// How the traced image ended, from its end record; a trace without one was cut short.
fn end_description(trace: &format::Trace) -> String {
    trace.end.map_or_else(|| "unknown (killed, or cut short)".to_string(), |end| end.describe())
}

/// For each pid traced in several files (one per exec'd image), the images in start order.
fn exec_chains(traces: &[(u64, u32, String, String)]) -> Vec<String> {
    let mut by_pid: std::collections::BTreeMap<u32, Vec<&(u64, u32, String, String)>> = std::collections::BTreeMap::new();
    for entry in traces {
        by_pid.entry(entry.1).or_default().push(entry);
    }
    by_pid
        .into_iter()
        .filter(|(_, images)| images.len() > 1)
        .map(|(pid, mut images)| {
            images.sort_by_key(|image| image.0);
            let chain: Vec<String> = images.iter().map(|image| format!("{} ({})", image.2, image.3)).collect();
            format!("exec chain of pid {pid}: {}", chain.join(" → "))
        })
        .collect()
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() {
        "?"
    } else {
        text
    }
}

/// The JSON description of one file.
pub fn render_json(loaded: &LoadedTrace, summary: &TraceSummary, unwinding: &UnwindStats) -> Value {
    let header = &loaded.header;
    let per_thread: Vec<Value> = summary
        .threads
        .iter()
        .map(|t| {
            let mut thread = json!({ "tid": t.tid, "name": t.name, "samples": t.samples, "weight": t.weight, "cpu_ns": t.cpu_ns, "dropped": t.dropped });
            if summary.wall {
                add_state_fields(&mut thread, t.state_weights.map(|weight| weight.saturating_mul(summary.period_ns)));
            }
            thread
        })
        .collect();
    let mut object = json!({
        "file": loaded.path.display().to_string(),
        "pid": header.pid,
        "parent_pid": header.parent_pid,
        "executable": header.executable,
        "args": header.args,
        "clock": header.clock,
        "start_unix_ns": header.start_unix_ns,
        "duration_ns": summary.duration_ns,
        "generations": summary.generations,
        "threads": summary.threads.len(),
        "samples": summary.samples,
        "weight": summary.weight,
        // The CPU time the samples stand for (weight × period, of the running samples in a
        // wall trace), as every export counts it.
        "period_ns": period_ns(header.hz),
        "sampled_cpu_ns": summary.cpu_weight().saturating_mul(period_ns(header.hz)),
        "dropped": summary.dropped,
        "truncated_bytes": loaded.trace.ignored_bytes,
        "stopped_because": loaded.trace.stopped_because.as_ref().map(ToString::to_string),
        "end": end_description(&loaded.trace),
        "events": summary.event_counts().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "end_signal": loaded.trace.end.map(|end| end.signal),
        "hz": header.hz,
        "timer": header.timer,
        "mode": header.mode,
        "max_depth": header.max_depth,
        "cpu_ns": summary.cpu_ns,
        "capture_ratio": summary.capture_ratio,
        "effective_hz": summary.effective_rate.map(|rate| rate.hz),
        "tick_limited": summary.effective_rate.is_some_and(|rate| rate.tick_limited),
        "unwind_ends_total": summary.unwind_ends_total(),
        "counters": summary.counters,
        "per_thread": per_thread,
    });
    if summary.wall {
        add_state_fields(&mut object, summary.state_ns());
    }
    if let Value::Object(fields) = &mut object {
        fields.extend(unwinding.json_fields());
    }
    object
}

/// `wall_ns` and `running_ns`, `runnable_ns`, `blocked_ns` (a `wall` trace's time by state) into `object`.
fn add_state_fields(object: &mut Value, state_ns: [u64; 3]) {
    if let Value::Object(fields) = object {
        fields.insert("wall_ns".into(), json!(state_ns.iter().fold(0u64, |sum, &ns| sum.saturating_add(ns))));
        for state in ThreadState::ALL {
            fields.insert(format!("{}_ns", state.name()), json!(state_ns[state as usize]));
        }
    }
}

/// Reads the file at `path` generation by generation (one in memory at a time) into its
/// summary and unwinding statistics. The `LoadedTrace` returned has the header, how the trace
/// ended and why reading stopped, but no generations.
pub fn summarize_file(path: &Path, symbolizer: &mut Symbolizer) -> Result<(LoadedTrace, TraceSummary, UnwindStats), LoadError> {
    let mut progress = crate::progress::ByteProgress::new(std::fs::metadata(path).map_or(0, |m| m.len()));
    let (mut summary, mut unwinding) = (TraceSummary::default(), UnwindStats::default());
    let mut trace = open_trace(path)?.read_with(|_, generation, offset| {
        summary.add_generation(&generation);
        unwinding.add_generation(&generation, symbolizer);
        progress.set(offset as u64);
    });
    let Some(header) = trace.header.take() else {
        return Err(LoadError::NoHeader { path: path.to_path_buf(), why: trace.stopped_because });
    };
    summary.finish(&header);
    Ok((LoadedTrace { path: path.to_path_buf(), header, trace }, summary, unwinding))
}

/// Runs `sigtrace info`; returns the exit code.
pub fn run(files: &[PathBuf], as_json: bool) -> i32 {
    let mut exit_code = 0;
    let mut text = String::new();
    let mut objects = Vec::new();
    let mut symbolizer = Symbolizer::new();
    let mut images = Vec::new();
    for path in files {
        let (loaded, summary, unwinding) = match summarize_file(path, &mut symbolizer) {
            Ok(summarized) => summarized,
            Err(message) => {
                crate::warn!("{message}");
                exit_code = 1;
                continue;
            }
        };
        images.push((loaded.header.start_clock_ns, loaded.header.pid, loaded.header.executable.clone(), end_description(&loaded.trace)));
        if as_json {
            objects.push(render_json(&loaded, &summary, &unwinding));
        } else {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&render_text(&loaded, &summary, &unwinding));
        }
    }
    let bytes = if as_json {
        let value = if files.len() == 1 { objects.pop().unwrap_or(Value::Null) } else { Value::Array(objects) };
        if value.is_null() {
            return exit_code;
        }
        let mut rendered = serde_json::to_string_pretty(&value).unwrap_or_default();
        rendered.push('\n');
        rendered.into_bytes()
    } else {
        for chain in exec_chains(&images) {
            text.push('\n');
            text.push_str(&chain);
            text.push('\n');
        }
        text.into_bytes()
    };
    if let Err(message) = crate::output::write_result(None, &bytes) {
        crate::warn!("{message}");
        return 1;
    }
    exit_code
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
