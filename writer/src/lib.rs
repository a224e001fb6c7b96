//! The writing side of sigtrace, inside the traced process: the drain thread (`drain`), which
//! empties the sampling rings into the open generation (`generation_builder`), publishes the
//! unwind snapshots the handlers read (`module_snapshots`), samples waiting threads in
//! wall-clock mode (`wall_sampler`) and appends closed generations to the trace file
//! (`trace_file`). The format itself, and everything a reader needs, is the `format` crate.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod drain;
mod generation_builder;
mod module_snapshots;
mod python_frames;
pub mod trace_file;
mod wall_sampler;
