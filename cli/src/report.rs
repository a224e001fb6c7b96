//! `sigtrace report`: the functions (or, with `--lines`, source lines) with the most samples, as a text table.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use writer::NO_NODE;

use crate::profile::{load_profile, Profile, ProfileOptions};
use crate::symbols::Symbolizer;

/// Self and total weight of one row: a function, or with `--lines` a function at one source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    /// Index into `Profile::frames` of a frame of the row (the first seen): its function and
    /// module, with `--lines` also its file and line.
    pub frame: u32,
    /// Weight of samples where the row's frame was the leaf.
    pub self_weight: u64,
    /// Weight of samples where the row's frame was anywhere on the stack (once per sample).
    pub total_weight: u64,
}

/// The row each frame of `profile` falls into: one per (function, module), or with `by_line`
/// one per (function, module, file, line). Returns (row of each frame, first frame of each row).
fn row_keys(profile: &Profile, by_line: bool) -> (Vec<u32>, Vec<u32>) {
    let mut ids: HashMap<(&str, &str, &str, u32), u32> = HashMap::new();
    let mut representatives = Vec::new();
    let rows = profile
        .frames
        .iter()
        .enumerate()
        .map(|(index, frame)| {
            let key = if by_line {
                (frame.function.as_str(), frame.module.as_str(), frame.file.as_str(), frame.line)
            } else {
                (frame.function.as_str(), frame.module.as_str(), "", 0)
            };
            *ids.entry(key).or_insert_with(|| {
                representatives.push(index as u32);
                (representatives.len() - 1) as u32
            })
        })
        .collect();
    (rows, representatives)
}

/// Every function (with `by_line`: every function and source line) with its self and total
/// weight, most self weight first (ties: total, then name).
pub fn function_rows(profile: &Profile, by_line: bool) -> Vec<FunctionRow> {
    let (row_of_frame, representatives) = row_keys(profile, by_line);
    let mut rows: Vec<FunctionRow> = representatives.into_iter().map(|frame| FunctionRow { frame, self_weight: 0, total_weight: 0 }).collect();
    // Weigh each distinct stack once, then each node of the stack tree once: millions of
    // samples share a few thousand stacks, and stacks share their outer frames (walking every
    // stack's frames would take the square of a deep tree's size).
    let nodes = profile.stacks.nodes();
    let mut subtree_weights = vec![0u64; nodes.len()];
    for total in &profile.totals {
        if let Some(leaf) = profile.stacks.leaf(total.stack as usize).filter(|&leaf| leaf != NO_NODE) {
            subtree_weights[leaf as usize] += total.weight;
            rows[row_of_frame[nodes[leaf as usize].frame as usize] as usize].self_weight += total.weight;
        }
    }
    // Children follow their parents: one backward pass sums each subtree into its root.
    for index in (0..nodes.len()).rev() {
        let parent = nodes[index].parent;
        if parent != NO_NODE {
            subtree_weights[parent as usize] += subtree_weights[index];
        }
    }
    // A row's total is the weight under its outermost nodes: those with no ancestor in the same
    // row (a recursive function counts once per sample). Depth first, counting each row's
    // nodes on the current path.
    let mut children: Vec<Vec<u32>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        match children.get_mut(node.parent as usize) {
            Some(siblings) => siblings.push(index as u32),
            None => roots.push(index as u32),
        }
    }
    let mut on_path = vec![0u32; rows.len()];
    // (node, entering): a node is pushed to be entered, then again to be left.
    let mut pending: Vec<(u32, bool)> = roots.into_iter().rev().map(|root| (root, true)).collect();
    while let Some((node, entering)) = pending.pop() {
        let row = row_of_frame[nodes[node as usize].frame as usize] as usize;
        if !entering {
            on_path[row] -= 1;
            continue;
        }
        if on_path[row] == 0 {
            rows[row].total_weight += subtree_weights[node as usize];
        }
        on_path[row] += 1;
        pending.push((node, false));
        pending.extend(children[node as usize].iter().rev().map(|&child| (child, true)));
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
    for total in &profile.totals {
        if let Some(weight) = weights.get_mut(total.thread as usize) {
            *weight += total.weight;
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

/// Renders the report text; `by_line` gives a row per function and source line, with a
/// `file:line` column.
pub fn render(profile: &Profile, top: usize, with_threads: bool, by_line: bool) -> String {
    let total = profile.total_weight();
    let mut out = String::new();
    let _ = writeln!(out, "{} samples, weight {} ({} threads)", profile.total_samples(), total, profile.threads.len());
    let _ = writeln!(out);
    let location_header = if by_line { format!("{:<24} ", "file:line") } else { String::new() };
    let _ = writeln!(out, "{:>10} {:>7} {:>10} {:>7}  {:<40} {location_header}module", "self", "self%", "total", "total%", "function");
    for row in function_rows(profile, by_line).into_iter().take(top) {
        let frame = &profile.frames[row.frame as usize];
        let location = if by_line { format!("{:<24} ", frame.location().unwrap_or_else(|| "?".into())) } else { String::new() };
        let _ = writeln!(
            out,
            "{:>10} {:>6.2}% {:>10} {:>6.2}%  {:<40} {location}{}",
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
pub fn run(files: &[PathBuf], top: usize, with_threads: bool, by_line: bool, region: Option<&str>) -> i32 {
    let (profile, all_loaded) = load_profile(files, &mut Symbolizer::new(), &ProfileOptions { region, keep_samples: false });
    if profile.processes.is_empty() {
        return 1;
    }
    if let Some(region) = region {
        let names = profile.region_names();
        if !names.iter().any(|name| name == region) {
            crate::warn!("{}", crate::events::missing_region_message(region, &names));
            return 1;
        }
    }
    if let Err(message) = crate::output::write_result(None, render(&profile, top, with_threads, by_line).as_bytes()) {
        crate::warn!("{message}");
        return 1;
    }
    i32::from(!all_loaded)
}
