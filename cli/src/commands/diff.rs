//! `sigtrace diff BASE NEW`: the functions whose share of the samples grew or shrank most
//! between two profiles, as a table, and optionally a differential flame graph.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use inferno::differential;

use crate::commands::report::function_rows;
use crate::export::flamegraph::{base_options, command_line, draw, inferno_input, Unit};
use crate::export::folded::{folded_lines, Grouping};
use crate::format_numbers::{percent_of, seconds_or_milliseconds};
use crate::profile::{load_profile, Profile, ProfileOptions, TimeKind};
use crate::symbolize::Symbolizer;
use crate::time_window::WindowArgs;

/// One function's shares of its profile's samples, in percent, before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareChange {
    pub function: String,
    /// Module file name, "" when none.
    pub module: String,
    pub base_self: f64,
    pub base_total: f64,
    pub new_self: f64,
    pub new_total: f64,
}

impl ShareChange {
    pub fn self_change(&self) -> f64 {
        self.new_self - self.base_self
    }

    pub fn total_change(&self) -> f64 {
        self.new_total - self.base_total
    }

    /// The larger of the two changes, in points (what the table is sorted by).
    pub fn size(&self) -> f64 {
        self.self_change().abs().max(self.total_change().abs())
    }
}

/// Self and total share of each (function, module) of `profile`, in percent of its samples'
/// weight.
fn shares(profile: &Profile) -> HashMap<(String, String), (f64, f64)> {
    let rows = function_rows(profile, false);
    // Every sample's weight is the self weight of exactly one row.
    let whole: u64 = rows.iter().map(|row| row.self_weight).fold(0, u64::saturating_add);
    let percent = |part: u64| percent_of(part, whole);
    rows.into_iter()
        .filter_map(|row| {
            let frame = profile.frames.get(row.frame as usize)?;
            Some(((frame.function.clone(), frame.module.clone()), (percent(row.self_weight), percent(row.total_weight))))
        })
        .collect()
}

/// Every function of either profile with its shares in both, the largest change first (ties:
/// by name).
pub fn share_changes(base: &Profile, new: &Profile) -> Vec<ShareChange> {
    let base_shares = shares(base);
    let mut new_shares = shares(new);
    let mut changes: Vec<ShareChange> = base_shares
        .into_iter()
        .map(|((function, module), (base_self, base_total))| {
            let (new_self, new_total) = new_shares.remove(&(function.clone(), module.clone())).unwrap_or((0.0, 0.0));
            ShareChange { function, module, base_self, base_total, new_self, new_total }
        })
        .collect();
    changes.extend(new_shares.into_iter().map(|((function, module), (new_self, new_total))| ShareChange {
        function,
        module,
        base_self: 0.0,
        base_total: 0.0,
        new_self,
        new_total,
    }));
    changes.sort_by(|a, b| b.size().total_cmp(&a.size()).then_with(|| a.function.cmp(&b.function)).then_with(|| a.module.cmp(&b.module)));
    changes
}

/// One line describing a side: its command, samples and time (CPU, or wall in a `wall` trace).
fn side_line(label: &str, profile: &Profile) -> String {
    format!(
        "{label} {} — {} samples, {} of {}",
        command_line(profile, 80),
        profile.total_samples(),
        seconds_or_milliseconds(profile.total_time_ns()),
        profile.time_kind().noun()
    )
}

/// The table of the `top` largest changes.
pub fn render_table(base: &Profile, new: &Profile, top: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", side_line("base:", base));
    let _ = writeln!(out, "{}", side_line("new: ", new));
    let _ = writeln!(out);
    let _ = writeln!(out, "{:>7} {:>7} {:>7}  {:>7} {:>7} {:>7}", "self%", "self%", "change", "total%", "total%", "change");
    let _ = writeln!(out, "{:>7} {:>7} {:>7}  {:>7} {:>7} {:>7}  {:<40} module", "base", "new", "points", "base", "new", "points", "function");
    for change in share_changes(base, new).into_iter().take(top) {
        let _ = writeln!(
            out,
            "{:>7.2} {:>7.2} {:>+7.2}  {:>7.2} {:>7.2} {:>+7.2}  {:<40} {}",
            change.base_self,
            change.new_self,
            change.self_change(),
            change.base_total,
            change.new_total,
            change.total_change(),
            change.function,
            if change.module.is_empty() { "?" } else { change.module.as_str() }
        );
    }
    out
}

/// A differential flame graph: NEW's stacks, each frame coloured by how its share changed
/// (red grew, blue shrank), BASE scaled to NEW's total first.
pub fn differential_svg(base: &Profile, new: &Profile) -> Vec<u8> {
    let base_lines = folded_lines(base, Grouping::default());
    let new_lines = folded_lines(new, Grouping::default());
    // Counted in µs, not ns shown as µs: inferno divides a frame's change by the total
    // *scaled* by its factor, so the change in percent is right only with a factor of 1.
    let kind = if base.time_kind() == new.time_kind() { new.time_kind() } else { TimeKind::Mixed };
    let unit = Unit::for_lines(base_lines.iter().chain(&new_lines), 1000, kind);
    let (base_input, new_input) = (inferno_input(&base_lines, &unit), inferno_input(&new_lines, &unit));
    let mut both = Vec::new();
    let options = differential::Options { normalize: true, strip_hex: false };
    if differential::from_readers(options, base_input.as_bytes(), new_input.as_bytes(), &mut both).is_err() {
        both.clear();
    }
    let title = format!("sigtrace diff: {} → {}", command_line(base, 60), command_line(new, 60));
    let subtitle = format!(
        "width: new ({} samples, {} of {}); colour: change in share since base ({} samples, {} of {}), red grew, blue shrank",
        new.total_samples(),
        seconds_or_milliseconds(new.total_time_ns()),
        new.time_kind().noun(),
        base.total_samples(),
        seconds_or_milliseconds(base.total_time_ns()),
        base.time_kind().noun()
    );
    let mut options = base_options(title, subtitle, &unit);
    draw(&mut options, &String::from_utf8_lossy(&both))
}

/// Loads one side; `None` (after saying why) when nothing loaded.
fn load_side(path: &Path, symbolizer: &mut Symbolizer, window: &WindowArgs) -> Option<(Profile, bool)> {
    let files = crate::series::expand(&[path.to_path_buf()]);
    let window = crate::time_window::resolve_or_warn(window, &files).ok()?;
    let (profile, all_loaded) = load_profile(&files, symbolizer, &ProfileOptions { window, ..ProfileOptions::default() });
    (!profile.processes.is_empty()).then_some((profile, all_loaded))
}

/// Runs `sigtrace diff`; returns the exit code.
/// A window applies to each side apart, counted from that side's own start.
pub fn run(base: &Path, new: &Path, top: usize, flamegraph: Option<&Path>, window: &WindowArgs) -> i32 {
    let mut symbolizer = Symbolizer::new();
    let (Some((base, base_ok)), Some((new, new_ok))) = (load_side(base, &mut symbolizer, window), load_side(new, &mut symbolizer, window)) else {
        return 1;
    };
    if let Some(path) = flamegraph {
        if let Err(message) = crate::output::write_result(Some(path), &differential_svg(&base, &new)) {
            crate::warn!("{message}");
            return 1;
        }
    }
    if let Err(message) = crate::output::write_result(None, render_table(&base, &new, top).as_bytes()) {
        crate::warn!("{message}");
        return 1;
    }
    i32::from(!(base_ok && new_ok))
}
