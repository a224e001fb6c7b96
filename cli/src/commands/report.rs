//! `sigtrace report`: the functions (or, with `--lines`, source lines) with the most samples, as a text table;
//! with `--by-call`, the calls threads of a `wall` trace were blocked in.
//!
//! A report of `wall` traces weighs wall time: the stacks of threads that were not running end
//! in `[blocked: CALL]` or `[runnable]` (`profile::state_frame`), its header gives the wall time
//! by state, and its shares are of wall time.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use format::{call_name, ThreadState, NO_NODE};

use crate::commands::events::missing_region_message;
use crate::format_numbers::{milliseconds, percent_of, seconds, time_by_state};
use crate::profile::{is_state_frame, load_profile, state_frame, Profile, ProfileOptions};
use crate::symbolize::Symbolizer;

/// A thread state as `--state` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// On a CPU (the only state of a cpu trace's samples).
    Running,
    /// Ready to run, waiting for a CPU.
    Runnable,
    /// Waiting in a blocking call.
    Blocked,
}

impl From<StateFilter> for ThreadState {
    fn from(filter: StateFilter) -> ThreadState {
        match filter {
            StateFilter::Running => ThreadState::Running,
            StateFilter::Runnable => ThreadState::Runnable,
            StateFilter::Blocked => ThreadState::Blocked,
        }
    }
}

/// What `sigtrace report` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions<'a> {
    /// How many rows of the main table.
    pub top: usize,
    /// Also the weight of each thread.
    pub threads: bool,
    /// A row per function and source line.
    pub lines: bool,
    /// The blocking calls instead of the functions.
    pub by_call: bool,
    /// Only samples inside this region.
    pub region: Option<&'a str>,
    /// Only samples of this state.
    pub state: Option<ThreadState>,
    /// Raw native stacks: no Python frames in place of the interpreter's.
    pub no_python: bool,
    /// Only samples in this time window.
    pub window: Option<crate::time_window::TimeWindow>,
}

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

/// One blocking call of a `wall` profile: the blocked samples in it, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// The call's name (`format::call_name`).
    pub call: String,
    /// Wall time, ns.
    pub time_ns: u64,
    pub samples: u64,
    pub weight: u64,
    /// The function the call was made from in most of that time (the frame just under the
    /// `[blocked: CALL]` frame); `?` when the stacks have none.
    pub caller: String,
}

/// The blocked samples of `profile` by call, most wall time first (ties: by name).
pub fn call_rows(profile: &Profile) -> Vec<CallRow> {
    let nodes = profile.stacks.nodes();
    let function_of = |node: u32| nodes.get(node as usize).and_then(|n| profile.frames.get(n.frame as usize)).map(|frame| frame.function.as_str());
    // call code → (row, wall time per calling function)
    let mut calls: HashMap<u32, (CallRow, HashMap<&str, u64>)> = HashMap::new();
    for total in profile.totals.iter().filter(|total| total.state.state == ThreadState::Blocked) {
        let leaf = profile.stacks.leaf(total.stack as usize).unwrap_or(NO_NODE);
        // The leaf is the state's frame in a wall trace; the caller is the frame above it.
        let state_leaf = state_frame(total.state).is_some_and(|name| function_of(leaf) == Some(name.as_str()));
        let caller_node = if state_leaf { nodes[leaf as usize].parent } else { leaf };
        let caller = function_of(caller_node).unwrap_or("?");
        let (row, callers) = calls.entry(total.state.call).or_insert_with(|| {
            let row = CallRow { call: call_name(total.state.call), time_ns: 0, samples: 0, weight: 0, caller: String::new() };
            (row, HashMap::new())
        });
        row.time_ns = row.time_ns.saturating_add(total.time_ns);
        row.samples = row.samples.saturating_add(total.samples);
        row.weight = row.weight.saturating_add(total.weight);
        let time = callers.entry(caller).or_insert(0);
        *time = time.saturating_add(total.time_ns);
    }
    let mut rows: Vec<CallRow> = calls
        .into_values()
        .map(|(mut row, callers)| {
            // The most time, then the first name: the same answer on every run.
            let top = callers.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)));
            row.caller = top.map_or_else(|| "?".to_string(), |(name, _)| name.to_string());
            row
        })
        .collect();
    rows.sort_by(|a, b| b.time_ns.cmp(&a.time_ns).then_with(|| a.call.cmp(&b.call)));
    rows
}

/// The summary lines at the top of a report: samples and weight; for a profile with `wall`
/// traces, also the wall time by state, the state filter and what the columns count.
fn write_header(out: &mut String, profile: &Profile) {
    let _ = writeln!(out, "{} samples, weight {} ({} threads)", profile.total_samples(), profile.total_weight(), profile.threads.len());
    if profile.has_wall() {
        let all_ns = profile.by_state.iter().map(|state| state.time_ns).fold(0, u64::saturating_add);
        let _ = writeln!(out, "wall time {}", time_by_state(profile.by_state.map(|state| state.time_ns)));
        if let Some(state) = profile.state_filter {
            let shown = profile.total_time_ns();
            let _ = writeln!(out, "only {} samples: {} of wall time ({:.1}%)", state.name(), seconds(shown), percent_of(shown, all_ns));
        }
        let mut rates: Vec<u32> = profile.processes.iter().map(|p| p.hz).filter(|&hz| hz > 0).collect();
        rates.sort_unstable();
        rates.dedup();
        let period = match rates.as_slice() {
            [hz] => format!(" (1 period = {} at {hz} Hz)", milliseconds(1e3 / f64::from(*hz))),
            _ => String::new(),
        };
        let _ = writeln!(out, "unit: wall time; weights in sampling periods{period}; waiting stacks end in [blocked: CALL] or [runnable]");
    }
    let _ = writeln!(out);
}

/// The table of the threads' weights.
fn write_threads(out: &mut String, profile: &Profile) {
    let total = profile.total_weight();
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

/// Renders the `--by-call` report: the `top` calls threads were blocked in, with their wall
/// time, its share of all the wall time, their samples and the function that made the call
/// most; then the threads' weights when `with_threads`.
pub fn render_by_call(profile: &Profile, top: usize, with_threads: bool) -> String {
    let mut out = String::new();
    write_header(&mut out, profile);
    let all_ns = profile.by_state.iter().map(|state| state.time_ns).fold(0, u64::saturating_add);
    let rows = call_rows(profile);
    if rows.is_empty() {
        let _ = writeln!(out, "no blocked samples{}", if profile.has_wall() { "" } else { " (a cpu trace: record with --mode wall)" });
    } else {
        let _ = writeln!(out, "{:<28} {:>12} {:>7} {:>9}  called most from", "blocking call", "wall time", "share", "samples");
        for row in rows.into_iter().take(top) {
            let _ = writeln!(out, "{:<28} {:>12} {:>6.2}% {:>9}  {}", row.call, seconds(row.time_ns), percent_of(row.time_ns, all_ns), row.samples, row.caller);
        }
    }
    if with_threads {
        write_threads(&mut out, profile);
    }
    out
}

/// Renders the report text; `by_line` gives a row per function and source line, with a
/// `file:line` column.
pub fn render(profile: &Profile, top: usize, with_threads: bool, by_line: bool) -> String {
    let total = profile.total_weight();
    let mut out = String::new();
    write_header(&mut out, profile);
    let location_header = if by_line { format!("{:<24} ", "file:line") } else { String::new() };
    let _ = writeln!(out, "{:>10} {:>7} {:>10} {:>7}  {:<40} {location_header}module", "self", "self%", "total", "total%", "function");
    for row in function_rows(profile, by_line).into_iter().take(top) {
        let frame = &profile.frames[row.frame as usize];
        let location = if by_line { format!("{:<24} ", frame.location().unwrap_or_else(|| "?".into())) } else { String::new() };
        let line = format!(
            "{:>10} {:>6.2}% {:>10} {:>6.2}%  {:<40} {location}{}",
            row.self_weight,
            percent_of(row.self_weight, total),
            row.total_weight,
            percent_of(row.total_weight, total),
            frame.function,
            match frame.module.as_str() {
                "" if is_state_frame(&frame.function) => "",
                "" => "?",
                module => module,
            }
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if with_threads {
        write_threads(&mut out, profile);
    }
    out
}

/// Runs `sigtrace report`; returns the exit code.
pub fn run(files: &[PathBuf], options: &ReportOptions) -> i32 {
    let profile_options =
        ProfileOptions { region: options.region, state: options.state, keep_samples: false, no_python: options.no_python, window: options.window };
    let (profile, all_loaded) = load_profile(files, &mut Symbolizer::new(), &profile_options);
    if profile.processes.is_empty() {
        return 1;
    }
    if let Some(region) = options.region {
        let names = profile.region_names();
        if !names.iter().any(|name| name == region) {
            crate::warn!("{}", missing_region_message(region, &names));
            return 1;
        }
    }
    if (options.state.is_some() || options.by_call) && !profile.has_wall() {
        crate::warn!("no thread states in cpu traces: every sample is a running one (sigtrace record --mode wall records them)");
    }
    let text =
        if options.by_call { render_by_call(&profile, options.top, options.threads) } else { render(&profile, options.top, options.threads, options.lines) };
    if let Err(message) = crate::output::write_result(None, text.as_bytes()) {
        crate::warn!("{message}");
        return 1;
    }
    i32::from(!all_loaded)
}
