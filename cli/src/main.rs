//! `sigtrace`: records a command under the LD_PRELOAD shim and reads the traces it writes
//! (`info`, `report`, `export`). Symbolisation happens here, offline, never in the traced process.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sigtrace_cli::commands::{diff, events, export, info, record, report, top};
use sigtrace_cli::time_window::WindowArgs;

#[derive(Debug, Parser)]
#[command(name = "sigtrace", version, about = "A sampling profiler for native Linux programs, by LD_PRELOAD")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run a command with the sampling shim preloaded and keep its trace files.
    Record {
        /// Output file pattern: %p pid, %e executable name, %t start time (Unix s), %% a `%`.
        #[arg(short = 'o', long = "output", value_name = "PATTERN", default_value = config::DEFAULT_OUTPUT)]
        output: String,
        #[arg(short = 'F', long = "frequency", visible_alias = "hz", value_name = "HZ", value_parser = record::number_parser(&config::HZ),
              help = record::number_help("Samples per second of CPU time, per thread", &config::HZ))]
        hz: Option<u32>,
        #[arg(long, value_name = "T", value_parser = record::choice_parser::<config::TimerChoice>(),
              help = record::choice_help::<config::TimerChoice>("The sampling source", "SIGTRACE_TIMER"))]
        timer: Option<config::TimerChoice>,
        #[arg(long, value_name = "MODE", value_parser = record::choice_parser::<config::Mode>(),
              help = record::choice_help::<config::Mode>("What is sampled: cpu, the threads' CPU time; wall, also the wall time of threads waiting for a CPU or blocked in a call", "SIGTRACE_MODE"))]
        mode: Option<config::Mode>,
        #[arg(long, value_name = "HZ", value_parser = record::number_parser(&config::WALL_HZ),
              help = record::number_help("Wall mode: ticks per second at which waiting threads are sampled", &config::WALL_HZ))]
        wall_hz: Option<u32>,
        /// The command to run and its arguments.
        #[arg(value_name = "CMD", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Describe trace files: process, duration, samples, drops, capture ratio, how stacks were unwound.
    Info {
        /// One JSON object per file (an array when several files are given).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        window: WindowArgs,
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// The functions with the most samples (several files are merged).
    Report {
        /// How many functions to show.
        #[arg(long, value_name = "N", default_value_t = 20)]
        top: usize,
        /// Also show the weight of each thread.
        #[arg(long)]
        threads: bool,
        /// One row per function and source line (`file:line`, from DWARF), not per function.
        #[arg(long)]
        lines: bool,
        /// Only samples taken inside the region NAME (`sigtrace_region_begin`).
        #[arg(long, value_name = "NAME")]
        region: Option<String>,
        /// Only samples of threads in this state (wall traces; a cpu trace's are all running).
        #[arg(long, value_enum, value_name = "STATE", conflicts_with = "by_call")]
        state: Option<report::StateFilter>,
        /// The calls threads were blocked in (wall traces): wall time, share, samples, and the
        /// function that made the call most.
        #[arg(long, conflicts_with = "lines")]
        by_call: bool,
        /// Native stacks as walked: the interpreter's frames (`_PyEval_EvalFrameDefault`) are not
        /// replaced by the Python functions they ran.
        #[arg(long)]
        no_python: bool,
        #[command(flatten)]
        window: WindowArgs,
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Thread starts and exits, regions and log messages in time order (several files are merged).
    Events {
        /// Only the events of thread TID (may be repeated).
        #[arg(long = "tid", value_name = "TID")]
        tids: Vec<u32>,
        /// Only events of this kind (may be repeated).
        #[arg(long = "kind", value_enum, value_name = "KIND")]
        kinds: Vec<events::KindFilter>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        window: WindowArgs,
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Convert trace files (merged) to another tool's format.
    Export {
        #[arg(short = 'f', long, value_enum, default_value = "folded")]
        format: export::Format,
        /// Write here instead of to stdout.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// folded, flamegraph: a root frame per thread, `name (tid)` (under its process's with --per-process).
        #[arg(long)]
        per_thread: bool,
        /// folded, flamegraph: a root frame per process, `exe (pid)`.
        #[arg(long)]
        per_process: bool,
        /// flamegraph: an icicle graph (roots at the top, callees below).
        #[arg(long)]
        icicle: bool,
        /// Native stacks as walked: the interpreter's frames (`_PyEval_EvalFrameDefault`) are not
        /// replaced by the Python functions they ran.
        #[arg(long)]
        no_python: bool,
        #[command(flatten)]
        window: WindowArgs,
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// A live view of a trace being written: the hottest functions and each thread's CPU time
    /// over the last seconds, capture and drops (`q` quits). `top FILE`, or `top -- CMD ARGS` to
    /// run a command under the shim and watch it (its output goes to sigtrace-top.PID.log beside its trace).
    Top {
        /// The seconds the view sums over.
        #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86400))]
        seconds: u64,
        /// With `-- CMD`: the output file pattern of its traces (as `record -o`).
        #[arg(short = 'o', long = "output", value_name = "PATTERN", default_value = config::DEFAULT_OUTPUT)]
        output: String,
        /// The trace file to watch.
        #[arg(value_name = "FILE", required_unless_present = "command", conflicts_with = "command")]
        file: Option<PathBuf>,
        /// The command to run and watch, after `--`.
        #[arg(value_name = "CMD", last = true)]
        command: Vec<OsString>,
    },
    /// Compare two profiles: the functions whose share of samples grew or shrank most.
    Diff {
        /// How many functions to show.
        #[arg(long, value_name = "N", default_value_t = 20)]
        top: usize,
        /// Also write a differential flame graph here (widths: NEW; red grew, blue shrank).
        #[arg(long, value_name = "OUT.svg")]
        flamegraph: Option<PathBuf>,
        /// The window applies to each trace apart, counted from its own start.
        #[command(flatten)]
        window: WindowArgs,
        /// The trace before the change.
        #[arg(value_name = "BASE")]
        base: PathBuf,
        /// The trace after the change.
        #[arg(value_name = "NEW")]
        new: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    // A rotated series, however named, is read whole (docs/USAGE.md, "Rotation").
    let series = |files: Vec<std::path::PathBuf>| sigtrace_cli::series::expand(&files);
    let code = match cli.command {
        Commands::Record { output, hz, timer, mode, wall_hz, command } => record::run(&record::RecordOptions { output, hz, timer, mode, wall_hz, command }),
        Commands::Info { json, window, files } => info::run(&series(files), json, &window),
        Commands::Report { region, top, threads, lines, state, by_call, no_python, window, files } => {
            let files = series(files);
            let window = match sigtrace_cli::time_window::resolve_or_warn(&window, &files) {
                Ok(window) => window,
                Err(code) => std::process::exit(code),
            };
            let options = report::ReportOptions { top, threads, lines, by_call, region: region.as_deref(), state: state.map(Into::into), no_python, window };
            report::run(&files, &options)
        }
        Commands::Events { tids, kinds, json, window, files } => events::run(&series(files), &events::EventFilter { tids, kinds }, json, &window),
        Commands::Export { format, output, per_thread, per_process, icicle, no_python, window, files } => {
            let options = export::ExportOptions { grouping: export::Grouping { per_process, per_thread }, icicle, no_python };
            export::run(format, &options, output.as_deref(), &series(files), &window)
        }
        Commands::Top { seconds, output, file, command } => {
            let target = match file {
                Some(file) => top::Target::File(file),
                None => top::Target::Command { command, output },
            };
            top::run(target, seconds)
        }
        Commands::Diff { top, flamegraph, window, base, new } => diff::run(&base, &new, top, flamegraph.as_deref(), &window),
    };
    std::process::exit(code);
}
