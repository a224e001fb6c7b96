//! The writing side of sigtrace, inside the traced process: the drain thread (`drain`), which
//! empties the sampling rings into the open generation (`generation_builder`), publishes the
//! unwind snapshots the handlers read (`module_snapshots`), samples waiting threads in
//! wall-clock mode (`wall_sampler`) and appends closed generations to the trace file
//! (`trace_file`), with what each drain period took in between (`pieces`) and the names of JIT code
//! (`jit_maps`, `jitdump_reader`); a numbered series of files when they rotate (`rotation`). The format itself, and everything a reader needs, is the `format` crate.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod drain;
mod drain_rounds;
mod generation_builder;
mod idle_generation;
mod jit_maps;
mod jitdump_reader;
mod module_snapshots;
pub use module_snapshots::dwarf_caches_for_new_thread;
pub mod on_program_thread;
pub mod own_file;
mod pieces;
mod python_frames;
pub mod rotation;
mod source_accounts;
pub mod trace_file;
mod wall_sampler;
