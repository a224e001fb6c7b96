//! `sigtrace report`: the functions with the most samples, as a text table.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::profile::{load_traces, Profile};
use crate::symbols::Symbolizer;

/// Self and total weight of one symbolised frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    /// Index into `Profile::frames`.
    pub frame: u32,
    /// Weight of samples where the function was the leaf.
    pub self_weight: u64,
    /// Weight of samples where the function was anywhere on the stack (once per sample).
    pub total_weight: u64,
}

/// Every frame with its self and total weight, most self weight first (ties: total, then name).
pub fn function_rows(profile: &Profile) -> Vec<FunctionRow> {
    let mut rows: Vec<FunctionRow> =
        (0..profile.frames.len() as u32).map(|frame| FunctionRow { frame, self_weight: 0, total_weight: 0 }).collect();
    let mut seen = HashSet::new();
    for sample in &profile.samples {
        let Some(stack) = profile.stacks.get(sample.stack as usize) else { continue };
        if let Some(&leaf) = stack.first() {
            rows[leaf as usize].self_weight += sample.weight;
        }
        seen.clear();
        for &frame in stack {
            if seen.insert(frame) {
                rows[frame as usize].total_weight += sample.weight;
            }
        }
    }
    rows.retain(|row| row.total_weight > 0);
    rows.sort_by(|a, b| {
        b.self_weight
            .cmp(&a.self_weight)
            .then(b.total_weight.cmp(&a.total_weight))
            .then_with(|| profile.frames[a.frame as usize].cmp(&profile.frames[b.frame as usize]))
    });
    rows
}

/// Weight per thread, heaviest first: (index into `Profile::threads`, weight).
pub fn thread_weights(profile: &Profile) -> Vec<(usize, u64)> {
    let mut weights = vec![0u64; profile.threads.len()];
    for sample in &profile.samples {
        if let Some(weight) = weights.get_mut(sample.thread as usize) {
            *weight += sample.weight;
        }
    }
    let mut rows: Vec<(usize, u64)> = weights.into_iter().enumerate().filter(|&(_, w)| w > 0).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(profile.threads[a.0].tid.cmp(&profile.threads[b.0].tid)));
    rows
}

fn percent_of(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Renders the report text.
pub fn render(profile: &Profile, top: usize, with_threads: bool) -> String {
    let total = profile.total_weight();
    let mut out = String::new();
    let _ = writeln!(out, "{} samples, weight {} ({} threads)", profile.samples.len(), total, profile.threads.len());
    let _ = writeln!(out);
    let _ = writeln!(out, "{:>10} {:>7} {:>10} {:>7}  {:<40} module", "self", "self%", "total", "total%", "function");
    for row in function_rows(profile).into_iter().take(top) {
        let frame = &profile.frames[row.frame as usize];
        let _ = writeln!(
            out,
            "{:>10} {:>6.2}% {:>10} {:>6.2}%  {:<40} {}",
            row.self_weight,
            percent_of(row.self_weight, total),
            row.total_weight,
            percent_of(row.total_weight, total),
            frame.function,
            if frame.module.is_empty() { "?" } else { frame.module.as_str() }
        );
    }
    if with_threads {
        let several_processes = profile.threads.iter().map(|t| t.pid).collect::<HashSet<_>>().len() > 1;
        let pid_column = |pid: &str| if several_processes { format!("{pid:>8} ") } else { String::new() };
        let _ = writeln!(out);
        let _ = writeln!(out, "{}{:>8}  {:<20} {:>10} {:>7}", pid_column("pid"), "tid", "thread", "weight", "%");
        for (index, weight) in thread_weights(profile) {
            let thread = &profile.threads[index];
            let name = if thread.name.is_empty() { "?" } else { thread.name.as_str() };
            let pid = pid_column(&thread.pid.to_string());
            let _ = writeln!(out, "{pid}{:>8}  {name:<20} {weight:>10} {:>6.2}%", thread.tid, percent_of(weight, total));
        }
    }
    out
}

/// Runs `sigtrace report`; returns the exit code.
pub fn run(files: &[PathBuf], top: usize, with_threads: bool) -> i32 {
    let (traces, all_loaded) = load_traces(files);
    if traces.is_empty() {
        return 1;
    }
    let profile = Profile::build(&traces, &mut Symbolizer::new());
    if let Err(message) = crate::output::write_result(None, render(&profile, top, with_threads).as_bytes()) {
        crate::warn!("{message}");
        return 1;
    }
    i32::from(!all_loaded)
}
