//! The stress harness in its short mode: every case of `scripts/stress` (many threads or
//! processes started at once, fork storms, exit during dlopen, a daemon closing descriptors,
//! a tight RLIMIT_NOFILE, signal masks, EINTR, Go with cgo and `go build`, seccomp, death by
//! SIGTERM/SIGINT/SIGHUP) a few times at 4000 Hz with 10 ms generations and at the defaults,
//! each run bounded in time and compared with the program's run without the shim.
//! Needs gcc, python3 and golang-go (`scripts/install-test-deps.sh`).

use std::process::Command;

#[test]
fn the_short_stress_run_passes() {
    let _beside_others = sigtrace_tests::beside_others();
    let shim = sigtrace_tests::shim();
    let cli = sigtrace_tests::sigtrace_cli();
    let script = sigtrace_tests::workspace_root().join("scripts/stress");
    let workdir = sigtrace_tests::scratch_dir("stress");
    let output = Command::new("bash")
        .arg(&script)
        .arg("--short")
        .arg("--shim")
        .arg(&shim)
        .arg("--cli")
        .arg(&cli)
        .arg("--workdir")
        .arg(&workdir)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("bash runs scripts/stress");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/stress --short failed ({}); its failed runs are kept in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        workdir.display()
    );
    assert!(stdout.lines().last().is_some_and(|line| line.starts_with("stress: ") && line.ends_with(" 0 failed")), "unexpected output:\n{stdout}");
}
