//! `sigtrace record`: runs a command with `libsigtrace.so` preloaded, waits for it, then lists
//! the trace files it wrote and exits with the command's status.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;

use crate::info::TraceSummary;
use crate::profile::load_trace;

/// The shim's file name, looked for next to the `sigtrace` executable.
pub const SHIM_FILE_NAME: &str = "libsigtrace.so";
/// Where traces go unless `-o` says otherwise (expanded by the shim).
pub const DEFAULT_PATTERN: &str = "sigtrace.%e.%p.sigtrace";

/// Exit status when the command could not be started (as a shell does).
pub const EXIT_CANNOT_RUN: i32 = 127;
/// Exit status when the shim is missing.
pub const EXIT_NO_SHIM: i32 = 2;

/// Sampling sources the shim can be asked for (`SIGTRACE_TIMER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Timer {
    /// The best the kernel allows: perf, else posix, else itimer.
    Auto,
    /// A perf_event_open task-clock event per thread.
    Perf,
    /// A POSIX thread CPU-time timer per thread.
    Posix,
    /// One process-wide setitimer(ITIMER_PROF).
    Itimer,
}

impl Timer {
    pub fn as_env(self) -> &'static str {
        match self {
            Timer::Auto => "auto",
            Timer::Perf => "perf",
            Timer::Posix => "posix",
            Timer::Itimer => "itimer",
        }
    }
}

pub struct RecordOptions {
    pub output: String,
    pub hz: Option<u32>,
    pub timer: Option<Timer>,
    pub command: Vec<OsString>,
}

/// The shim next to the running executable.
pub fn find_shim() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the sigtrace executable: {e}"))?;
    let shim = exe.parent().map(|dir| dir.join(SHIM_FILE_NAME));
    match shim {
        Some(shim) if shim.is_file() => Ok(std::fs::canonicalize(&shim).unwrap_or(shim)),
        _ => Err(format!("cannot find {SHIM_FILE_NAME} next to {}", exe.display())),
    }
}

/// `shim` in front of whatever `LD_PRELOAD` already holds.
pub fn ld_preload_value(shim: &Path, existing: Option<OsString>) -> OsString {
    let mut value = shim.as_os_str().to_os_string();
    if let Some(existing) = existing.filter(|e| !e.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

/// The exit status `sigtrace record` passes on: the command's code, or 128 + signal number.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// Runs `sigtrace record`; returns the exit code.
pub fn run(options: &RecordOptions) -> i32 {
    let shim = match find_shim() {
        Ok(shim) => shim,
        Err(message) => {
            crate::warn!("{message}");
            return EXIT_NO_SHIM;
        }
    };
    let Some((program, args)) = options.command.split_first() else {
        crate::warn!("no command to record");
        return EXIT_NO_SHIM;
    };
    let mut command = Command::new(program);
    command.args(args);
    command.env("LD_PRELOAD", ld_preload_value(&shim, std::env::var_os("LD_PRELOAD")));
    command.env("SIGTRACE_OUTPUT", &options.output);
    if let Some(hz) = options.hz {
        command.env("SIGTRACE_HZ", hz.to_string());
    }
    if let Some(timer) = options.timer {
        command.env("SIGTRACE_TIMER", timer.as_env());
    }

    let started = SystemTime::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            crate::warn!("cannot run {}: {error}", program.to_string_lossy());
            return EXIT_CANNOT_RUN;
        }
    };
    // Ctrl-C goes to the whole foreground process group: let the command decide what it
    // means and keep waiting for it. Set only after spawn, so the command does not inherit it.
    let status = {
        let _ignore = IgnoreSigint::new();
        child.wait()
    };
    let code = match status {
        Ok(status) => exit_code(status),
        Err(error) => {
            crate::warn!("cannot wait for {}: {error}", program.to_string_lossy());
            1
        }
    };

    let outputs = find_outputs(&options.output, started);
    if outputs.is_empty() {
        crate::warn!("no trace file matching {} was written", options.output);
    }
    for path in outputs {
        crate::warn!("wrote {}", path.display());
        match load_trace(&path) {
            Ok(loaded) => crate::warn!("{}: {}", path.display(), TraceSummary::of(&loaded).one_line()),
            Err(message) => crate::warn!("{message}"),
        }
    }
    code
}

/// Ignores SIGINT while alive; restores the previous disposition when dropped.
struct IgnoreSigint {
    previous: usize,
}

const SIGINT: i32 = 2;
const SIG_IGN: usize = 1;
const SIG_ERR: usize = usize::MAX;

extern "C" {
    /// libc's `signal(2)`; handlers are passed as addresses (`SIG_IGN` = 1).
    fn signal(signum: i32, handler: usize) -> usize;
}

impl IgnoreSigint {
    fn new() -> Self {
        // SAFETY: installs SIG_IGN, a disposition (not a handler), for SIGINT; no Rust code runs
        // on delivery and nothing else in sigtrace handles SIGINT.
        let previous = unsafe { signal(SIGINT, SIG_IGN) };
        IgnoreSigint { previous }
    }
}

impl Drop for IgnoreSigint {
    fn drop(&mut self) {
        if self.previous != SIG_ERR {
            // SAFETY: puts back the disposition `signal` returned above (SIG_DFL in practice).
            unsafe { signal(SIGINT, self.previous) };
        }
    }
}

/// One piece of a file-name pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternToken {
    Literal(char),
    /// `%p`, `%t`: one or more digits.
    Digits,
    /// `%e`: one or more characters.
    AnyChars,
}

fn tokenize(pattern: &str) -> Vec<PatternToken> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            tokens.push(PatternToken::Literal(c));
            continue;
        }
        match chars.peek() {
            Some('p') | Some('t') => {
                chars.next();
                tokens.push(PatternToken::Digits);
            }
            Some('e') => {
                chars.next();
                tokens.push(PatternToken::AnyChars);
            }
            Some('%') => {
                chars.next();
                tokens.push(PatternToken::Literal('%'));
            }
            _ => tokens.push(PatternToken::Literal('%')),
        }
    }
    tokens
}

/// True if `name` is what the shim makes of the file-name `pattern`: `%p`/`%t` → digits,
/// `%e` → any non-empty text, `%%` → `%`, optionally followed by a `.N` suffix.
pub fn file_name_matches(pattern: &str, name: &str) -> bool {
    let tokens = tokenize(pattern);
    let chars: Vec<char> = name.chars().collect();
    matches_from(&tokens, &chars)
}

fn is_numeric_suffix(rest: &[char]) -> bool {
    rest.is_empty() || (rest.len() >= 2 && rest[0] == '.' && rest[1..].iter().all(char::is_ascii_digit))
}

fn matches_from(tokens: &[PatternToken], name: &[char]) -> bool {
    let Some((&token, rest_tokens)) = tokens.split_first() else {
        return is_numeric_suffix(name);
    };
    match token {
        PatternToken::Literal(c) => name.first() == Some(&c) && matches_from(rest_tokens, &name[1..]),
        PatternToken::Digits => {
            let digits = name.iter().take_while(|c| c.is_ascii_digit()).count();
            (1..=digits).rev().any(|n| matches_from(rest_tokens, &name[n..]))
        }
        PatternToken::AnyChars => (1..=name.len()).rev().any(|n| matches_from(rest_tokens, &name[n..])),
    }
}

/// Splits an output pattern into the directory to list (as given, `.` if none) and the
/// file-name part to match.
fn split_pattern(pattern: &str) -> (PathBuf, String) {
    let path = Path::new(pattern);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let directory = path.parent().map(Path::to_path_buf).unwrap_or_default();
    (directory.to_string_lossy().replace("%%", "%").into(), file_name)
}

/// Filesystem timestamps come from a coarse clock (one kernel tick, up to 10 ms, behind the
/// precise one): a file written right after `since` can carry an mtime slightly before it.
const COARSE_CLOCK_SLACK: Duration = Duration::from_millis(20);
/// How far before `since` a file with a header may have been modified last: its header start
/// time decides, precisely, so this only saves reading old files.
const MTIME_SLACK: Duration = Duration::from_secs(1);

/// The trace files written for `pattern` since `since`, sorted by path.
///
/// A file must match the pattern and have been modified at or after `since`. A file with a
/// readable header must have been started (header `start_unix_ns`) at or after `since`.
pub fn find_outputs(pattern: &str, since: SystemTime) -> Vec<PathBuf> {
    let (directory, file_pattern) = split_pattern(pattern);
    let listing_directory = if directory.as_os_str().is_empty() { Path::new(".") } else { directory.as_path() };
    let Ok(entries) = std::fs::read_dir(listing_directory) else {
        return Vec::new();
    };
    let earliest_mtime = since.checked_sub(MTIME_SLACK).unwrap_or(UNIX_EPOCH);
    let since_unix_ns = since.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| file_name_matches(&file_pattern, &entry.file_name().to_string_lossy()))
        .filter_map(|entry| {
            let mtime = entry.metadata().ok()?.modified().ok()?;
            let path = directory.join(entry.file_name());
            if mtime < earliest_mtime {
                return None;
            }
            let started_in_time = match read_header_start(&path) {
                Some(start_unix_ns) => u128::from(start_unix_ns) >= since_unix_ns,
                None => mtime >= since.checked_sub(COARSE_CLOCK_SLACK).unwrap_or(UNIX_EPOCH),
            };
            started_in_time.then_some(path)
        })
        .collect();
    found.sort();
    found
}

/// The header's start time of a trace file, reading only its beginning.
fn read_header_start(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut prefix = Vec::new();
    std::fs::File::open(path).ok()?.take(64 * 1024).read_to_end(&mut prefix).ok()?;
    writer::read_trace(&prefix).header.map(|h| h.start_unix_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_what_the_shim_writes() {
        let pattern = DEFAULT_PATTERN;
        assert!(file_name_matches(pattern, "sigtrace.true.1234.sigtrace"));
        assert!(file_name_matches(pattern, "sigtrace.my.app.7.sigtrace"));
        assert!(file_name_matches(pattern, "sigtrace.true.1234.sigtrace.1"));
        assert!(file_name_matches(pattern, "sigtrace.true.1234.sigtrace.12"));
        assert!(!file_name_matches(pattern, "sigtrace..1234.sigtrace"));
        assert!(!file_name_matches(pattern, "sigtrace.true.pid.sigtrace"));
        assert!(!file_name_matches(pattern, "sigtrace.true.1234.sigtrace."));
        assert!(!file_name_matches(pattern, "sigtrace.true.1234.sigtrace.x"));
        assert!(!file_name_matches(pattern, "sigtrace.true.1234.sigtrace2"));
        assert!(!file_name_matches(pattern, "xsigtrace.true.1234.sigtrace"));

        assert!(file_name_matches("app.%t-%p.trace", "app.1700000000-99.trace"));
        assert!(!file_name_matches("app.%t-%p.trace", "app.1700000000-.trace"));
        assert!(file_name_matches("100%%.%p", "100%.5"));
        assert!(!file_name_matches("100%%.%p", "100%%.5"));
        assert!(file_name_matches("fixed.sigtrace", "fixed.sigtrace"));
        assert!(file_name_matches("fixed.sigtrace", "fixed.sigtrace.3"));
        assert!(!file_name_matches("fixed.sigtrace", "fixed.sigtrace.3.4"));
    }

    #[test]
    fn split_pattern_keeps_the_directory_as_given() {
        assert_eq!(split_pattern("out/%p.sigtrace"), (PathBuf::from("out"), "%p.sigtrace".to_string()));
        assert_eq!(split_pattern("%p.sigtrace"), (PathBuf::new(), "%p.sigtrace".to_string()));
        assert_eq!(split_pattern("/tmp/100%%/x"), (PathBuf::from("/tmp/100%"), "x".to_string()));
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        // Killed by SIGKILL (9) / SIGSEGV (11), with and without a core dump bit.
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(11 | 0x80)), 139);
        let status = Command::new("sh").args(["-c", "exit 42"]).status().unwrap();
        assert_eq!(exit_code(status), 42);
        let status = Command::new("sh").args(["-c", "kill -TERM $$"]).status().unwrap();
        assert_eq!(exit_code(status), 128 + 15);
    }

    #[test]
    fn ld_preload_is_prepended() {
        let shim = Path::new("/opt/st/libsigtrace.so");
        assert_eq!(ld_preload_value(shim, None), OsString::from("/opt/st/libsigtrace.so"));
        assert_eq!(ld_preload_value(shim, Some("".into())), OsString::from("/opt/st/libsigtrace.so"));
        assert_eq!(ld_preload_value(shim, Some("libx.so".into())), OsString::from("/opt/st/libsigtrace.so:libx.so"));
    }

    #[test]
    fn finds_only_new_matching_files() {
        let dir = std::env::temp_dir().join(format!("sigtrace-record-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pattern = format!("{}/t.%e.%p.sigtrace", dir.display());
        let since = SystemTime::now();
        // Older header-less files: a minute back is well outside any clock slack.
        let stale = dir.join("t.app.10.sigtrace");
        std::fs::write(&stale, b"stale").unwrap();
        std::fs::File::options().write(true).open(&stale).unwrap().set_modified(since - Duration::from_secs(60)).unwrap();
        // A header-less file counts by mtime; one whose header says it started earlier does not.
        std::fs::write(dir.join("t.app.11.sigtrace"), b"partial").unwrap();
        std::fs::write(dir.join("t.app.11.sigtrace.1"), b"partial").unwrap();
        std::fs::write(dir.join("other.app.11.sigtrace"), b"x").unwrap();
        let mut old = Vec::new();
        writer::format::encode_preamble(&mut old);
        let header = writer::Header { start_unix_ns: 1, ..writer::Header::default() };
        writer::format::encode_header(&mut old, &header);
        std::fs::write(dir.join("t.app.12.sigtrace"), &old).unwrap();
        let found = find_outputs(&pattern, since);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, vec![dir.join("t.app.11.sigtrace"), dir.join("t.app.11.sigtrace.1")]);
    }
}
