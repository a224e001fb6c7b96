//! Python frames of samples the sampling handler spilled (a single-threaded program under
//! `SIGTRACE_DRAIN_THREAD=with-program-threads` never reaching a safe point): named from the
//! code objects the handler copied while their frames ran (`sigprof::spill_code_table`, the
//! `Q` chunk), with the shares the drained samples of `python_frames` are held to.

use crate::python_frames::{forked_child_keeps_its_python_frames, hot_function_has_its_callers_in_order};
use format::spill_python::{SPILLED_UNNAMED, SPILL_TABLE_FULL};
use sigtrace_tests::{beside_others, counter, read_trace, spill_chunks, total_weight};

const SPILLING: [(&str, &str); 1] = [("SIGTRACE_DRAIN_THREAD", "with-program-threads")];

#[test]
fn a_pure_python_loop_names_its_spilled_python_frames() {
    let _guard = beside_others();
    for (version, trace) in hot_function_has_its_callers_in_order("spilled", &SPILLING) {
        // The loop makes no waiting call: its samples reach the file by spills only.
        let spills = spill_chunks(&trace);
        assert!(spills >= 5, "{version}: {spills} spill chunks in 1 s of a pure loop");
        let read = read_trace(&trace);
        let total = total_weight(&read);
        let unnamed = counter(&read, SPILLED_UNNAMED);
        assert_eq!(counter(&read, SPILL_TABLE_FULL), 0, "{version}: the table overflowed");
        assert!(unnamed * 100 <= total, "{version}: {unnamed} of {total} spilled samples have unnamed Python frames");
    }
}

#[test]
fn a_forked_child_keeps_its_spilled_python_frames() {
    let _guard = beside_others();
    forked_child_keeps_its_python_frames("fork_spilled", &SPILLING);
}
