//! The jitdump fuzz target's seeds (`fuzz/seeds/jitdump/`: the heads of files CPython 3.13
//! `-X perf_jit` and node `--perf-prof` wrote), and damaged copies of them, read as the target
//! reads them: no panic, the same records whole and growing, names the runtimes gave.

use format::jitdump::read_in_steps;

#[test]
fn seeds_and_damaged_seeds_read_the_same_whole_and_growing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/jitdump");
    let mut seeds = 0;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds/jitdump exists") {
        let bytes = std::fs::read(entry.expect("readable directory").path()).expect("readable seed");
        let (code, error) = read_in_steps(&bytes, bytes.len());
        assert_eq!(error, None);
        assert!(code.iter().any(|c| c.name.starts_with("py::") || c.name.starts_with("Builtin:")), "{code:?}");
        for round in 0..200 {
            let mut damaged = bytes.clone();
            for _ in 0..(round % 5) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % damaged.len();
                damaged[at] = (state >> 32) as u8;
            }
            let whole = read_in_steps(&damaged, damaged.len());
            assert_eq!(read_in_steps(&damaged, 1 + round % 97), whole);
            assert!(whole.0.len() <= damaged.len() / 58);
        }
        seeds += 1;
    }
    assert!(seeds >= 2);
}
