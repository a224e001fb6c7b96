//! `sigtrace top`, driven in a real terminal: tmux (on a socket of the test's own) runs
//! `sigtrace top -- split …` (single-threaded: its samples arrive as spills) and the screen is
//! read with `capture-pane` until the workload's hot function shows (the time it took is printed, not asserted: the machine may be shared); `q`
//! quits and ends the command; `top FILE` shows a finished trace and how it ended. Not on a
//! terminal, `top` prints one line and exits with status 2.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sigtrace_tests::*;

/// A bound on waits, so that a hang fails instead of blocking the suite.
const PATIENCE: Duration = Duration::from_secs(30);

fn tmux(socket: &Path, args: &[&str]) -> Output {
    Command::new("tmux").arg("-S").arg(socket).args(args).output().expect("tmux runs (scripts/install-test-deps.sh installs it)")
}

/// The screen of the session's pane.
fn screen(socket: &Path) -> String {
    String::from_utf8_lossy(&tmux(socket, &["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
}

/// Waits until the screen holds every one of `texts`; returns how long it took.
fn wait_for(socket: &Path, texts: &[&str]) -> Duration {
    let start = Instant::now();
    loop {
        let shown = screen(socket);
        if texts.iter().all(|text| shown.contains(text)) {
            return start.elapsed();
        }
        assert!(start.elapsed() < PATIENCE, "after {PATIENCE:?} the screen does not show {texts:?}:\n{shown}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the session has ended.
fn wait_until_gone(socket: &Path) {
    let start = Instant::now();
    while tmux(socket, &["has-session", "-t", "top"]).status.success() {
        assert!(start.elapsed() < PATIENCE, "top did not quit:\n{}", screen(socket));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `command` (a shell line) in a new detached 120×40 session `top`.
fn start_session(socket: &Path, command: &str) {
    let started = tmux(socket, &["new-session", "-d", "-s", "top", "-x", "120", "-y", "40", command]);
    assert!(started.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&started.stderr));
}

#[test]
fn top_shows_a_running_programs_hot_function_and_quits_on_q() {
    let _guard = beside_others();
    let dir = scratch_dir("top_live");
    let program = compile_c("split", &["-O2", "-fno-omit-frame-pointer", "-g"], &dir);
    let socket = dir.join("tmux.sock");
    let pattern = dir.join("top.%p.sigtrace");
    let command = format!("{} top -o '{}' -- '{}' 60000", sigtrace_cli().display(), pattern.display(), program.display());
    start_session(&socket, &command);
    let took = wait_for(&socket, &["heavy", "split (pid", "running", "q quits"]);
    eprintln!("top: heavy shown {took:?} after the session started");
    let shown = screen(&socket);
    eprintln!("{shown}");
    assert!(shown.contains("self%") && shown.contains("threads"), "{shown}");
    // A single-threaded pure loop has no drain thread: its samples come as the handler's
    // spills, before the trace has a module list, and are still named with their module.
    assert!(shown.lines().any(|line| line.contains("heavy") && line.contains("split")), "heavy's row names its module:\n{shown}");

    tmux(&socket, &["send-keys", "-t", "top", "q"]);
    wait_until_gone(&socket);
    // The command was ended with top: its trace says so.
    let traces: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "sigtrace")).collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    let info = info_json(&traces[0]);
    assert!(info["end"].as_str().is_some_and(|end| end.contains("SIGTERM")), "{info}");

    // `top FILE` on the finished trace: its functions, and how it ended.
    let command = format!("{} top '{}'", sigtrace_cli().display(), traces[0].display());
    start_session(&socket, &command);
    wait_for(&socket, &["heavy", "ended"]);
    tmux(&socket, &["send-keys", "-t", "top", "q"]);
    wait_until_gone(&socket);
}

#[test]
fn top_without_a_terminal_says_so_in_one_line_and_exits_2() {
    let _guard = beside_others();
    let output = cli(&["top", "no-such.sigtrace"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("sigtrace: top draws on a terminal"), "{stderr}");
    assert!(output.stdout.is_empty());
}
