//! `sigtrace export`: writes a merged, symbolised profile in another tool's format, one
//! exporter per file.

pub mod firefox;
pub mod folded;
pub mod pprof;

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::profile::{load_profile, Profile, ProfileOptions};
use crate::symbols::Symbolizer;

/// The formats `sigtrace export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Folded stacks (`root;…;leaf WEIGHT`), for flamegraph.pl, inferno, speedscope.
    Folded,
    /// Gzipped pprof `profile.proto`, for `go tool pprof`, Pyroscope, Parca.
    Pprof,
    /// The Firefox Profiler's processed profile (JSON): a timeline per thread, with samples,
    /// regions and log messages; profiler.firefox.com and Perfetto UI open it.
    Firefox,
}

impl Format {
    /// Whether the format needs every sample (with its time), not only the totals per stack.
    pub fn needs_samples(self) -> bool {
        matches!(self, Format::Firefox)
    }
}

/// `profile` in `format`.
pub fn render(format: Format, profile: &Profile) -> Vec<u8> {
    match format {
        Format::Folded => folded::render(profile).into_bytes(),
        Format::Pprof => pprof::render(profile),
        Format::Firefox => firefox::render(profile),
    }
}

/// Runs `sigtrace export`; returns the exit code.
pub fn run(format: Format, output: Option<&Path>, files: &[PathBuf]) -> i32 {
    let (profile, all_loaded) =
        load_profile(files, &mut Symbolizer::new(), &ProfileOptions { keep_samples: format.needs_samples(), ..ProfileOptions::default() });
    if profile.processes.is_empty() {
        return 1;
    }
    let bytes = render(format, &profile);
    if let Err(message) = crate::output::write_result(output, &bytes) {
        crate::warn!("{message}");
        return 1;
    }
    i32::from(!all_loaded)
}
