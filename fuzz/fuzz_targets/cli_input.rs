//! The CLI's whole input path on any bytes read as a trace file: `info` (text and JSON),
//! `report` (threads, lines, a region) and `export` in every format, through the library
//! functions the commands use. It must not panic; the bytes also get valid framing (`format::crafted::with_valid_framing`).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use sigtrace_cli::Symbolizer;

thread_local! {
    /// Kept across inputs: modules named by the seeds (the traced programs, libc) are read once.
    static SYMBOLIZER: RefCell<Symbolizer> = RefCell::new(Symbolizer::new());
}

fuzz_target!(|data: &[u8]| {
    SYMBOLIZER.with(|symbolizer| {
        let symbolizer = &mut symbolizer.borrow_mut();
        let _ = sigtrace_cli::outputs_of_trace_bytes(data, symbolizer);
        let _ = sigtrace_cli::outputs_of_trace_bytes(&format::crafted::with_valid_framing(data), symbolizer);
    });
});
