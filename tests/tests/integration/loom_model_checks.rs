//! Runs the model checks of the lock-free core (`sigprof/tests/loom.rs`: the ring between its
//! producer and consumer, the seqlock and generation advance between a writer and the drain
//! side) in the suite. They need sigprof built against loom's atomics
//! (`RUSTFLAGS="--cfg sigtrace_loom"`), which is a build of its own, in `target/loom`.

use sigtrace_tests::{beside_others, workspace_root};
use std::process::Command;

#[test]
fn the_ring_and_the_generation_protocol_pass_their_model_checks() {
    let _beside_others = beside_others();
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["test", "--release", "-j2", "-p", "sigtrace-sigprof", "--test", "loom"])
        .current_dir(&root)
        .env("RUSTFLAGS", "--cfg sigtrace_loom")
        .env("CARGO_TARGET_DIR", root.join("target/loom"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the model checks failed:\n{stdout}\n{stderr}");
    for model in ["records_cross_threads_whole_and_in_order", "a_closed_generation_holds_only_its_own_records_and_none_is_lost"] {
        assert!(stdout.contains(&format!("test {model} ... ok")), "{model} did not run:\n{stdout}");
    }
}
