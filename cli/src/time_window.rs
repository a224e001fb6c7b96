//! Time windows: `--from`, `--to` and `--last` of the reading commands. A window is resolved
//! once against the files it applies to, into Unix times; a sample is kept exactly when its own
//! time falls in `[from, to)`, an event likewise. What a generation holds as a whole (CPU time,
//! drops, counters) cannot be cut per sample: `info` takes it from the generations the window
//! overlaps and says so.

use std::path::{Path, PathBuf};

use format::{Chunk, Generation, Header};

use crate::format_numbers::seconds;
use crate::profile::{open_trace, ticks_to_ns};

const NS_PER_S: u64 = 1_000_000_000;

/// The window options shared by `info`, `report`, `export`, `events` and `diff`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WindowArgs {
    /// Only samples and events from TIME on: seconds from the trace's start (`90`, `1.5s`,
    /// `2m`, `1h`) or a local wall-clock time (`14:02:10`, `2026-12-06 14:02:10`).
    #[arg(long, value_name = "TIME", value_parser = parse_time_point)]
    pub from: Option<TimePoint>,
    /// Only samples and events before TIME (as for `--from`).
    #[arg(long, value_name = "TIME", value_parser = parse_time_point)]
    pub to: Option<TimePoint>,
    /// Only the last DURATION of the trace (`30s`, `5m`), or the DURATION before `--to`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "from")]
    pub last: Option<u64>,
}

/// A bound of a window as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePoint {
    /// ns after the trace's start.
    FromStart(u64),
    /// A local wall-clock time: a date (year, month, day) or none (the day is the one that puts
    /// it within 12 hours of the trace's start), and the ns since that day's midnight.
    Clock { date: Option<(i32, u32, u32)>, of_day_ns: u64 },
}

/// A resolved window: samples and events at Unix times in `[from_unix_ns, to_unix_ns)` are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub from_unix_ns: u64,
    /// Exclusive; `u64::MAX` when open.
    pub to_unix_ns: u64,
    /// The start of the traces it was resolved against (the earliest), Unix ns: what offsets count from.
    pub origin_unix_ns: u64,
}

impl TimeWindow {
    /// Whether a sample or event at `unix_ns` is in the window.
    pub fn contains(&self, unix_ns: u64) -> bool {
        self.from_unix_ns <= unix_ns && unix_ns < self.to_unix_ns
    }

    /// Whether a generation spanning `[start, end]` (Unix ns) can hold times in the window.
    pub fn overlaps(&self, start_unix_ns: u64, end_unix_ns: u64) -> bool {
        start_unix_ns < self.to_unix_ns && end_unix_ns >= self.from_unix_ns
    }

    /// Keeps the samples and events of `generation` (of a trace with `header`) that are in the
    /// window; returns whether the generation overlaps it at all.
    pub fn cut(&self, header: &Header, generation: &mut Generation) -> bool {
        let unix = |ticks: u64| unix_ns_of(header, ticks);
        generation.samples.retain(|sample| self.contains(unix(sample.time)));
        generation.events.retain(|event| self.contains(unix(event.time)));
        self.overlaps(unix(generation.start_time), unix(generation.end_time))
    }

    /// `1.000 s to 2.000 s after the start` (the end `the end` when open).
    pub fn describe(&self) -> String {
        let offset = |unix_ns: u64| seconds(unix_ns.saturating_sub(self.origin_unix_ns));
        let to = if self.to_unix_ns == u64::MAX { "the end".to_string() } else { offset(self.to_unix_ns) };
        format!("{} to {to} after the start ({} to {})", offset(self.from_unix_ns), local_clock(self.from_unix_ns), local_clock_or_end(self.to_unix_ns))
    }
}

/// A timestamp of a trace with `header` (header clock ticks) as Unix ns.
pub fn unix_ns_of(header: &Header, ticks: u64) -> u64 {
    header.start_unix_ns.saturating_add(ticks_to_ns(header, ticks).saturating_sub(header.start_clock_ns))
}

impl WindowArgs {
    /// Whether any window option was given.
    pub fn is_set(&self) -> bool {
        self.from.is_some() || self.to.is_some() || self.last.is_some()
    }

    /// The window over `files` (offsets count from the earliest start among them; `--last` from
    /// the latest end), `None` when no option was given; `Err` with the message to print when it
    /// cannot be resolved (no file has a header) or is empty.
    pub fn resolve(&self, files: &[PathBuf]) -> Result<Option<TimeWindow>, String> {
        if !self.is_set() {
            return Ok(None);
        }
        let origin = files.iter().filter_map(|path| header_of(path)).map(|header| header.start_unix_ns).min();
        let Some(origin) = origin else {
            return Err("no trace to place the time window in".to_string());
        };
        let point = |point: TimePoint| match point {
            TimePoint::FromStart(ns) => origin.saturating_add(ns),
            TimePoint::Clock { date, of_day_ns } => clock_to_unix_ns(date, of_day_ns, origin),
        };
        let mut to = self.to.map_or(u64::MAX, point);
        let from = match (self.from, self.last) {
            (Some(from), _) => point(from),
            (None, Some(last)) => {
                if to == u64::MAX {
                    // The end of the traces: one pass over them, without symbols.
                    let end = files.iter().filter_map(|path| end_unix_ns(path)).max().unwrap_or(origin);
                    // Inclusive of a sample at the very end.
                    to = end.saturating_add(1);
                }
                to.saturating_sub(last)
            }
            (None, None) => origin,
        };
        // Nothing is older than the earliest start: a window reaching before it starts there.
        let from = from.max(origin);
        if from >= to {
            return Err(format!("the time window is empty: {} is not before {}", local_clock(from), local_clock(to)));
        }
        Ok(Some(TimeWindow { from_unix_ns: from, to_unix_ns: to, origin_unix_ns: origin }))
    }
}

/// [`WindowArgs::resolve`], saying why on stderr when it fails (`Err`: the exit code, 2).
pub fn resolve_or_warn(args: &WindowArgs, files: &[PathBuf]) -> Result<Option<TimeWindow>, i32> {
    args.resolve(files).map_err(|message| {
        crate::warn!("{message}");
        2
    })
}

/// The header of the trace at `path`, when it has one (read alone: the first chunk).
fn header_of(path: &Path) -> Option<Header> {
    let mut reader = open_trace(path).ok()?;
    match reader.next_chunk()? {
        Chunk::Header(header) => Some(header),
        _ => None,
    }
}

/// The end of the last complete generation of the trace at `path`, Unix ns.
fn end_unix_ns(path: &Path) -> Option<u64> {
    let mut end = None;
    open_trace(path).ok()?.read_with(|header, generation, _| {
        if let Some(header) = header {
            end = end.max(Some(unix_ns_of(header, generation.end_time)));
        }
    });
    end
}

/// Parses a duration: `90` or `1.5s` (seconds), `250ms`, `2m`, `1h`, `1d`; ns.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" => 1e3,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        other => return Err(format!("unknown unit `{other}` (use s, ms, m, h or d)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (like 30s, 1.5, 2m)"))?;
    let ns = value * scale;
    if !ns.is_finite() || ns < 0.0 || ns >= u64::MAX as f64 {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(ns as u64)
}

/// Parses a time point: a wall-clock time when it holds a `:`, else a duration from the start.
pub fn parse_time_point(text: &str) -> Result<TimePoint, String> {
    let text = text.trim();
    if !text.contains(':') {
        return parse_duration(text).map(TimePoint::FromStart);
    }
    let (date, clock) = match text.split_once(['T', ' ']) {
        Some((date, clock)) => (Some(parse_date(date)?), clock),
        None => (None, text),
    };
    let bad = || format!("`{text}` is not a time (like 14:02, 14:02:10.5 or 2026-12-06 14:02:10)");
    let mut parts = clock.split(':');
    let hours: u64 = parts.next().and_then(|p| p.parse().ok()).filter(|&h| h < 24).ok_or_else(bad)?;
    let minutes: u64 = parts.next().and_then(|p| p.parse().ok()).filter(|&m| m < 60).ok_or_else(bad)?;
    let seconds_ns = match parts.next() {
        None => 0,
        Some(p) => {
            let s: f64 = p.parse().map_err(|_| bad())?;
            if !(0.0..61.0).contains(&s) {
                return Err(bad());
            }
            (s * 1e9).round() as u64
        }
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(TimePoint::Clock { date, of_day_ns: (hours * 3600 + minutes * 60) * NS_PER_S + seconds_ns })
}

fn parse_date(text: &str) -> Result<(i32, u32, u32), String> {
    let bad = || format!("`{text}` is not a date (YYYY-MM-DD)");
    let mut parts = text.split('-');
    let year: i32 = parts.next().and_then(|p| p.parse().ok()).filter(|y| (1970..=9999).contains(y)).ok_or_else(bad)?;
    let month: u32 = parts.next().and_then(|p| p.parse().ok()).filter(|m| (1..=12).contains(m)).ok_or_else(bad)?;
    let day: u32 = parts.next().and_then(|p| p.parse().ok()).filter(|d| (1..=31).contains(d)).ok_or_else(bad)?;
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((year, month, day))
}

/// The Unix ns of a local wall-clock time; without a date, the day of the one within 12 hours
/// of `origin_unix_ns` (a trace started at 23:50 reads `00:30` as the next day's).
fn clock_to_unix_ns(date: Option<(i32, u32, u32)>, of_day_ns: u64, origin_unix_ns: u64) -> u64 {
    let (secs, frac) = (of_day_ns / NS_PER_S, of_day_ns % NS_PER_S);
    let at = |year: i32, month: u32, day: i32| -> u64 {
        let unix_s = local_to_unix_s(year, month, day, secs);
        u64::try_from(unix_s).map_or(0, |s| s.saturating_mul(NS_PER_S).saturating_add(frac))
    };
    if let Some((year, month, day)) = date {
        return at(year, month, day as i32);
    }
    let (year, month, day) = local_date(origin_unix_ns / NS_PER_S);
    let half_day = 12 * 3600 * NS_PER_S;
    [0, -1, 1]
        .into_iter()
        .map(|shift| at(year, month, day + shift))
        .min_by_key(|&t| t.abs_diff(origin_unix_ns))
        .filter(|t| t.abs_diff(origin_unix_ns) <= half_day)
        .unwrap_or_else(|| at(year, month, day))
}

/// Local time `secs` after midnight of the given day (out-of-range days roll over), Unix s.
fn local_to_unix_s(year: i32, month: u32, day: i32, secs: u64) -> i64 {
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year - 1900;
    tm.tm_mon = month as i32 - 1;
    tm.tm_mday = day;
    tm.tm_sec = secs as i32;
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, exclusively borrowed struct; mktime normalises it in place.
    let unix_s = unsafe { libc::mktime(&mut tm) };
    #[allow(clippy::useless_conversion)] // time_t is i64 here, not on every target
    i64::from(unix_s)
}

/// The local date (year, month, day) at Unix second `unix_s`.
fn local_date(unix_s: u64) -> (i32, u32, i32) {
    let tm = local_tm(unix_s);
    (tm.tm_year + 1900, (tm.tm_mon + 1) as u32, tm.tm_mday)
}

fn local_tm(unix_s: u64) -> libc::tm {
    let time = libc::time_t::try_from(unix_s).unwrap_or(libc::time_t::MAX);
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to valid, live values; localtime_r writes only into `tm`.
    unsafe { libc::localtime_r(&time, &mut tm) };
    tm
}

/// `14:02:10.500` (local time) of a Unix ns.
pub fn local_clock(unix_ns: u64) -> String {
    let tm = local_tm(unix_ns / NS_PER_S);
    format!("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ns % NS_PER_S / 1_000_000)
}

fn local_clock_or_end(unix_ns: u64) -> String {
    if unix_ns == u64::MAX {
        "end".to_string()
    } else {
        local_clock(unix_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_offsets_parse_with_their_units() {
        assert_eq!(parse_duration("30s"), Ok(30 * NS_PER_S));
        assert_eq!(parse_duration("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("2m"), Ok(120 * NS_PER_S));
        assert_eq!(parse_duration("1h"), Ok(3600 * NS_PER_S));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_time_point("12.5"), Ok(TimePoint::FromStart(12_500_000_000)));
    }

    #[test]
    fn clock_times_parse_with_and_without_a_date() {
        assert_eq!(parse_time_point("14:02:10"), Ok(TimePoint::Clock { date: None, of_day_ns: (14 * 3600 + 2 * 60 + 10) * NS_PER_S }));
        assert_eq!(parse_time_point("14:02"), Ok(TimePoint::Clock { date: None, of_day_ns: (14 * 3600 + 2 * 60) * NS_PER_S }));
        assert_eq!(parse_time_point("2026-12-06 00:00:00.25"), Ok(TimePoint::Clock { date: Some((2026, 12, 6)), of_day_ns: 250_000_000 }));
        assert_eq!(parse_time_point("2026-12-06T01:00"), Ok(TimePoint::Clock { date: Some((2026, 12, 6)), of_day_ns: 3600 * NS_PER_S }));
        for bad in ["25:00", "14:60", "14:02:10:1", "2026-13-01 10:00", "ab:cd"] {
            assert!(parse_time_point(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_clock_time_is_taken_on_the_day_that_puts_it_near_the_start() {
        // Whatever the machine's time zone: the local clock of a moment reads back to it.
        let origin = 1_765_000_000 * NS_PER_S + 123_000_000;
        let tm = local_tm(origin / NS_PER_S);
        let of_day_ns = (tm.tm_hour as u64 * 3600 + tm.tm_min as u64 * 60 + tm.tm_sec as u64) * NS_PER_S + 123_000_000;
        assert_eq!(clock_to_unix_ns(None, of_day_ns, origin), origin);
        // Ten minutes later and an hour earlier stay on the same side of midnight as the start does.
        assert_eq!(clock_to_unix_ns(None, (of_day_ns + 600 * NS_PER_S) % (86400 * NS_PER_S), origin), origin + 600 * NS_PER_S);
        assert_eq!(clock_to_unix_ns(None, (of_day_ns + 86400 * NS_PER_S - 3600 * NS_PER_S) % (86400 * NS_PER_S), origin), origin - 3600 * NS_PER_S);
    }

    #[test]
    fn a_window_holds_its_start_and_not_its_end() {
        let window = TimeWindow { from_unix_ns: 10, to_unix_ns: 20, origin_unix_ns: 0 };
        assert!(!window.contains(9) && window.contains(10) && window.contains(19) && !window.contains(20));
        assert!(window.overlaps(0, 10) && window.overlaps(19, 30) && !window.overlaps(20, 30) && !window.overlaps(0, 9));
    }
}
