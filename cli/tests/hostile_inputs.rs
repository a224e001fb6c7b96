//! Hostile trace files through everything the CLI reads them with (`info`, `report`,
//! `export`): memory bounded by the file, no panic. Measured with a counting global allocator;
//! the tests run one at a time (a lock) so that their peaks do not mix.

use std::path::Path;

use sigtrace_cli::commands::export::Format;
use sigtrace_cli::commands::info::{render_text, TraceSummary, UnwindStats};
use sigtrace_cli::commands::report::render;
use sigtrace_cli::{Profile, Symbolizer};

#[path = "../../format/tests/support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::{one_at_a_time, with_peak};

#[test]
fn a_deep_chain_of_stacks_is_reported_in_memory_proportional_to_the_file() {
    let _one = one_at_a_time();
    // 10 000 nodes, a stack ending at each and a sample of each: 50 million frames as copies.
    let bytes = format::crafted::deep_chain_trace(10_000, true);
    let (report, peak) = with_peak(|| {
        let loaded = sigtrace_cli::trace_from_bytes(Path::new("chain"), &bytes).expect("a valid trace");
        let mut symbolizer = Symbolizer::new();
        let summary = TraceSummary::of(&loaded);
        let unwinding = UnwindStats::of(&loaded, &mut symbolizer);
        let info = render_text(&loaded, &summary, &unwinding);
        let profile = Profile::build(&[loaded], &mut symbolizer);
        (info, render(&profile, 20, true, true))
    });
    assert!(report.0.contains("10000") || report.0.contains("10 000"), "{}", report.0);
    assert!(report.1.starts_with("10000 samples"), "{}", report.1);
    assert!(peak <= 200 * bytes.len(), "{} bytes read by info and report with {peak} bytes at the peak", bytes.len());
}

#[test]
fn every_command_reads_a_deep_chain() {
    let _one = one_at_a_time();
    // The folded export writes every stack's path: its output (not the reader) is quadratic,
    // so this chain is short.
    let bytes = format::crafted::deep_chain_trace(300, true);
    let outputs = sigtrace_cli::outputs_of_trace_bytes(&bytes, &mut Symbolizer::new()).expect("a valid trace");
    // The exports come last, one per format in `Format`'s order.
    let formats = <Format as clap::ValueEnum>::value_variants();
    let folded = outputs.len() - formats.len() + formats.iter().position(|&f| f == Format::Folded).unwrap();
    assert_eq!(outputs[folded].lines().count(), 300);
}
