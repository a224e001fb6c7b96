//! The sigtrace trace file: its format (encoder and decoder in one place, `format`) and, with
//! the `drain` feature, the background thread that drains the sampling rings and writes closed
//! generations (`drain`, used by the shim inside the traced process).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[doc(hidden)]
pub mod crafted;
pub mod file_name;
#[deny(missing_docs)]
pub mod format;
pub mod stack_table;
pub mod thread_state;
pub mod varint;

#[cfg(feature = "drain")]
pub mod drain;
#[cfg(feature = "drain")]
pub mod trace_file;
#[cfg(feature = "drain")]
pub mod wall_sampler;

pub use format::{read_trace, Chunk, End, EndReason, Event, EventKind, Generation, Header, Module, ReadStop, Sample, Thread, Trace, TraceReader};
pub use stack_table::{Frames, StackNode, StackTable, NO_NODE};
pub use thread_state::{SampleState, ThreadState};
