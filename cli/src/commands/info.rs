//! `sigtrace info`: what a trace file holds and how complete it is (samples, drops, capture
//! ratio, stacks unwound to the root); for a `wall` trace, also each thread's wall time by state.

mod frame_kinds;
mod sources;
mod trace_summary;
mod unwind_stats;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use format::ThreadState;
use serde_json::{json, Value};

use crate::format_numbers::{percent, percent_of, seconds};
use crate::profile::{open_trace, LoadError, LoadedTrace};
use crate::shell_quote::shell_quote;
use crate::symbolize::Symbolizer;
use crate::time_window::{unix_ns_of, TimeWindow, WindowArgs};
use config::period_ns;

pub use trace_summary::{EffectiveRate, ThreadTotals, TraceSummary, WindowKept};
pub use unwind_stats::{Tally, UnwindStats};

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
    if let Some(kept) = &summary.window {
        rows.push(("window".into(), kept.window.describe()));
        rows.push((
            "kept".into(),
            format!(
                "{} of {} samples (weight {} of {}); drops and counters of the {} generations it overlaps, CPU time interpolated in them",
                summary.samples, kept.samples_in_file, summary.weight, kept.weight_in_file, summary.generations
            ),
        ));
    }
    rows.push(("truncated".into(), truncated));
    rows.push(("ended".into(), end_description(&loaded.trace)));
    rows.push(("events".into(), summary.event_counts().iter().map(|(kind, n)| format!("{n} {kind}")).collect::<Vec<_>>().join(", ")));
    rows.push(("sampling".into(), format!("{} Hz, timer {}, mode {}", header.hz, or_unknown(&header.timer), or_unknown(&header.mode))));
    rows.push(("cpu time".into(), seconds(summary.cpu_ns)));
    if summary.wall {
        rows.push(("wall time".into(), summary.wall_time_by_state()));
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
                let part = |ns: u64| format!("{} {:>5.1}%", seconds(ns), percent_of(ns, wall_ns));
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
    out.push_str(&sources::text(&trace.sources, &summary.threads));
    out
}

/// How the traced image ended, from its end record. Without one, the image ended without an
/// exit path sigtrace could run when the file ends on a complete chunk, else it was cut short.
fn end_description(trace: &format::Trace) -> String {
    match trace.end {
        Some(end) => end.describe(),
        None if trace.ended_without_exit_path => "without exit path (a raw exit_group such as Go's, SIGKILL, the OOM killer)".to_string(),
        None => "unknown (killed, or cut short)".to_string(),
    }
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
    if let (Some(kept), Value::Object(fields)) = (&summary.window, &mut object) {
        let to = (kept.window.to_unix_ns != u64::MAX).then_some(kept.window.to_unix_ns);
        fields.insert(
            "window".into(),
            json!({
                "from_unix_ns": kept.window.from_unix_ns,
                "to_unix_ns": to,
                "origin_unix_ns": kept.window.origin_unix_ns,
                "samples_in_file": kept.samples_in_file,
                "weight_in_file": kept.weight_in_file,
            }),
        );
    }
    if let Value::Object(fields) = &mut object {
        fields.extend(unwinding.json_fields());
        fields.extend(sources::json_fields(&loaded.trace.sources));
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
///
/// With a `window`, only its samples and events count, and only the generations it overlaps;
/// CPU time is the part of the window's, interpolated linearly within the generations at its
/// edges (a generation holds its CPU time at its end only); the summary's `window` says what was kept.
pub fn summarize_file(path: &Path, symbolizer: &mut Symbolizer, window: Option<TimeWindow>) -> Result<(LoadedTrace, TraceSummary, UnwindStats), LoadError> {
    summarize_series(&[path.to_path_buf()], symbolizer, window)
}

/// [`summarize_file`] of the files of one rotated series (`series`), read as one trace: the
/// header of the first, the end of the last. When the series' first generations were deleted
/// (`SIGTRACE_KEEP`), the duration runs from the first generation kept.
pub fn summarize_series(
    paths: &[PathBuf],
    symbolizer: &mut Symbolizer,
    window: Option<TimeWindow>,
) -> Result<(LoadedTrace, TraceSummary, UnwindStats), LoadError> {
    let mut progress = crate::progress::ByteProgress::new(paths.iter().map(|path| std::fs::metadata(path).map_or(0, |m| m.len())).sum());
    let (mut summary, mut unwinding) = (TraceSummary::default(), UnwindStats::default());
    let mut cut = WindowCut::default();
    let (mut kept_header, mut last_trace, mut done_before) = (None, None, 0u64);
    // The first generation read: its sequence and start.
    let mut first_generation: Option<(u64, u64)> = None;
    for path in paths {
        let mut trace = open_trace(path)?.read_with(|header, mut generation, offset| {
            progress.set(done_before + offset as u64);
            first_generation.get_or_insert((generation.sequence, generation.start_time));
            if let (Some(window), Some(header)) = (window, header) {
                if !cut.cut(&window, header, &mut generation) {
                    return;
                }
            }
            summary.add_generation(&generation);
            unwinding.add_generation(&generation, symbolizer);
        });
        done_before += std::fs::metadata(path).map_or(0, |m| m.len());
        let header = trace.header.take();
        if kept_header.is_none() {
            let Some(header) = header else {
                return Err(LoadError::NoHeader { path: path.to_path_buf(), why: trace.stopped_because });
            };
            kept_header = Some(header);
        }
        last_trace = Some(trace);
    }
    let (Some(header), Some(trace)) = (kept_header, last_trace) else {
        return Err(LoadError::NoHeader { path: paths.first().cloned().unwrap_or_default(), why: None });
    };
    let path = paths[0].as_path();
    if let Some(window) = window {
        summary.set_cpu_in_window(cut.process.in_window(), &cut.threads.iter().map(|(&tid, clock)| (tid, clock.in_window())).collect());
        summary.finish(&header);
        let start = header.start_unix_ns;
        let end = unix_ns_of(&header, summary.end_time());
        let kept_ns = end.min(window.to_unix_ns).saturating_sub(start.max(window.from_unix_ns));
        summary.duration_ns = if summary.generations > 0 { kept_ns } else { 0 };
        summary.window = Some(WindowKept { window, samples_in_file: cut.samples_in_file, weight_in_file: cut.weight_in_file });
    } else {
        summary.finish(&header);
    }
    if let Some((_, start_time)) = first_generation.filter(|&(sequence, _)| sequence > 1 && window.is_none()) {
        // A series whose first files were deleted: its time starts at its first generation kept.
        summary.duration_ns = crate::profile::ticks_to_ns(&header, summary.end_time()).saturating_sub(crate::profile::ticks_to_ns(&header, start_time));
    }
    Ok((LoadedTrace { path: path.to_path_buf(), header, trace }, summary, unwinding))
}

/// What `summarize_file` counts while it cuts generations to a window.
#[derive(Default)]
struct WindowCut {
    /// Samples and weight of the whole file.
    samples_in_file: u64,
    weight_in_file: u64,
    /// The process's CPU clock, and each thread's (by tid).
    process: CpuClock,
    threads: std::collections::HashMap<u32, CpuClock>,
}

impl WindowCut {
    /// Cuts `generation` to `window`; false when it lies wholly outside (it is then not counted).
    fn cut(&mut self, window: &TimeWindow, header: &format::Header, generation: &mut format::Generation) -> bool {
        self.samples_in_file += generation.samples.len() as u64;
        self.weight_in_file = generation.samples.iter().fold(self.weight_in_file, |sum, s| sum.saturating_add(s.weight.into()));
        let (start, end) = (unix_ns_of(header, generation.start_time), unix_ns_of(header, generation.end_time));
        self.process.add(window, start, end, generation.process_cpu_ns);
        for thread in &generation.threads {
            self.threads.entry(thread.tid).or_default().add(window, start, end, thread.cpu_ns);
        }
        window.cut(header, generation)
    }
}

/// A CPU clock known at generation ends, read at a window's edges by linear interpolation.
#[derive(Default)]
struct CpuClock {
    /// The last point known: (Unix ns, CPU ns); `None` before the first generation.
    last: Option<(u64, u64)>,
    at_from: Option<u64>,
    at_to: Option<u64>,
}

impl CpuClock {
    /// A generation `[start, end]` (Unix ns) at whose end the clock read `cpu_ns`.
    fn add(&mut self, window: &TimeWindow, start: u64, end: u64, cpu_ns: u64) {
        // Before the first generation the clock is taken to read 0 at its start (tracing began,
        // or the thread appeared, during it).
        let (t0, c0) = self.last.unwrap_or((start, 0));
        let cpu_ns = cpu_ns.max(c0);
        let at = |t: u64| -> u64 {
            if t <= t0 || end <= t0 {
                return c0;
            }
            let part = u128::from(t.min(end) - t0) * u128::from(cpu_ns - c0) / u128::from(end - t0);
            c0 + part as u64
        };
        if self.at_from.is_none() && window.from_unix_ns <= end {
            self.at_from = Some(at(window.from_unix_ns));
        }
        if self.at_to.is_none() && window.to_unix_ns <= end {
            self.at_to = Some(at(window.to_unix_ns));
        }
        self.last = Some((end, cpu_ns));
    }

    /// The CPU time spent in the window.
    fn in_window(&self) -> u64 {
        let last = self.last.map_or(0, |(_, cpu)| cpu);
        self.at_to.unwrap_or(last).saturating_sub(self.at_from.unwrap_or(last))
    }
}

/// Runs `sigtrace info`; returns the exit code.
/// What makes files one trace: the process image and its start, from the header (read from the
/// file's first 64 KiB).
fn header_key(path: &Path) -> Option<(u32, u64, u64)> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(1 << 16);
    std::fs::File::open(path).ok()?.take(1 << 16).read_to_end(&mut bytes).ok()?;
    format::read_trace(&bytes).header.map(|header| (header.pid, header.start_unix_ns, header.start_clock_ns))
}

pub fn run(files: &[PathBuf], as_json: bool, window: &WindowArgs) -> i32 {
    let window = match crate::time_window::resolve_or_warn(window, files) {
        Ok(window) => window,
        Err(code) => return code,
    };
    let mut exit_code = 0;
    let mut text = String::new();
    let mut objects = Vec::new();
    let mut symbolizer = Symbolizer::new();
    let mut images = Vec::new();
    let groups = crate::series::group(files, header_key);
    let single = groups.len() == 1;
    for group in groups {
        let (loaded, summary, unwinding) = match summarize_series(&group, &mut symbolizer, window) {
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
        let value = if single { objects.pop().unwrap_or(Value::Null) } else { Value::Array(objects) };
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
