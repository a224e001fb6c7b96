//! Configuration from the `SIGTRACE_*` environment variables, read once at start-up. A bad
//! value is reported in one line and replaced by a sensible fallback; a `SIGTRACE_*` name
//! sigtrace does not know is reported in one line with the closest known name.

use crate::log::{self, Level};

pub use sigprof::UnwindChoice;

/// Which sampling source the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerChoice {
    /// perf_event task clock, falling back to POSIX thread CPU timers.
    Auto,
    Perf,
    Posix,
    Itimer,
}

/// What a sample measures (`SIGTRACE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// On-CPU time: each thread's CPU timer.
    Cpu,
    /// Wall time: CPU timers for running threads, sigtrace's own thread for blocked ones.
    Wall,
}

impl Mode {
    /// The header's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cpu => "cpu",
            Mode::Wall => "wall",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub output_pattern: String,
    pub mode: Mode,
    pub hz: u32,
    /// Wall-clock ticks per second of sigtrace's own thread in wall mode (`SIGTRACE_WALL_HZ`).
    pub wall_hz: u32,
    pub timer: TimerChoice,
    pub unwind: UnwindChoice,
    pub generation_ms: u32,
    pub max_depth: usize,
    pub buffer_kb: usize,
    pub signal: i32,
    pub log_level: Level,
    pub max_threads: usize,
    /// A fixed drain period in ms (`SIGTRACE_DRAIN_MS`); `None`: adapted to the load.
    pub drain_ms: Option<u32>,
    /// Trace forked children (`SIGTRACE_FOLLOW_FORK`, default on).
    pub follow_fork: bool,
    /// Leave sigtrace in the environment of exec'd programs (`SIGTRACE_FOLLOW_EXEC`, default on).
    pub follow_exec: bool,
}

/// The prefix of every variable sigtrace reads.
pub const PREFIX: &str = "SIGTRACE_";

/// Every variable [`Config::from_lookup`] reads (the README's configuration table).
pub const VARIABLES: [&str; 15] = [
    "SIGTRACE_OUTPUT",
    "SIGTRACE_MODE",
    "SIGTRACE_HZ",
    "SIGTRACE_WALL_HZ",
    "SIGTRACE_TIMER",
    "SIGTRACE_UNWIND",
    "SIGTRACE_GENERATION_MS",
    "SIGTRACE_DEPTH",
    "SIGTRACE_BUFFER_KB",
    "SIGTRACE_SIGNAL",
    "SIGTRACE_DRAIN_MS",
    "SIGTRACE_MAX_THREADS",
    "SIGTRACE_LOG",
    "SIGTRACE_FOLLOW_FORK",
    "SIGTRACE_FOLLOW_EXEC",
];

/// Names users reach for, after the prefix, with the variable each means: the closest name is
/// looked for among these as well as among the names themselves (`FREQ` is as far from `HZ`
/// as from `LOG` by edits alone).
const ALIASES: [(&str, &str); 16] = [
    ("FREQ", "SIGTRACE_HZ"),
    ("FREQUENCY", "SIGTRACE_HZ"),
    ("RATE", "SIGTRACE_HZ"),
    ("SAMPLE_RATE", "SIGTRACE_HZ"),
    ("MAX_DEPTH", "SIGTRACE_DEPTH"),
    ("STACK_DEPTH", "SIGTRACE_DEPTH"),
    ("OUT", "SIGTRACE_OUTPUT"),
    ("FILE", "SIGTRACE_OUTPUT"),
    ("PATH", "SIGTRACE_OUTPUT"),
    ("LOG_LEVEL", "SIGTRACE_LOG"),
    ("VERBOSE", "SIGTRACE_LOG"),
    ("BUFFER", "SIGTRACE_BUFFER_KB"),
    ("BUFFER_SIZE", "SIGTRACE_BUFFER_KB"),
    ("GENERATION", "SIGTRACE_GENERATION_MS"),
    ("FORK", "SIGTRACE_FOLLOW_FORK"),
    ("EXEC", "SIGTRACE_FOLLOW_EXEC"),
];

/// The known variable whose name (after the prefix, case-insensitive) or alias is the fewest
/// edits away from `name`'s; on a tie, the first in [`VARIABLES`] order, names before aliases.
pub fn closest_variable(name: &str) -> &'static str {
    let wanted = name.strip_prefix(PREFIX).unwrap_or(name).to_ascii_uppercase();
    let names = VARIABLES.iter().map(|variable| (variable.strip_prefix(PREFIX).unwrap_or(variable), *variable));
    let candidates = names.chain(ALIASES.iter().copied());
    let mut best = (usize::MAX, VARIABLES[0]);
    for (spelling, variable) in candidates {
        let distance = edit_distance(&wanted, spelling);
        if distance < best.0 {
            best = (distance, variable);
        }
    }
    best.1
}

/// Levenshtein distance between two strings, by bytes (the names are ASCII): the fewest
/// insertions, deletions and substitutions that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // previous[j]: distance between the first i-1 bytes of `a` and the first j of `b`.
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &byte_a) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &byte_b) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(byte_a != byte_b);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

pub const DEFAULT_OUTPUT: &str = "sigtrace.%e.%p.sigtrace";
pub const DEFAULT_HZ: u32 = 999;
pub const DEFAULT_WALL_HZ: u32 = 100;
pub const DEFAULT_GENERATION_MS: u32 = 1000;
pub const DEFAULT_DEPTH: usize = 256;
pub const DEFAULT_BUFFER_KB: usize = 64;
pub const DEFAULT_MAX_THREADS: usize = 4096;

impl Config {
    /// Reads the configuration from the process environment, reporting bad values. Variables
    /// whose name or value is not UTF-8 count as unset.
    pub fn from_env() -> Config {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| name.starts_with("SIGTRACE_"))
            .collect();
        let problems = std::cell::RefCell::new(Vec::new());
        let config =
            Config::from_vars(vars.iter().map(|(name, value)| (name.as_str(), value.as_str())), |problem| problems.borrow_mut().push(problem.to_string()));
        let problems = problems.into_inner();
        if !problems.is_empty() && !parent_is_traced() {
            for problem in &problems {
                log::warn(problem);
            }
        }
        config
    }

    /// Reads the configuration from (name, value) pairs, as in an environment: the first pair
    /// of a name counts (as for `getenv`); other names than `SIGTRACE_*` are ignored. Pure: each
    /// bad value and each unknown `SIGTRACE_*` name is reported once via `report` (unknown
    /// names first, in the order given), nothing else is touched.
    pub fn from_vars<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>, report: impl Fn(&str)) -> Config {
        let mut ours: Vec<(&str, &str)> = Vec::new();
        for (name, value) in vars {
            if name.starts_with(PREFIX) && !ours.iter().any(|(seen, _)| *seen == name) {
                ours.push((name, value));
            }
        }
        for (name, _) in &ours {
            if !VARIABLES.contains(name) {
                report(&format!("unknown variable {name} (did you mean {}?)", closest_variable(name)));
            }
        }
        Config::from_lookup(|name| ours.iter().find(|(seen, _)| *seen == name).map(|(_, value)| value.to_string()), report)
    }

    /// Reads the configuration through `lookup`; each bad value is reported once via `report`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, report: impl Fn(&str)) -> Config {
        let vars = VarReader { lookup, report };
        let timer_options = [("auto", TimerChoice::Auto), ("perf", TimerChoice::Perf), ("posix", TimerChoice::Posix), ("itimer", TimerChoice::Itimer)];
        let unwind_options = [("auto", UnwindChoice::Auto), ("fp", UnwindChoice::FramePointers), ("dwarf", UnwindChoice::Dwarf)];
        let mut config = Config {
            output_pattern: vars.output_pattern(),
            mode: vars.choice("SIGTRACE_MODE", &[("cpu", Mode::Cpu), ("wall", Mode::Wall)]),
            hz: vars.number("SIGTRACE_HZ", DEFAULT_HZ.into(), 1, 10_000) as u32,
            wall_hz: vars.number("SIGTRACE_WALL_HZ", DEFAULT_WALL_HZ.into(), 1, 1_000) as u32,
            timer: vars.choice("SIGTRACE_TIMER", &timer_options),
            unwind: vars.choice("SIGTRACE_UNWIND", &unwind_options),
            generation_ms: vars.number("SIGTRACE_GENERATION_MS", DEFAULT_GENERATION_MS.into(), 10, 3_600_000) as u32,
            max_depth: vars.number("SIGTRACE_DEPTH", DEFAULT_DEPTH as u64, 1, 2048) as usize,
            buffer_kb: vars.number("SIGTRACE_BUFFER_KB", DEFAULT_BUFFER_KB as u64, 4, 65_536) as usize,
            signal: vars.signal(),
            log_level: vars.log_level(),
            max_threads: vars.number("SIGTRACE_MAX_THREADS", DEFAULT_MAX_THREADS as u64, 1, 1 << 20) as usize,
            drain_ms: (vars.lookup)("SIGTRACE_DRAIN_MS").map(|_| vars.number("SIGTRACE_DRAIN_MS", 10, 1, 10_000) as u32),
            follow_fork: vars.flag("SIGTRACE_FOLLOW_FORK"),
            follow_exec: vars.flag("SIGTRACE_FOLLOW_EXEC"),
        };
        if config.mode == Mode::Wall && config.timer == TimerChoice::Itimer {
            // The process-wide timer's signal may go to any thread, a blocked one too: its call
            // would return EINTR, which wall mode promises never to cause.
            (vars.report)("SIGTRACE_TIMER=itimer signals blocked threads too, which SIGTRACE_MODE=wall never does; using auto");
            config.timer = TimerChoice::Auto;
        }
        config
    }

    /// Words per ring: the configured size, but room for at least four records of full depth.
    pub fn ring_words(&self) -> usize {
        (self.buffer_kb * 1024 / 8).max(4 * (self.max_depth + sigprof::RECORD_HEADER_WORDS))
    }
}

/// Whether the parent process has sigtrace's library loaded: a program started by a traced
/// parent inherits the environment that parent has reported on already, so a process tree
/// reports each configuration problem once, from its root. (An image exec'd in place reports
/// again: its parent is the tree's parent. A parent whose maps cannot be read counts as not
/// traced.) Start-up only: reads a file.
fn parent_is_traced() -> bool {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    std::fs::read_to_string(format!("/proc/{parent}/maps")).is_ok_and(|maps| maps.lines().any(|line| line.rsplit('/').next() == Some("libsigtrace.so")))
}

/// Reads variables through `lookup`: each reader method gives the variable's value, or, when
/// it is unset, its default; a bad value is reported once through `report` and the default (or
/// the nearest bound) used.
struct VarReader<L, R> {
    lookup: L,
    report: R,
}

impl<L: Fn(&str) -> Option<String>, R: Fn(&str)> VarReader<L, R> {
    /// A number in `min..=max`; one outside is clamped.
    fn number(&self, name: &str, default: u64, min: u64, max: u64) -> u64 {
        let Some(text) = (self.lookup)(name) else { return default };
        match text.trim().parse::<u64>() {
            Err(_) => {
                (self.report)(&format!("{name}=\"{text}\" is not a number; using {default}"));
                default
            }
            Ok(value) if value < min || value > max => {
                let clamped = value.clamp(min, max);
                (self.report)(&format!("{name}={value} is outside {min}–{max}; using {clamped}"));
                clamped
            }
            Ok(value) => value,
        }
    }

    /// A switch that is on unless set to exactly `0`: `yes`, `true` or ` 1` are reported and
    /// the default (on) used.
    fn flag(&self, name: &str) -> bool {
        match (self.lookup)(name).as_deref() {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => {
                (self.report)(&format!("{name}=\"{other}\" is not 0 or 1; using 1"));
                true
            }
        }
    }

    /// One of `options` by name (case-insensitive; unset or empty: the first).
    fn choice<T: Copy>(&self, name: &str, options: &[(&str, T)]) -> T {
        let default = options[0];
        let Some(text) = (self.lookup)(name) else { return default.1 };
        let wanted = text.trim().to_ascii_lowercase();
        if wanted.is_empty() {
            return default.1;
        }
        options.iter().find(|(option, _)| *option == wanted).map(|(_, value)| *value).unwrap_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(option, _)| *option).collect();
            (self.report)(&format!("{name}=\"{text}\" is not one of {}; using {}", names.join(", "), default.0));
            default.1
        })
    }

    /// `SIGTRACE_LOG`: the level of sigtrace's own messages (default `warn`).
    fn log_level(&self) -> Level {
        match (self.lookup)("SIGTRACE_LOG") {
            None => Level::Warn,
            Some(text) => Level::parse(&text).unwrap_or_else(|| {
                (self.report)(&format!("SIGTRACE_LOG=\"{text}\" is not one of off, error, warn, info, debug; using warn"));
                Level::Warn
            }),
        }
    }

    /// `SIGTRACE_SIGNAL`: the sampling signal (default SIGPROF).
    fn signal(&self) -> i32 {
        match (self.lookup)("SIGTRACE_SIGNAL") {
            None => libc::SIGPROF,
            Some(text) => parse_signal(&text).unwrap_or_else(|| {
                (self.report)(&format!(
                    "SIGTRACE_SIGNAL=\"{text}\" is not a usable signal (SIGPROF, SIGVTALRM, SIGUSR1, SIGUSR2, SIGRTMIN+N or a number); using SIGPROF"
                ));
                libc::SIGPROF
            }),
        }
    }

    /// `SIGTRACE_OUTPUT`: the trace file pattern (an empty one is reported).
    fn output_pattern(&self) -> String {
        match (self.lookup)("SIGTRACE_OUTPUT") {
            Some(text) if !text.trim().is_empty() => text,
            Some(_) => {
                (self.report)(&format!("SIGTRACE_OUTPUT is empty; using {DEFAULT_OUTPUT}"));
                DEFAULT_OUTPUT.to_string()
            }
            None => DEFAULT_OUTPUT.to_string(),
        }
    }
}

/// Parses a signal name or number that may carry samples: not one the kernel or the C runtime
/// reserves for fatal conditions or job control.
fn parse_signal(text: &str) -> Option<i32> {
    let text = text.trim().to_ascii_uppercase();
    let name = text.strip_prefix("SIG").unwrap_or(&text);
    let signal = match name {
        "PROF" => libc::SIGPROF,
        "VTALRM" => libc::SIGVTALRM,
        "ALRM" => libc::SIGALRM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => {
            if let Some(offset) = name.strip_prefix("RTMIN") {
                let offset: i32 = if offset.is_empty() { 0 } else { offset.strip_prefix('+')?.parse().ok()? };
                // Checked: `SIGRTMIN+2147483647` overflowed (a panic where overflow is checked, as
                // in the `config` fuzz target; fuzz/regressions/config/rtmin-offset-overflow).
                libc::SIGRTMIN().checked_add(offset)?
            } else {
                name.parse().ok()?
            }
        }
    };
    let usable = [libc::SIGPROF, libc::SIGVTALRM, libc::SIGALRM, libc::SIGUSR1, libc::SIGUSR2].contains(&signal)
        || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal);
    usable.then_some(signal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn parse(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let reports = RefCell::new(Vec::new());
        let config = Config::from_vars(vars.iter().copied(), |line| reports.borrow_mut().push(line.to_string()));
        (config, reports.into_inner())
    }

    #[test]
    fn defaults_without_variables() {
        let (config, reports) = parse(&[]);
        assert!(reports.is_empty());
        assert_eq!(config.hz, 999);
        assert_eq!(config.timer, TimerChoice::Auto);
        assert_eq!(config.unwind, UnwindChoice::Auto);
        assert_eq!(config.signal, libc::SIGPROF);
        assert_eq!(config.max_depth, 256);
        assert_eq!(config.output_pattern, DEFAULT_OUTPUT);
        assert_eq!(config.log_level, Level::Warn);
    }

    #[test]
    fn wall_mode_refuses_the_process_wide_timer_with_one_line() {
        let (config, reports) = parse(&[("SIGTRACE_MODE", "wall"), ("SIGTRACE_TIMER", "itimer")]);
        assert_eq!((config.mode, config.timer), (Mode::Wall, TimerChoice::Auto));
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].contains("SIGTRACE_TIMER=itimer"), "{reports:?}");
        let (config, reports) = parse(&[("SIGTRACE_TIMER", "itimer")]);
        assert_eq!((config.mode, config.timer, reports.len()), (Mode::Cpu, TimerChoice::Itimer, 0));
    }

    #[test]
    fn bad_values_fall_back_with_one_line_each() {
        let (config, reports) = parse(&[("SIGTRACE_HZ", "fast"), ("SIGTRACE_TIMER", "hpet"), ("SIGTRACE_DEPTH", "99999"), ("SIGTRACE_SIGNAL", "SIGSEGV")]);
        assert_eq!(config.hz, 999);
        assert_eq!(config.timer, TimerChoice::Auto);
        assert_eq!(config.max_depth, 2048);
        assert_eq!(config.signal, libc::SIGPROF);
        assert_eq!(reports.len(), 4, "{reports:?}");
        assert!(reports.iter().any(|line| line == "SIGTRACE_HZ=\"fast\" is not a number; using 999"), "{reports:?}");
    }

    #[test]
    fn the_first_of_repeated_names_counts_and_other_names_are_ignored() {
        let (config, reports) = parse(&[("SIGTRACE_HZ", "100"), ("HOME", "/"), ("SIGTRACE_HZ", "fast"), ("SIGTRACEX", "1")]);
        assert!(reports.is_empty(), "{reports:?}");
        assert_eq!(config.hz, 100);
    }

    #[test]
    fn an_unknown_variable_is_named_once_with_the_closest_known_name() {
        let (config, reports) = parse(&[("SIGTRACE_FREQ", "100"), ("SIGTRACE_FREQ", "200"), ("SIGTRACE_HZ", "300")]);
        assert_eq!(reports, ["unknown variable SIGTRACE_FREQ (did you mean SIGTRACE_HZ?)"]);
        assert_eq!(config.hz, 300);
        for (typo, meant) in [
            ("SIGTRACE_OUTPT", "SIGTRACE_OUTPUT"),
            ("SIGTRACE_MAX_DEPTH", "SIGTRACE_DEPTH"),
            ("SIGTRACE_GENERATIONS_MS", "SIGTRACE_GENERATION_MS"),
            ("SIGTRACE_FOLLOW_FORKS", "SIGTRACE_FOLLOW_FORK"),
            ("SIGTRACE_FOLOW_EXEC", "SIGTRACE_FOLLOW_EXEC"),
            ("SIGTRACE_timer", "SIGTRACE_TIMER"),
            ("SIGTRACE_", "SIGTRACE_HZ"),
        ] {
            assert_eq!(closest_variable(typo), meant, "{typo}");
        }
    }

    #[test]
    fn the_known_names_are_the_names_read() {
        let asked = RefCell::new(Vec::new());
        Config::from_lookup(
            |name| {
                asked.borrow_mut().push(name.to_string());
                None
            },
            |_| {},
        );
        let mut asked = asked.into_inner();
        asked.sort();
        asked.dedup();
        let mut known: Vec<&str> = VARIABLES.to_vec();
        known.sort_unstable();
        assert_eq!(asked, known);
    }

    #[test]
    fn the_readme_table_has_a_row_per_variable() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
        let section = readme.split("\n## Configuration").nth(1).expect("a Configuration section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let rows: Vec<&str> = section.lines().filter_map(|line| line.strip_prefix("| `")?.split('`').next()).collect();
        assert_eq!(rows, VARIABLES, "the README's configuration table lists exactly VARIABLES, in their order");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("HZ", ""), 2);
        assert_eq!(edit_distance("KITTEN", "SITTING"), 3);
        assert_eq!(edit_distance("FREQ", "HZ"), 4);
        assert_eq!(edit_distance("DEPTH", "DEPTH"), 0);
    }

    #[test]
    fn booleans_take_exactly_0_or_1() {
        let (config, reports) = parse(&[("SIGTRACE_FOLLOW_FORK", "0"), ("SIGTRACE_FOLLOW_EXEC", "1")]);
        assert!(reports.is_empty(), "{reports:?}");
        assert!(!config.follow_fork && config.follow_exec);
        for text in ["yes", "no", "true", "false", "off", " 0", "", "2"] {
            let (config, reports) = parse(&[("SIGTRACE_FOLLOW_FORK", text)]);
            assert_eq!(reports, [format!("SIGTRACE_FOLLOW_FORK=\"{text}\" is not 0 or 1; using 1")], "{text:?}");
            assert!(config.follow_fork, "{text:?}: the default");
        }
    }

    #[test]
    fn a_real_time_signal_offset_past_i32_falls_back() {
        for text in ["SIGRTMIN+2147483647", "RTMIN+2147483648", "SIGRTMIN+-2147483648"] {
            let (config, reports) = parse(&[("SIGTRACE_SIGNAL", text)]);
            assert_eq!(config.signal, libc::SIGPROF, "{text}");
            assert_eq!(reports.len(), 1, "{text}: {reports:?}");
        }
    }

    #[test]
    fn good_values_are_taken() {
        let (config, reports) = parse(&[
            ("SIGTRACE_HZ", "4000"),
            ("SIGTRACE_TIMER", "posix"),
            ("SIGTRACE_SIGNAL", "SIGRTMIN+3"),
            ("SIGTRACE_LOG", "debug"),
            ("SIGTRACE_OUTPUT", "/tmp/x.%p"),
            ("SIGTRACE_UNWIND", "fp"),
        ]);
        assert!(reports.is_empty(), "{reports:?}");
        assert_eq!(config.hz, 4000);
        assert_eq!(config.timer, TimerChoice::Posix);
        assert_eq!(config.signal, libc::SIGRTMIN() + 3);
        assert_eq!(config.log_level, Level::Debug);
        assert_eq!(config.output_pattern, "/tmp/x.%p");
        assert_eq!(config.unwind, UnwindChoice::FramePointers);
    }
}
