//! Every input a fuzz target of `fuzz/` reported for the decoder (`fuzz/regressions/decode/`),
//! run as the target runs it: as it is and with valid framing. None may panic, and each must
//! decode quickly (the targets' limit is 1 s; a generous 10 s here, for loaded machines).

use std::time::{Duration, Instant};

#[test]
fn fuzz_findings_decode_without_panic_in_bounded_time() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/decode");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/decode exists") {
        let path = entry.expect("readable directory").path();
        let bytes = std::fs::read(&path).expect("readable input");
        for input in [bytes.clone(), format::crafted::with_valid_framing(&bytes)] {
            let started = Instant::now();
            let trace = format::read_trace(&input);
            assert!(started.elapsed() < Duration::from_secs(10), "{}: {:?}", path.display(), started.elapsed());
            assert!(trace.ignored_bytes as usize <= input.len());
        }
        inputs += 1;
    }
    assert!(inputs > 0, "no inputs in {}", dir.display());
}
