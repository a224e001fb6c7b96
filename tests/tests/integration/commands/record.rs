//! `sigtrace record` as users of `perf record` expect: Ctrl-C, SIGTERM and SIGHUP end the
//! command (once) and still give the summary and the command's status; the output directory is
//! checked before anything runs; taken names keep the extension last; the end message names
//! every file and a `sigtrace report` command that runs as printed.

use sigtrace_tests::*;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A `sigtrace record` started in a process group of its own (as a shell starts a job), its
/// command running (it printed `ready pid=P`).
struct Recording {
    record: Child,
    stdout: BufReader<ChildStdout>,
    /// The recorded command's pid.
    command_pid: i32,
    stderr_path: PathBuf,
}

/// What a finished recording left.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn sigtrace_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|line| line.starts_with("sigtrace: ")).collect()
    }

    /// The files the end message names (`sigtrace: wrote PATH: …`).
    fn files_written(&self) -> Vec<PathBuf> {
        self.stderr
            .lines()
            .filter_map(|line| line.strip_prefix("sigtrace: wrote "))
            .filter_map(|rest| rest.split_once(": "))
            .map(|(path, _)| PathBuf::from(path))
            .collect()
    }

    /// The command after `to see where the time went: `.
    fn report_command(&self) -> &str {
        let prefix = "sigtrace: to see where the time went: ";
        self.stderr.lines().find_map(|line| line.strip_prefix(prefix)).unwrap_or_else(|| panic!("no report command in {}", self.stderr))
    }
}

fn start_recording(dir: &Path, pattern: &str, command: &[&str]) -> Recording {
    let stderr_path = dir.join("record.stderr");
    let mut record = Command::new(sigtrace_cli())
        .args(["record", "-o", pattern, "--"])
        .args(command)
        .current_dir(dir)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("sigtrace record starts");
    let mut stdout = BufReader::new(record.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let command_pid = line.trim().strip_prefix("ready pid=").and_then(|pid| pid.parse().ok()).unwrap_or_else(|| {
        let _ = record.kill();
        panic!("the command did not get ready: {line:?}, {}", std::fs::read_to_string(&stderr_path).unwrap_or_default())
    });
    Recording { record, stdout, command_pid, stderr_path }
}

impl Recording {
    fn record_pid(&self) -> i32 {
        self.record.id() as i32
    }

    /// Sends `signal` to `target` (a pid, or a negated process group id) after the command has
    /// burnt some CPU (so its trace holds samples).
    fn signal(&self, target: i32, signal: i32) {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: test: kill(2) on processes this test started.
        assert_eq!(unsafe { libc::kill(target, signal) }, 0, "kill({target}, {signal})");
    }

    fn finish(mut self) -> Finished {
        let status = self.record.wait().unwrap();
        let mut stdout = String::new();
        self.stdout.read_to_string(&mut stdout).unwrap();
        Finished { code: status.code(), stdout, stderr: std::fs::read_to_string(&self.stderr_path).unwrap() }
    }
}

/// The pids of the processes whose process group is `pgid` (from /proc).
fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name: state ppid pgrp.
            let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
            fields.get(2).and_then(|pgrp| pgrp.parse::<i32>().ok()) == Some(pgid) && fields.first() != Some(&"Z")
        })
        .collect()
}

/// Asserts that no process is left in the groups `pgids` (a process that got the signal may
/// still be on its way out: up to 5 s).
fn assert_groups_empty(pgids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<i32> = pgids.iter().flat_map(|pgid| group_members(*pgid)).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left in groups {pgids:?}: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `sigtrace info --json` on each file: every one is readable and holds samples.
fn assert_readable_with_samples(files: &[PathBuf]) {
    assert!(!files.is_empty());
    for file in files {
        let json = info_json(file);
        assert!(json["samples"].as_u64().unwrap_or(0) > 0, "{}: {json}", file.display());
    }
}

/// Runs the printed report command through the shell, in `dir`; returns its stdout.
fn run_report_command(dir: &Path, command: &str) -> String {
    let output = Command::new("sh").arg("-c").arg(command).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "{command}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn workload(dir: &Path) -> String {
    compile_c("record_target", &["-O2", "-g"], dir).display().to_string()
}

#[test]
fn ctrl_c_to_the_job_ends_the_command_tree_and_record_exits_130_with_its_summary() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-ctrl-c");
    let program = workload(&dir);
    let pattern = dir.join("tree.%p.sigtrace").display().to_string();
    let recording = start_recording(&dir, &pattern, &[&program, "tree"]);
    let (record_pid, command_pid) = (recording.record_pid(), recording.command_pid);
    // A terminal's Ctrl-C: SIGINT to the job's whole process group.
    recording.signal(-record_pid, libc::SIGINT);
    let finished = recording.finish();
    assert_eq!(finished.code, Some(130), "{}", finished.stderr);
    let lines = finished.sigtrace_lines();
    assert!(lines[0].starts_with("sigtrace: recording '") && lines[0].contains(" Hz of CPU time per thread ("), "{lines:?}");
    let files = finished.files_written();
    assert_eq!(files.len(), 2, "the command and its forked child: {}", finished.stderr);
    assert!(finished.stderr.contains(" samples (weight "), "the summary: {}", finished.stderr);
    assert_groups_empty(&[record_pid, command_pid]);
    assert_readable_with_samples(&files);
    let report = run_report_command(&dir, finished.report_command());
    assert!(report.contains("burn"), "{report}");
}

#[test]
fn ctrl_c_reaches_a_command_that_handles_it_exactly_once() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-ctrl-c-once");
    let program = workload(&dir);
    let pattern = dir.join("once.%p.sigtrace").display().to_string();
    let recording = start_recording(&dir, &pattern, &[&program, "count-int"]);
    let record_pid = recording.record_pid();
    recording.signal(-record_pid, libc::SIGINT);
    let finished = recording.finish();
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    assert_eq!(finished.stdout.trim(), "sigint_count=1", "one Ctrl-C, one SIGINT: {}", finished.stderr);
    assert_readable_with_samples(&finished.files_written());
}

#[test]
fn sigterm_and_sighup_to_record_alone_are_passed_on_to_the_command() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-term");
    let program = workload(&dir);
    for (signal, code) in [(libc::SIGTERM, 128 + libc::SIGTERM), (libc::SIGHUP, 128 + libc::SIGHUP), (libc::SIGINT, 128 + libc::SIGINT)] {
        let pattern = dir.join(format!("sig{signal}.%p.sigtrace")).display().to_string();
        let recording = start_recording(&dir, &pattern, &[&program, "burn"]);
        let (record_pid, command_pid) = (recording.record_pid(), recording.command_pid);
        recording.signal(record_pid, signal);
        let finished = recording.finish();
        assert_eq!(finished.code, Some(code), "signal {signal}: {}", finished.stderr);
        let files = finished.files_written();
        assert_eq!(files, vec![dir.join(format!("sig{signal}.{command_pid}.sigtrace"))], "{}", finished.stderr);
        assert_groups_empty(&[record_pid, command_pid]);
        assert_readable_with_samples(&files);
    }
}

#[test]
fn a_command_that_handles_sigterm_and_exits_0_makes_record_exit_0() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-term0");
    let program = workload(&dir);
    let pattern = dir.join("t0.%p.sigtrace").display().to_string();
    let recording = start_recording(&dir, &pattern, &[&program, "term0"]);
    recording.signal(recording.record_pid(), libc::SIGTERM);
    let finished = recording.finish();
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    assert_readable_with_samples(&finished.files_written());
}

#[test]
fn an_output_directory_that_takes_no_files_is_refused_before_the_command_runs() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-bad-dir");
    let program = workload(&dir);
    let marker = dir.join("ran");
    let not_a_directory = dir.join("file");
    std::fs::write(&not_a_directory, b"").unwrap();
    for output in [dir.join("missing/t.%p.sigtrace"), not_a_directory.join("t.%p.sigtrace")] {
        let output = Command::new(sigtrace_cli()).args(["record", "-o", output.to_str().unwrap(), "--", &program, "short"]).arg(&marker).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("sigtrace: cannot record into "), "{stderr}");
        assert!(!marker.exists(), "the command ran");
    }
}

#[test]
fn frequencies_outside_1_to_10000_are_refused_naming_the_flag() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-frequency");
    let program = workload(&dir);
    let marker = dir.join("ran");
    for hz in ["0", "20000", "fast"] {
        let output = Command::new(sigtrace_cli()).args(["record", "-F", hz, "--", &program, "short"]).arg(&marker).current_dir(&dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--frequency"), "{stderr}");
        assert!(!marker.exists(), "the command ran");
    }
}

#[test]
fn an_exec_d_image_takes_the_pid_s_name_with_a_counter_before_the_extension() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-taken");
    let program = workload(&dir);
    let pattern = dir.join("demo.%p.sigtrace").display().to_string();
    let script = format!("exec {program} short");
    let output = Command::new(sigtrace_cli()).args(["record", "-o", &pattern, "--", "sh", "-c", &script]).current_dir(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let pid: u32 = String::from_utf8_lossy(&output.stdout).trim().strip_prefix("ready pid=").and_then(|pid| pid.parse().ok()).expect("ready line");
    let finished = Finished { code: output.status.code(), stdout: String::new(), stderr: stderr.into_owned() };
    let expected = vec![dir.join(format!("demo.{pid}.1.sigtrace")), dir.join(format!("demo.{pid}.sigtrace"))];
    assert_eq!(finished.files_written(), expected, "the shell, then the image it exec'd: {}", finished.stderr);
    assert!(expected.iter().all(|file| file.is_file()));
    let command = finished.report_command();
    assert!(expected.iter().all(|file| command.contains(&file.display().to_string())), "{command}");
    assert!(run_report_command(&dir, command).contains("burn"));
    // The README's glob finds both: `info` lists each file it reads.
    let globbed = run_report_command(&dir, &format!("{} info demo.*.sigtrace", sigtrace_cli().display()));
    assert!(expected.iter().all(|file| globbed.contains(&file.file_name().unwrap().to_string_lossy().into_owned())), "{globbed}");
}

#[test]
fn many_files_end_with_a_total_line_and_a_glob_that_matches_exactly_them() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-many");
    let program = workload(&dir);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let pattern = out.join("fan.%p.sigtrace").display().to_string();
    let output = Command::new(sigtrace_cli()).args(["record", "-o", &pattern, "--", &program, "fan", "11"]).current_dir(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let finished = Finished { code: output.status.code(), stdout: String::new(), stderr };
    let files = finished.files_written();
    let on_disk: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().flatten().map(|entry| entry.path()).collect();
    assert_eq!(files.len(), 12, "{}", finished.stderr);
    assert!(on_disk.iter().all(|file| files.contains(file)), "every file written is named: {on_disk:?}");
    let total = finished.stderr.lines().find(|line| line.contains(" files, ")).expect("a total line");
    assert!(total.starts_with("sigtrace: 12 files, 12 processes, ") && total.ends_with(" bytes"), "{total}");
    let command = finished.report_command();
    assert!(command.ends_with("/fan.*.sigtrace"), "{command}");
    assert!(run_report_command(&dir, command).contains("burn"));
}

/// A real terminal: `record` leads a session whose controlling terminal is a pseudo-terminal,
/// so it is the foreground job, and typing Ctrl-C (byte 0x03) makes the kernel send SIGINT to
/// that job. The command, in the same job, gets it from the terminal: `record` must not send it
/// again.
#[test]
fn ctrl_c_typed_on_a_terminal_reaches_the_command_exactly_once() {
    // Alone: openpty's descriptors are not close-on-exec, so a program another test started
    // meanwhile would inherit the terminal and keep it open.
    let _alone = alone();
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = scratch_dir("record-pty");
    let program = workload(&dir);
    let pattern = dir.join("pty.%p.sigtrace").display().to_string();
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: test: openpty writes two descriptors into the two ints; the other arguments may be null.
    let opened = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: test: both descriptors were just opened and are owned here only.
    let (master, slave) = unsafe { (std::fs::File::from(OwnedFd::from_raw_fd(master)), OwnedFd::from_raw_fd(slave)) };
    let mut command = Command::new(sigtrace_cli());
    command
        .args(["record", "-o", &pattern, "--", &program, "count-int"])
        .current_dir(&dir)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: test: setsid and ioctl are async-signal-safe system calls; stdin is the terminal by then.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut record = command.spawn().expect("sigtrace record starts");
    drop(command); // closes the parent's copies of the terminal's slave side
    let reader = std::thread::spawn({
        let mut master = master.try_clone().unwrap();
        move || {
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            // Ends with EIO once every slave descriptor is closed.
            while let Ok(n @ 1..) = master.read(&mut buffer) {
                seen.extend_from_slice(&buffer[..n]);
            }
            String::from_utf8_lossy(&seen).into_owned()
        }
    });
    // Type Ctrl-C once the command is running (its `ready` line is on the terminal).
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = record.id();
    let command_running = loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let ready = children.split_whitespace().filter_map(|child| child.parse::<u32>().ok()).any(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // Burning: user CPU time (field 14) past 30 ticks, 300 ms.
            let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
            fields.get(11).and_then(|utime| utime.parse::<u64>().ok()).is_some_and(|utime| utime >= 30)
        });
        if ready || Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(command_running, "the command never ran");
    use std::io::Write;
    (&master).write_all(&[0x03]).unwrap();
    let status = record.wait().unwrap();
    drop(master);
    let seen = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("sigint_count=1"), "one Ctrl-C, one SIGINT: {seen}");
    assert!(seen.contains("sigtrace: wrote "), "{seen}");
}
