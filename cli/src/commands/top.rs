//! `sigtrace top FILE` and `sigtrace top -- CMD ARGS`: a live view of a trace being written —
//! the hottest functions (self and total) and each thread's CPU time over the last N seconds,
//! the capture ratio and drops — refreshed as generations land. Reads the file as `TraceTail`
//! follows it; runs the command (for `-- CMD`) with the shim preloaded, its output into a log
//! file next to its trace (the screen is the view's). `q`, Esc or Ctrl-C quits; a command still
//! running then gets SIGTERM and is waited for. Not on a terminal: one line, exit status 2.

mod live_modules;
mod tail;
mod view;
mod window;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::commands::record::{find_shim, ld_preload_value, outputs};
use tail::TraceTail;
use window::RollingWindow;

/// How often the file is polled and the screen redrawn.
const REFRESH: Duration = Duration::from_millis(200);

/// What `top` watches.
pub enum Target {
    File(PathBuf),
    /// A command to run, its trace files named by the output pattern.
    Command {
        command: Vec<OsString>,
        output: String,
    },
}

/// Runs `sigtrace top`; returns the exit code.
pub fn run(target: Target, window_seconds: u64) -> i32 {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        crate::warn!("top draws on a terminal, and this is not one (for a text report of the end of a trace: sigtrace report --last 10s FILE)");
        return 2;
    }
    // Before the command starts: its trace's header start time comes after this.
    let since = SystemTime::now();
    let mut watched = match target {
        Target::File(path) => Watched { tail: Some(TraceTail::new(&path)), child: None, pattern: String::new(), since, status: None },
        Target::Command { command, output } => match start_command(&command, &output) {
            Ok(child) => Watched { tail: None, child: Some(child), pattern: output, since, status: None },
            Err(message) => {
                crate::warn!("{message}");
                return 2;
            }
        },
    };
    let mut terminal = ratatui::init();
    let result = watch(&mut terminal, &mut watched, window_seconds);
    ratatui::restore();
    if let Some(child) = &mut watched.child {
        if watched.status.is_none() {
            // SAFETY: kill() with a pid we spawned and have not reaped, and a valid signal number.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
    match result {
        Ok(()) => 0,
        Err(error) => {
            crate::warn!("top: {error}");
            1
        }
    }
}

/// The file followed and the command run.
struct Watched {
    tail: Option<TraceTail>,
    child: Option<Child>,
    /// The output pattern of the command's traces.
    pattern: String,
    since: SystemTime,
    /// How the command ended, once it has.
    status: Option<String>,
}

impl Watched {
    /// Finds the command's trace file once it exists (the one whose header names its pid).
    fn find_file(&mut self) {
        let (None, Some(child)) = (&self.tail, &self.child) else { return };
        let pid = child.id();
        for path in outputs::find_outputs(&self.pattern, self.since) {
            let mut tail = TraceTail::new(&path);
            let _ = tail.poll_header();
            if tail.header.as_ref().is_some_and(|header| header.pid == pid) {
                self.tail = Some(TraceTail::new(&path));
                return;
            }
        }
    }
}

fn start_command(command: &[OsString], pattern: &str) -> Result<Child, String> {
    let shim = find_shim()?;
    outputs_directory_writable(pattern)?;
    let (program, args) = command.split_first().ok_or("top -- needs a command")?;
    let log_path = outputs::output_directory(pattern).join(format!("sigtrace-top.{}.log", std::process::id()));
    let log = std::fs::OpenOptions::new().write(true).create_new(true).open(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    Command::new(program)
        .args(args)
        .env("LD_PRELOAD", ld_preload_value(&shim, std::env::var_os("LD_PRELOAD")))
        .env("SIGTRACE_OUTPUT", pattern)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.to_string_lossy()))
}

fn outputs_directory_writable(pattern: &str) -> Result<(), String> {
    crate::commands::record::check_output_directory(pattern)
}

/// The loop: poll, draw, read keys, until `q`.
fn watch(terminal: &mut ratatui::DefaultTerminal, watched: &mut Watched, window_seconds: u64) -> std::io::Result<()> {
    let mut window = RollingWindow::new(window_seconds);
    let mut next_poll = Instant::now();
    loop {
        if Instant::now() >= next_poll {
            next_poll = Instant::now() + REFRESH;
            if let (Some(child), None) = (&mut watched.child, &watched.status) {
                if let Ok(Some(status)) = child.try_wait() {
                    watched.status = Some(format!("command exited ({status})"));
                }
            }
            watched.find_file();
            if let Some(tail) = &mut watched.tail {
                for generation in tail.poll() {
                    if let Some(header) = tail.header.clone() {
                        window.add(tail.path(), &header, generation);
                    }
                }
            }
            let (what, state, totals) = describe(watched, &window);
            terminal.draw(|frame| view::draw(frame, &view::Status { what: &what, state: &state, window_seconds }, &totals))?;
        }
        if event::poll(next_poll.saturating_duration_since(Instant::now()))? {
            if let Event::Key(key) = event::read()? {
                let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if key.kind == KeyEventKind::Press && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c) {
                    return Ok(());
                }
            }
        }
    }
}

/// The status line's subject and state, and the window's totals.
fn describe(watched: &Watched, window: &RollingWindow) -> (String, String, window::Totals) {
    let Some(tail) = &watched.tail else {
        let pid = watched.child.as_ref().map_or(0, Child::id);
        let state = watched.status.clone().unwrap_or_else(|| "waiting for its trace file".to_string());
        return (format!("pid {pid}"), state, window::Totals::default());
    };
    let Some(header) = &tail.header else {
        return (tail.path().display().to_string(), "waiting for the trace's header".to_string(), window::Totals::default());
    };
    let what = format!("{} (pid {})", crate::symbolize::module_file_name(&header.executable), header.pid);
    let state = match (&tail.broken, &watched.status, &tail.end) {
        (Some(why), _, _) => format!("stopped reading: {why}"),
        (None, Some(status), _) => status.clone(),
        (None, None, Some(end)) => format!("ended: {}", end.describe()),
        (None, None, None) => "running".to_string(),
    };
    (what, state, window.totals(config::period_ns(header.hz), header.start_unix_ns))
}
