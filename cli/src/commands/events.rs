//! `sigtrace events`: the thread starts and exits, regions, log messages and sampling pauses of trace files, in
//! time order, one per line (or one JSON object per line), with the time since the earliest
//! file's start and the thread they happened on.
//!
//! A region's end record carries no name: the open regions of each thread are tracked over all
//! its events (before any filter), so an end is printed with the name of the region it closes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::ValueEnum;
use format::EventKind;
use serde_json::json;

use crate::profile::{load_profile, Profile, ProfileEvent, ProfileOptions, ThreadInfo};
use crate::symbolize::Symbolizer;
use crate::time_window::WindowArgs;

/// The classes of events `--kind` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindFilter {
    /// `sigtrace_log` messages.
    Log,
    /// Region begins and ends.
    Region,
    /// Thread starts and exits.
    Thread,
    /// Sampling paused and resumed (SIGTRACE_PAUSED, SIGTRACE_TOGGLE_SIGNAL, sigtrace_pause).
    Pause,
}

impl KindFilter {
    fn matches(self, kind: EventKind) -> bool {
        match self {
            KindFilter::Log => kind == EventKind::Log,
            KindFilter::Region => matches!(kind, EventKind::RegionBegin | EventKind::RegionEnd),
            KindFilter::Thread => matches!(kind, EventKind::ThreadStart | EventKind::ThreadExit),
            KindFilter::Pause => matches!(kind, EventKind::Paused | EventKind::Resumed),
        }
    }
}

/// Which events are printed: an empty list lets everything through.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub tids: Vec<u32>,
    pub kinds: Vec<KindFilter>,
}

impl EventFilter {
    fn keeps(&self, thread: &ThreadInfo, kind: EventKind) -> bool {
        (self.tids.is_empty() || self.tids.contains(&thread.tid)) && (self.kinds.is_empty() || self.kinds.iter().any(|filter| filter.matches(kind)))
    }
}

/// The line `report --region NAME` prints when no region of that name exists; `names` are
/// the regions that do ([`Profile::region_names`]).
pub fn missing_region_message(name: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("no region named \"{name}\": the traces have no regions (sigtrace_region_begin)")
    } else {
        let list: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
        format!("no region named \"{name}\"; the traces have {}", list.join(", "))
    }
}

/// What one event says, for the text and the JSON form.
enum What<'a> {
    ThreadStart,
    ThreadExit,
    RegionBegin(&'a str),
    /// The name of the region closed; `None` when the thread had none open.
    RegionEnd(Option<String>),
    Log {
        category: &'a str,
        text: &'a str,
    },
    /// Sampling paused or resumed for the whole process, and what did it.
    Paused(&'a str),
    Resumed(&'a str),
}

/// `text` with its control characters (a newline in a log message) escaped, so that an event
/// stays on one line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

impl What<'_> {
    fn describe(&self) -> String {
        match self {
            What::ThreadStart => "thread start".into(),
            What::ThreadExit => "thread exit".into(),
            What::RegionBegin(name) => format!("region begin {}", one_line(name)),
            What::RegionEnd(Some(name)) => format!("region end {}", one_line(name)),
            What::RegionEnd(None) => "region end (no region open)".into(),
            What::Log { category, text } => format!("log {}: {}", one_line(category), one_line(text)),
            What::Paused(by) => format!("sampling paused ({})", one_line(by)),
            What::Resumed(by) => format!("sampling resumed ({})", one_line(by)),
        }
    }

    fn json_fields(&self) -> serde_json::Value {
        match self {
            What::ThreadStart => json!({ "event": "thread_start" }),
            What::ThreadExit => json!({ "event": "thread_exit" }),
            What::RegionBegin(name) => json!({ "event": "region_begin", "region": name }),
            What::RegionEnd(name) => json!({ "event": "region_end", "region": name }),
            What::Log { category, text } => json!({ "event": "log", "category": category, "text": text }),
            What::Paused(by) => json!({ "event": "paused", "by": by }),
            What::Resumed(by) => json!({ "event": "resumed", "by": by }),
        }
    }
}

/// Renders the events `filter` keeps: a line each, `TIME  PID/TID  THREAD  WHAT`, TIME in
/// seconds since `origin_unix_ns`; with `as_json`, one JSON object per line (`time` in s,
/// `unix_ns`, `pid`, `tid`, `thread`, `event`, and `region` or `category` and `text`).
/// Events of a thread index not in `threads` are skipped.
pub fn render(threads: &[ThreadInfo], events: &[ProfileEvent], origin_unix_ns: u64, filter: &EventFilter, as_json: bool) -> String {
    // The open regions of each thread, innermost last.
    let mut open: HashMap<u32, Vec<&str>> = HashMap::new();
    let mut kept: Vec<(&ProfileEvent, &ThreadInfo, What)> = Vec::new();
    for event in events {
        let Some(thread) = threads.get(event.thread as usize) else { continue };
        let regions = open.entry(event.thread).or_default();
        let what = match event.kind {
            EventKind::ThreadStart | EventKind::ThreadExit => {
                // A started thread has nothing open (a tid can be reused); an exited one neither.
                regions.clear();
                if event.kind == EventKind::ThreadStart {
                    What::ThreadStart
                } else {
                    What::ThreadExit
                }
            }
            EventKind::RegionBegin => {
                regions.push(&event.text);
                What::RegionBegin(&event.text)
            }
            EventKind::RegionEnd => What::RegionEnd(regions.pop().map(str::to_string)),
            EventKind::Log => What::Log { category: &event.category, text: &event.text },
            EventKind::Paused => What::Paused(&event.text),
            EventKind::Resumed => What::Resumed(&event.text),
        };
        if filter.keeps(thread, event.kind) {
            kept.push((event, thread, what));
        }
    }
    let seconds = |unix_ns: u64| (i128::from(unix_ns) - i128::from(origin_unix_ns)) as f64 / 1e9;
    let mut out = String::new();
    if as_json {
        for (event, thread, what) in &kept {
            let mut object = json!({
                "time": seconds(event.unix_ns),
                "unix_ns": event.unix_ns,
                "pid": thread.pid,
                "tid": thread.tid,
                "thread": thread.name,
            });
            if let (Some(fields), serde_json::Value::Object(extra)) = (object.as_object_mut(), what.json_fields()) {
                fields.extend(extra);
            }
            let _ = writeln!(out, "{object}");
        }
        return out;
    }
    let ids: Vec<String> = kept.iter().map(|(_, thread, _)| format!("{}/{}", thread.pid, thread.tid)).collect();
    let id_width = ids.iter().map(String::len).max().unwrap_or(0);
    let name_of = |thread: &ThreadInfo| if thread.name.is_empty() { "?".to_string() } else { one_line(&thread.name) };
    let name_width = kept.iter().map(|(_, thread, _)| name_of(thread).chars().count()).max().unwrap_or(0);
    for ((event, thread, what), id) in kept.iter().zip(&ids) {
        let _ = writeln!(out, "{:>10.6}  {id:>id_width$}  {:<name_width$}  {}", seconds(event.unix_ns), name_of(thread), what.describe());
    }
    out
}

/// A region name no trace can hold (the annotation API takes C strings, which hold no NUL):
/// loading with it as the region filter keeps no sample, so no stack is symbolised for a
/// command that shows only events (the filter applies to samples; every event is kept).
const NO_REGION: &str = "\0";

/// Runs `sigtrace events`; returns the exit code.
pub fn run(files: &[PathBuf], filter: &EventFilter, as_json: bool, window: &WindowArgs) -> i32 {
    let window = match crate::time_window::resolve_or_warn(window, files) {
        Ok(window) => window,
        Err(code) => return code,
    };
    let (profile, all_loaded) = load_profile(files, &mut Symbolizer::new(), &ProfileOptions { region: Some(NO_REGION), window, ..ProfileOptions::default() });
    if profile.processes.is_empty() {
        return 1;
    }
    let text = render_profile(&profile, filter, as_json);
    if text.is_empty() {
        crate::warn!("{}", if profile.events.is_empty() { "no events in the traces" } else { "no events match the filters" });
    }
    if let Err(message) = crate::output::write_result(None, text.as_bytes()) {
        crate::warn!("{message}");
        return 1;
    }
    i32::from(!all_loaded)
}

/// [`render`] of a profile's events, times counted from the earliest start of its processes.
pub fn render_profile(profile: &Profile, filter: &EventFilter, as_json: bool) -> String {
    let origin = profile.processes.iter().map(|process| process.start_unix_ns).min().unwrap_or(0);
    render(&profile.threads, &profile.events, origin, filter, as_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(unix_ns: u64, thread: u32, kind: EventKind, text: &str) -> ProfileEvent {
        ProfileEvent { unix_ns, thread, kind, category: if kind == EventKind::Log { "c".into() } else { String::new() }, text: text.into() }
    }

    #[test]
    fn ends_are_named_per_thread_and_odd_text_stays_on_one_line() {
        let threads = vec![ThreadInfo { pid: 1, tid: 1, name: "main".into() }, ThreadInfo { pid: 1, tid: 2, name: String::new() }];
        let events = vec![
            event(1_000, 0, EventKind::RegionBegin, "a"),
            event(2_000, 1, EventKind::RegionBegin, "b"),
            event(3_000, 0, EventKind::RegionEnd, ""),
            event(4_000, 1, EventKind::Log, "two\nlines"),
            event(5_000, 1, EventKind::RegionEnd, ""),
            event(6_000, 1, EventKind::RegionEnd, ""),
            event(7_000, 9, EventKind::Log, "no such thread"),
        ];
        let text = render(&threads, &events, 0, &EventFilter::default(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "  0.000001  1/1  main  region begin a",
                "  0.000002  1/2  ?     region begin b",
                "  0.000003  1/1  main  region end a",
                "  0.000004  1/2  ?     log c: two\\nlines",
                "  0.000005  1/2  ?     region end b",
                "  0.000006  1/2  ?     region end (no region open)",
            ]
        );
        let only_ends = EventFilter { tids: vec![2], kinds: vec![KindFilter::Region] };
        let json = render(&threads, &events, 0, &only_ends, true);
        let regions: Vec<serde_json::Value> = json.lines().map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["region"].clone()).collect();
        assert_eq!(regions, [json!("b"), json!("b"), serde_json::Value::Null]);
    }

    #[test]
    fn a_missing_region_names_the_others() {
        assert_eq!(missing_region_message("x", &["a".into(), "b".into()]), "no region named \"x\"; the traces have \"a\", \"b\"");
        assert_eq!(missing_region_message("x", &[]), "no region named \"x\": the traces have no regions (sigtrace_region_begin)");
    }
}
