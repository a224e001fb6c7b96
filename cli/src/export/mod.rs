//! The exporters: a merged, symbolised profile in another tool's format, one exporter per file
//! (the `sigtrace export` command is `commands::export`; `diff` draws with `flamegraph`).

pub mod firefox;
pub mod flamegraph;
pub mod folded;
pub mod otlp;
pub mod pprof;

use clap::ValueEnum;

use crate::profile::Profile;

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
    /// An interactive SVG flame graph (zoom, search); widths are CPU time.
    Flamegraph,
    /// An OpenTelemetry profiles export request (protobuf; the body of `POST /v1development/profiles`),
    /// every sample with its time.
    Otlp,
}

impl Format {
    /// Whether the format needs every sample (with its time), not only the totals per stack.
    pub fn needs_samples(self) -> bool {
        matches!(self, Format::Firefox | Format::Otlp)
    }
}

/// Options of the formats that take some; each format reads only its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// `folded`, `flamegraph`: a root frame per process (`exe (pid)`) and/or per thread (`name (tid)`).
    pub grouping: folded::Grouping,
    /// `flamegraph`: an icicle graph (roots at the top).
    pub icicle: bool,
    /// Raw native stacks: no Python frames in place of the interpreter's.
    pub no_python: bool,
}

/// `profile` in `format`, with the default options.
pub fn render(format: Format, profile: &Profile) -> Vec<u8> {
    render_with(format, profile, &ExportOptions::default())
}

/// `profile` in `format`, with `options`.
pub fn render_with(format: Format, profile: &Profile, options: &ExportOptions) -> Vec<u8> {
    match format {
        Format::Folded => folded::render_grouped(profile, options.grouping).into_bytes(),
        Format::Pprof => pprof::render(profile),
        Format::Firefox => firefox::render(profile),
        Format::Flamegraph => flamegraph::render(profile, flamegraph::FlameOptions { grouping: options.grouping, icicle: options.icicle }),
        Format::Otlp => otlp::render(profile),
    }
}

/// Writes `profile` in `format` to `out`, consuming it: the Firefox profile, the largest result
/// by far (every sample), is built, the samples it was built from are freed, and it is written
/// as it is serialised, never held whole in memory; the OTLP message is built, the profile
/// freed, then it is encoded.
pub fn write(format: Format, profile: Profile, options: &ExportOptions, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    match format {
        Format::Firefox => {
            let built = firefox::build(&profile);
            drop(profile);
            serde_json::to_writer(out, &built).map_err(std::io::Error::from)
        }
        Format::Otlp => otlp::write(profile, out),
        _ => out.write_all(&render_with(format, &profile, options)),
    }
}
