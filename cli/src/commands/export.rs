//! `sigtrace export`: loads trace files into one profile and writes it in the format asked
//! for, with the exporter of that format (`crate::export`).

use std::path::{Path, PathBuf};

use crate::export::write;
use crate::profile::{load_profile, ProfileOptions};
use crate::symbolize::Symbolizer;
use crate::time_window::WindowArgs;

pub use crate::export::folded::Grouping;
pub use crate::export::{ExportOptions, Format};

/// Runs `sigtrace export`; returns the exit code.
pub fn run(format: Format, options: &ExportOptions, output: Option<&Path>, files: &[PathBuf], window: &WindowArgs) -> i32 {
    let window = match crate::time_window::resolve_or_warn(window, files) {
        Ok(window) => window,
        Err(code) => return code,
    };
    let (profile, all_loaded) = load_profile(
        files,
        &mut Symbolizer::new(),
        &ProfileOptions { keep_samples: format.needs_samples(), window, no_python: options.no_python, ..ProfileOptions::default() },
    );
    if profile.processes.is_empty() {
        return 1;
    }
    if let Err(message) = crate::output::write_result_with(output, |out| write(format, profile, options, out)) {
        crate::warn!("{message}");
        return 1;
    }
    i32::from(!all_loaded)
}
