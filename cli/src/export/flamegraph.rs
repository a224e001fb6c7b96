//! Flame graphs: an interactive SVG (inferno) of the folded stacks, zoom and search included.
//!
//! Frame widths are time, kept in ns in the SVG (`fg:w`, the frames' `total_samples`) and
//! shown in µs: time is one unit across processes sampled at different rates, where sample
//! counts are not. The time is CPU time in a `cpu` profile and wall time in a `wall` one,
//! where the stacks of waiting threads end in `[blocked: CALL]` or `[runnable]`
//! (`profile::state_frame`). The sample count and the time of the whole profile are in the
//! title; the subtitle says what one sample stands for.

use inferno::flamegraph::{self, Direction, Options};

use super::folded::{folded_lines, Counts, FoldedLine, Grouping};
use crate::format_numbers::seconds_or_milliseconds;
use crate::profile::{Profile, TimeKind};
use crate::shell_quote::shell_quote;

/// How a flame graph is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlameOptions {
    pub grouping: Grouping,
    /// Roots at the top, callees below (an icicle graph).
    pub icicle: bool,
}

/// Counts are kept under this total so that inferno's sums (usize, and f64 for the layout)
/// stay exact: larger totals are divided down, and the displayed unit scaled back.
const MAX_EXACT_TOTAL: u64 = 1 << 52;

/// The unit the frame widths are counted in, chosen from what the samples have.
pub(crate) struct Unit {
    /// What one displayed unit is called in a frame's tooltip.
    pub name: &'static str,
    /// Displayed units per count (inferno's `factor`).
    pub factor: f64,
    /// The raw value of a line (ns of time, or sample records).
    pub of: fn(&Counts) -> u64,
    /// Raw values per count.
    pub divisor: u64,
}

impl Unit {
    /// Time (of `kind`) shown in µs when the samples carry time, else sample records; one count
    /// is at least `min_divisor` raw values (ns or records), more when the total would not stay exact.
    pub(crate) fn for_lines<'a>(lines: impl Iterator<Item = &'a FoldedLine> + Clone, min_divisor: u64, kind: TimeKind) -> Unit {
        let time: u128 = lines.clone().map(|line| u128::from(line.counts.time_ns)).sum();
        let time_name = match kind {
            TimeKind::Cpu => "µs of CPU",
            TimeKind::Wall => "µs of wall time",
            TimeKind::Mixed => "µs of CPU and wall time",
        };
        let (name, displayed_per_raw, of): (_, _, fn(&Counts) -> u64) =
            if time > 0 { (time_name, 1e-3, |c| c.time_ns) } else { ("samples", 1.0, |c| c.samples) };
        let total: u128 = lines.map(|line| u128::from(of(&line.counts))).sum();
        let exact = u64::try_from(total / u128::from(MAX_EXACT_TOTAL) + 1).unwrap_or(u64::MAX);
        let divisor = exact.max(min_divisor.max(1));
        Unit { name, factor: displayed_per_raw * divisor as f64, of, divisor }
    }

    pub(crate) fn count(&self, counts: &Counts) -> u64 {
        (self.of)(counts) / self.divisor
    }
}

/// inferno's options with ours: deterministic colours (by name), the unit's label and factor.
pub(crate) fn base_options(title: String, subtitle: String, unit: &Unit) -> Options<'static> {
    let mut options = Options::default();
    options.title = title;
    options.subtitle = Some(subtitle);
    options.count_name = unit.name.to_string();
    options.factor = unit.factor;
    options.hash = true;
    options
}

/// The command line of the profile's first process (shell-quoted, shortened to `max` chars),
/// and how many other processes there are. A line too long names the program by its file name
/// alone before anything is cut, so the arguments stay visible.
pub(crate) fn command_line(profile: &Profile, max: usize) -> String {
    let Some(first) = profile.processes.first() else { return "(no process)".into() };
    let args = if first.args.is_empty() { std::slice::from_ref(&first.executable) } else { first.args.as_slice() };
    let quoted = |args: &mut dyn Iterator<Item = &str>| args.map(shell_quote).collect::<Vec<_>>().join(" ");
    let mut line = quoted(&mut args.iter().map(String::as_str));
    if line.chars().count() > max {
        let program = args[0].rsplit('/').next().unwrap_or(&args[0]);
        line = quoted(&mut std::iter::once(program).chain(args[1..].iter().map(String::as_str)));
    }
    if line.chars().count() > max {
        line = line.chars().take(max.saturating_sub(1)).collect::<String>() + "…";
    }
    let others = profile.processes.iter().filter(|p| p.pid != first.pid).map(|p| p.pid).collect::<std::collections::HashSet<_>>().len();
    match others {
        0 => line,
        1 => format!("{line} (and 1 more process)"),
        n => format!("{line} (and {n} more processes)"),
    }
}

/// What one sample stands for: `1 sample ≈ 1.001 ms of CPU (999 Hz)`, or the rates when the
/// processes differ; in a profile with `wall` traces, what a waiting thread's stack ends in.
pub(crate) fn sampling_note(profile: &Profile) -> String {
    let note = rates_note(profile);
    if profile.has_wall() {
        let waiting = "waiting threads' stacks end in [blocked: CALL] or [runnable]";
        if note.is_empty() {
            waiting.to_string()
        } else {
            format!("{note}; {waiting}")
        }
    } else {
        note
    }
}

fn rates_note(profile: &Profile) -> String {
    let mut rates: Vec<u32> = profile.processes.iter().map(|p| p.hz).filter(|&hz| hz > 0).collect();
    rates.sort_unstable();
    rates.dedup();
    match rates.as_slice() {
        [] => String::new(),
        [hz] if profile.has_wall() => format!("1 period = {} ({hz} Hz)", seconds_or_milliseconds(config::period_ns(*hz))),
        [hz] => format!("1 sample ≈ {} of CPU ({hz} Hz)", seconds_or_milliseconds(config::period_ns(*hz))),
        several => format!("sampled at {} Hz", several.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// The lines as inferno's input: `stack COUNT`, lines whose count is 0 left out.
pub(crate) fn inferno_input(lines: &[FoldedLine], unit: &Unit) -> String {
    let mut text = String::new();
    for line in lines {
        let count = unit.count(&line.counts);
        if count > 0 {
            text.push_str(&line.stack);
            text.push(' ');
            text.push_str(&count.to_string());
            text.push('\n');
        }
    }
    text
}

/// Draws `input` (folded lines, one or two counts each) with `options`. inferno writes an SVG
/// saying "no valid input" when there is nothing to draw; that SVG is what is returned then.
pub(crate) fn draw(options: &mut Options<'_>, input: &str) -> Vec<u8> {
    let mut svg = Vec::new();
    let _ = flamegraph::from_lines(options, input.lines(), &mut svg);
    svg
}

/// Renders `profile` as an SVG flame graph.
pub fn render(profile: &Profile, flame: FlameOptions) -> Vec<u8> {
    let lines = folded_lines(profile, flame.grouping);
    let kind = profile.time_kind();
    let unit = Unit::for_lines(lines.iter(), 1, kind);
    let title = format!(
        "{} — {} samples, {} of {}",
        command_line(profile, 100),
        profile.total_samples(),
        seconds_or_milliseconds(profile.total_time_ns()),
        kind.noun()
    );
    let width = match kind {
        _ if unit.name == "samples" => "samples",
        TimeKind::Cpu => "CPU time",
        TimeKind::Wall => "wall time",
        TimeKind::Mixed => "CPU and wall time",
    };
    let subtitle = format!("frame width: {width}; {}", sampling_note(profile));
    let mut options = base_options(title, subtitle, &unit);
    if flame.icicle {
        options.direction = Direction::Inverted;
    }
    draw(&mut options, &inferno_input(&lines, &unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProcessInfo;

    fn profile_running(args: &[&str]) -> Profile {
        let process = ProcessInfo {
            pid: 7,
            parent_pid: 1,
            executable: args[0].to_string(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            hz: 999,
            timer: String::new(),
            mode: String::new(),
            period_ns: 0,
            start_unix_ns: 0,
            end_unix_ns: 0,
            path: "t.sigtrace".into(),
        };
        Profile { processes: vec![process], ..Profile::default() }
    }

    #[test]
    fn a_long_command_line_keeps_its_arguments_and_names_the_program_by_file_name() {
        let deep = "/a/very/deep/directory/that/a/ci/checkout/lives/in/target/test-scratch/diff-3521-0/shift";
        assert_eq!(command_line(&profile_running(&[deep, "30", "600"]), 60), "shift 30 600");
        assert_eq!(command_line(&profile_running(&["/bin/shift", "30", "600"]), 60), "/bin/shift 30 600");
        let many: Vec<String> = (0..40).map(|n| n.to_string()).collect();
        let args: Vec<&str> = std::iter::once(deep).chain(many.iter().map(String::as_str)).collect();
        let line = command_line(&profile_running(&args), 20);
        assert_eq!(line, "shift 0 1 2 3 4 5 6…");
    }
}
