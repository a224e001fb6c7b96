//! The `sigtrace` CLI as a library: the commands of `main.rs`, and [`outputs_of_trace_bytes`],
//! which runs every reading command on a trace's bytes without touching stdout (for the fuzz
//! target `cli_input` and the regression tests of hostile inputs).
//!
//! A trace's way through it: `profile` reads trace files into one merged profile, naming each
//! address with `symbolize`; a module of `commands` per subcommand renders it (`export` and
//! `diff` with the exporters of `export`); numbers are written by `format_numbers`, results go
//! out through `output`. Only `commands` is public, with the few types below.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod commands;
mod export;
mod format_numbers;
mod output;
mod profile;
mod progress;
pub mod series;
mod shell_quote;
mod symbolize;
pub mod time_window;

#[cfg(test)]
mod tests;

use std::path::Path;

use clap::ValueEnum;

use crate::commands::{events, info, report};
use crate::profile::LoadedTrace;

pub use crate::profile::{trace_from_bytes, Profile};
pub use crate::symbolize::Symbolizer;

/// What `info` (text and `--json`), `report` (with `--threads`, with `--lines`, with
/// `--by-call`, with `--state blocked`, and with `--region` of the first region the trace
/// names), `events` (text and `--json`) and `export`
/// in every format print for a trace file holding `bytes`, in that order; `Err` with the message
/// `sigtrace` prints when the bytes are not a trace. `symbolizer` is reused so that callers can keep its module cache.
pub fn outputs_of_trace_bytes(bytes: &[u8], symbolizer: &mut Symbolizer) -> Result<Vec<String>, String> {
    let loaded = profile::trace_from_bytes(Path::new("input.sigtrace"), bytes).map_err(|error| error.to_string())?;
    let summary = info::TraceSummary::of(&loaded);
    let unwinding = info::UnwindStats::of(&loaded, symbolizer);
    let mut outputs = vec![info::render_text(&loaded, &summary, &unwinding), info::render_json(&loaded, &summary, &unwinding).to_string()];
    let traces: Vec<LoadedTrace> = vec![loaded];
    // With its samples, for the exporters that draw timelines.
    let profile = Profile::build_with(&traces, symbolizer, &profile::ProfileOptions { keep_samples: true, ..Default::default() });
    outputs.push(report::render(&profile, 20, true, false));
    outputs.push(report::render(&profile, 20, false, true));
    outputs.push(report::render_by_call(&profile, 20, false));
    let blocked = profile::ProfileOptions { state: Some(format::ThreadState::Blocked), ..Default::default() };
    outputs.push(report::render(&Profile::build_with(&traces, symbolizer, &blocked), 20, false, false));
    let region = traces[0].trace.generations.iter().flat_map(|g| &g.events).find(|e| e.kind == format::EventKind::RegionBegin).map(|e| e.text.clone());
    if let Some(region) = region {
        outputs.push(report::render(
            &Profile::build_with(&traces, symbolizer, &profile::ProfileOptions { region: Some(&region), keep_samples: true, ..Default::default() }),
            20,
            false,
            false,
        ));
    }
    let all_events = events::EventFilter::default();
    outputs.extend([events::render_profile(&profile, &all_events, false), events::render_profile(&profile, &all_events, true)]);
    for &format in export::Format::value_variants() {
        outputs.push(String::from_utf8_lossy(&export::render(format, &profile)).into_owned());
    }
    Ok(outputs)
}
