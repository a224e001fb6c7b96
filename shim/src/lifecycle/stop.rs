//! The end of a trace: the open generation written with its end record (exit, exec,
//! `_exit`, a sandbox, the last thread leaving), then the state machine set to `Off`.

use crate::lifecycle::state::{self, Lifecycle};
use crate::lifecycle::threads::sample_moments_missed_at_process_end;
use crate::log;
use format::EndReason;
use writer::drain;

/// Writes the open generation and ends tracing (process exit). Only the traced process
/// writes: a forked child leaves its parent's trace alone.
pub fn stop() {
    finish_trace(EndReason::Exit);
}

/// Writes the open generation with the end record `reason` and stops tracing, if this process
/// is the one being traced and tracing runs. Not for the handler.
pub fn finish_trace(reason: EndReason) {
    if !state::is_traced_process() || (state::is_running() && crate::lifecycle::drain_thread::spill_fault_ended_tracing()) {
        return;
    }
    if !state::transition(Lifecycle::Running, Lifecycle::Stopping) {
        return;
    }
    if matches!(reason, EndReason::Exit | EndReason::UnderscoreExit) {
        sample_moments_missed_at_process_end();
    }
    match drain::finish(reason) {
        Ok(Some(path)) => log::info(&format!("wrote {path}")),
        Ok(None) => {}
        // Said as a fault met mid-run is (`state::switch_off`): a single-threaded program
        // without a drain thread meets its file's faults here first.
        Err(message) => log::error(&format!("{message}; sigtrace is off")),
    }
    state::transition(Lifecycle::Stopping, Lifecycle::Off);
}
