//! The integration suite, one test binary: C workloads compiled at test time, run under
//! `LD_PRELOAD=libsigtrace.so`, and their traces read back (helpers in `tests/lib.rs`).
//!
//! One module per concern. The tests run in parallel threads of this one process: each test
//! that starts a program first takes `alone()` (it measures sigtrace against CPU time, so
//! nothing else runs beside it) or `beside_others()`; see `tests/lib.rs`.
//!
//! Run one module with a filter: `cargo test --release -p sigtrace-tests --test integration
//! sampling_accuracy::`.

// What the profiler measures and records, on C workloads and on real programs.
mod abrupt_end;
mod config_feedback;
mod fault_injection;
mod go_programs;
mod host_behaviour_unchanged;
mod host_under_stress;
mod jit_runtimes;
mod loom_model_checks;
mod pause_resume;
mod process_tree;
mod program_signals;
mod python_fault_reads;
mod python_frames;
mod python_spill;
mod real_programs;
mod rotation;
mod sampling_accuracy;
mod short_threads;
mod single_threaded;
mod stress_script_short;
mod timer_sources;
mod unwinding_without_frame_pointers;
mod wall_mode_accounting;

/// The `sigtrace` commands on real traces: record, info, report, events, diff, the exports.
mod commands {
    mod debuginfod;
    mod diff;
    mod end_to_end;
    mod events;
    mod export_firefox;
    mod export_flamegraph;
    mod export_otlp;
    mod export_pprof;
    mod flame_svg;
    mod hostile_module_paths;
    mod record;
    mod time_windows;
    mod top;
    mod wall_mode;
}

/// The trace format: golden traces, a reader written from docs/FORMAT.md alone, damaged files.
mod trace_format {
    mod damaged_traces;
    mod format_md_reader;
    mod golden_traces;
}
