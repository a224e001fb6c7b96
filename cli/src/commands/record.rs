//! `sigtrace record`: checks that the output directory takes files, says what it records and
//! where, runs a command with `libsigtrace.so` preloaded and waits for it (passing on Ctrl-C,
//! SIGTERM and SIGHUP: `child`), completes the command's trace with the end its wait status
//! gives when the process ended without an exit path (`end_status`), then lists the trace files it wrote with a ready-to-run
//! `sigtrace report` command (`outputs`) and exits with the command's status.

mod child;
mod end_status;
pub(crate) mod outputs;

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::SystemTime;

use config::{Choice, Config, Mode, NumberVariable, TimerChoice};

use crate::commands::info::TraceSummary;
use crate::profile::load_trace;
use crate::shell_quote::shell_quote;

use outputs::{find_outputs, report_command};

/// The shim's file name, looked for next to the `sigtrace` executable.
pub const SHIM_FILE_NAME: &str = "libsigtrace.so";
/// Exit status when the command could not be started (as a shell does).
pub const EXIT_CANNOT_RUN: i32 = 127;
/// Exit status when the shim is missing.
pub const EXIT_NO_SHIM: i32 = 2;
/// Exit status when the output directory does not take files (the command is not started).
pub const EXIT_BAD_OUTPUT: i32 = 2;

/// `--frequency`'s and `--wall-hz`'s values: a number in the variable's range.
pub fn number_parser(variable: &NumberVariable) -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(variable.min as i64..=variable.max as i64)
}

/// `what`, with the range, default and name of the variable the flag sets.
pub fn number_help(what: &str, variable: &NumberVariable) -> String {
    format!("{what} ({}–{}; default {}; {})", variable.min, variable.max, variable.default, variable.name)
}

/// A flag's values: the names of a choice, each with its help.
pub fn choice_parser<T: Choice + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T> {
    let values = T::ALL.iter().map(|value| clap::builder::PossibleValue::new(value.name()).help(value.help()));
    let names = clap::builder::PossibleValuesParser::new(values);
    clap::builder::TypedValueParser::map(names, |name: String| T::from_name(&name).expect("clap accepts possible values only"))
}

/// `what`, with the default and name of the variable the flag sets.
pub fn choice_help<T: Choice>(what: &str, variable: &str) -> String {
    format!("{what} ({variable}; default {})", T::DEFAULT_NAME)
}

/// What the samples of `timer` measure and how they are taken, for the start line.
fn timer_description(timer: TimerChoice) -> &'static str {
    match timer {
        TimerChoice::Auto => "of CPU time per thread (a perf timer while it computes, a POSIX CPU timer while it switches)",
        TimerChoice::Perf => "of CPU time per thread (perf timers)",
        TimerChoice::Posix => "of CPU time per thread (POSIX CPU timers)",
        TimerChoice::Itimer => "of process CPU time (setitimer)",
    }
}

pub struct RecordOptions {
    pub output: String,
    pub hz: Option<u32>,
    pub timer: Option<TimerChoice>,
    /// `SIGTRACE_MODE` for the command, when given.
    pub mode: Option<Mode>,
    /// `SIGTRACE_WALL_HZ` for the command, when given.
    pub wall_hz: Option<u32>,
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

/// Refuses (one line) an output directory that does not exist, is not a directory, or that
/// this user cannot create files in (`access(W_OK | X_OK)`). A directory part holding `%p`,
/// `%e` or `%t` differs per process and is not checked.
pub fn check_output_directory(pattern: &str) -> Result<(), String> {
    let raw_directory = Path::new(pattern).parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    if has_expansions(&raw_directory) {
        return Ok(());
    }
    let directory = outputs::output_directory(pattern);
    let shown = directory.display();
    match std::fs::metadata(&directory) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(format!("cannot record into {shown} (-o {pattern}): no such directory")),
        Err(error) => return Err(format!("cannot record into {shown} (-o {pattern}): {error}")),
        Ok(metadata) if !metadata.is_dir() => return Err(format!("cannot record into {shown} (-o {pattern}): not a directory")),
        Ok(_) => {}
    }
    let Ok(path) = CString::new(directory.as_os_str().as_bytes()) else {
        return Err(format!("cannot record into {shown}: the path holds a NUL byte"));
    };
    // SAFETY: access(2) reads the NUL-terminated path and nothing else.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let error = std::io::Error::last_os_error();
        return Err(format!("cannot record into {shown} (-o {pattern}): {error}"));
    }
    Ok(())
}

/// True when `text` holds a `%p`, `%e` or `%t` escape (`%%` is a literal `%`).
fn has_expansions(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('p' | 'e' | 't') => return true,
                _ => continue,
            }
        }
    }
    false
}

/// The sampling settings the shim will use.
struct Settings {
    hz: u32,
    timer: TimerChoice,
    mode: Mode,
    wall_hz: u32,
}

/// The sampling settings the shim will use: `-F` / `--timer` / `--mode` / `--wall-hz`, else the
/// inherited `SIGTRACE_HZ` / `SIGTRACE_TIMER` / `SIGTRACE_MODE` / `SIGTRACE_WALL_HZ` as the
/// shim's parser reads them (the shim reports bad ones), else its defaults.
fn effective_settings(options: &RecordOptions) -> Settings {
    let inherited = Config::from_lookup(|name| std::env::var(name).ok(), |_| {});
    Settings {
        hz: options.hz.unwrap_or(inherited.hz),
        timer: options.timer.unwrap_or(inherited.timer),
        mode: options.mode.unwrap_or(inherited.mode),
        wall_hz: options.wall_hz.unwrap_or(inherited.wall_hz),
    }
}

/// The command line as a shell would show it, e.g. `make -j2` or `sh -c 'exit 3'`.
fn command_line(command: &[OsString]) -> String {
    command.iter().map(|word| shell_quote(&word.to_string_lossy())).collect::<Vec<_>>().join(" ")
}

/// The pattern as a path, `./` in front when it has no directory.
fn shown_pattern(pattern: &str) -> String {
    if pattern.contains('/') {
        pattern.to_string()
    } else {
        format!("./{pattern}")
    }
}

/// `sigtrace: recording 'make -j2' at 999 Hz of CPU time per thread (perf timers) into ./make.%p.sigtrace`;
/// in wall mode `… (perf timers) and waiting threads' wall time at 100 Hz (mode wall) into …`.
pub fn start_line(options: &RecordOptions) -> String {
    let settings = effective_settings(options);
    let line = command_line(&options.command);
    let quote = if line.contains('\'') { '"' } else { '\'' };
    let wall = match settings.mode {
        Mode::Cpu => String::new(),
        Mode::Wall => format!(" and waiting threads' wall time at {} Hz (mode wall)", settings.wall_hz),
    };
    format!("recording {quote}{line}{quote} at {} Hz {}{wall} into {}", settings.hz, timer_description(settings.timer), shown_pattern(&options.output))
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
    if let Err(message) = check_output_directory(&options.output) {
        crate::warn!("{message}");
        return EXIT_BAD_OUTPUT;
    }
    let mut command = Command::new(program);
    command.args(args);
    command.env("LD_PRELOAD", ld_preload_value(&shim, std::env::var_os("LD_PRELOAD")));
    command.env("SIGTRACE_OUTPUT", &options.output);
    if let Some(hz) = options.hz {
        command.env("SIGTRACE_HZ", hz.to_string());
    }
    if let Some(timer) = options.timer {
        command.env("SIGTRACE_TIMER", timer.name());
    }
    if let Some(mode) = options.mode {
        command.env("SIGTRACE_MODE", mode.name());
    }
    if let Some(wall_hz) = options.wall_hz {
        command.env("SIGTRACE_WALL_HZ", wall_hz.to_string());
        if effective_settings(options).mode == Mode::Cpu {
            crate::warn!("--wall-hz applies in wall mode only (--mode wall)");
        }
    }
    // Watched from before the spawn: a signal during it is passed on once the child exists.
    let watch = match child::SignalWatch::install() {
        Ok(watch) => watch,
        Err(error) => {
            crate::warn!("cannot watch for signals: {error}");
            return 1;
        }
    };
    let grouping = child::Grouping::for_this_process();
    watch.prepare(&mut command, grouping);
    let started = SystemTime::now();
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            crate::warn!("cannot run {}: {error}", program.to_string_lossy());
            return EXIT_CANNOT_RUN;
        }
    };
    // Once the command runs (spawn returns after its exec): a command that cannot start gets
    // only the line saying so. The command is in its dynamic loader meanwhile.
    crate::warn!("{}", start_line(options));
    let code = match watch.wait_passing_signals_on(child.id(), grouping) {
        Ok(status) => {
            end_status::complete_trace_of(&find_outputs(&options.output, started), child.id(), status);
            exit_code(status)
        }
        Err(error) => {
            crate::warn!("cannot wait for {}: {error}", program.to_string_lossy());
            1
        }
    };
    print_outputs(&options.output, started);
    drop(watch);
    code
}

/// The end of a run: each file written with its summary, the totals when there are several,
/// and the `sigtrace report` command that reads them all.
fn print_outputs(pattern: &str, started: SystemTime) {
    let outputs = find_outputs(pattern, started);
    if outputs.is_empty() {
        crate::warn!("no trace file matching {} was written", shown_pattern(pattern));
        return;
    }
    let (mut samples, mut bytes, mut pids) = (0u64, 0u64, std::collections::BTreeSet::new());
    for path in &outputs {
        bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match load_trace(path) {
            Ok(loaded) => {
                let summary = TraceSummary::of(&loaded);
                samples += summary.samples;
                pids.insert(loaded.header.pid);
                crate::warn!("wrote {}: {}", path.display(), summary.one_line());
            }
            Err(message) => crate::warn!("wrote {}, which cannot be read: {message}", path.display()),
        }
    }
    if outputs.len() > 1 {
        crate::warn!("{} files, {} processes, {samples} samples, {bytes} bytes", outputs.len(), pids.len());
    }
    // As `sigtrace` was invoked (`target/release/sigtrace`, or `sigtrace` found on PATH).
    let program = std::env::args_os().next().map(|arg| arg.to_string_lossy().into_owned()).filter(|arg| !arg.is_empty());
    crate::warn!("to see where the time went: {}", report_command(program.as_deref().unwrap_or("sigtrace"), pattern, &outputs));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn the_start_line_says_what_how_and_where() {
        let make = || RecordOptions {
            output: "make.%p.sigtrace".into(),
            hz: Some(999),
            timer: Some(TimerChoice::Perf),
            mode: Some(Mode::Cpu),
            wall_hz: None,
            command: vec!["make".into(), "-j2".into()],
        };
        assert_eq!(start_line(&make()), "recording 'make -j2' at 999 Hz of CPU time per thread (perf timers) into ./make.%p.sigtrace");
        let options = RecordOptions {
            output: "/tmp/x/%p".into(),
            hz: Some(50),
            timer: Some(TimerChoice::Itimer),
            mode: Some(Mode::Cpu),
            wall_hz: None,
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
        };
        assert_eq!(start_line(&options), r#"recording "sh -c 'exit 3'" at 50 Hz of process CPU time (setitimer) into /tmp/x/%p"#);
        let wall = RecordOptions { mode: Some(Mode::Wall), wall_hz: Some(250), ..make() };
        assert_eq!(
            start_line(&wall),
            "recording 'make -j2' at 999 Hz of CPU time per thread (perf timers) and waiting threads' wall time at 250 Hz (mode wall) into ./make.%p.sigtrace"
        );
    }

    #[test]
    fn the_output_directory_must_take_files() {
        assert!(check_output_directory("t.%p.sigtrace").is_ok(), "the current directory");
        let missing = check_output_directory("/nonexistent-sigtrace-dir/t.%p.sigtrace").unwrap_err();
        assert_eq!(missing, "cannot record into /nonexistent-sigtrace-dir (-o /nonexistent-sigtrace-dir/t.%p.sigtrace): no such directory");
        assert!(check_output_directory("/etc/hostname/t.%p").unwrap_err().ends_with("not a directory"));
        assert!(check_output_directory("/nonexistent-%p/t").is_ok(), "a directory per process is not checked");
        assert!(has_expansions("a/%e") && !has_expansions("100%%p") && !has_expansions("a%"));
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
        std::fs::write(dir.join("t.app.11.1.sigtrace"), b"partial").unwrap();
        std::fs::write(dir.join("other.app.11.sigtrace"), b"x").unwrap();
        let mut old = Vec::new();
        format::encode_preamble(&mut old);
        let header = format::Header { start_unix_ns: 1, ..format::Header::default() };
        format::encode_header(&mut old, &header);
        std::fs::write(dir.join("t.app.12.sigtrace"), &old).unwrap();
        let found = find_outputs(&pattern, since);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, vec![dir.join("t.app.11.1.sigtrace"), dir.join("t.app.11.sigtrace")]);
    }
}
