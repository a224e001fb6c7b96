//! The jitdump parser (`format::jitdump`) on any bytes, read whole and as a file that grows a few
//! bytes at a time with the smallest budget: it must not panic, both readings must agree, and
//! what it returns must be no larger than the input allows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = format::jitdump::read_in_steps(data, data.len());
    let step = 1 + data.last().map_or(0, |&b| usize::from(b % 61));
    assert_eq!(format::jitdump::read_in_steps(data, step), whole, "the same records whatever the file's growth");
    // A code load takes 58 bytes at least (its prefix, one byte of name and the NUL), a move 72.
    assert!(whole.0.len() <= data.len() / 58);
    for code in &whole.0 {
        assert!(code.size > 0 && code.start.checked_add(code.size).is_some());
        assert!(code.name.len() <= format::PERF_MAP_LINE_BYTES * 3);
    }
});
