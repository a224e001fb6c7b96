//! The sigtrace trace file format: one definition, used by the shim's drain thread to encode and
//! by `sigtrace`, the tests and the fuzz targets to decode.
//!
//! ```text
//! file       := MAGIC (8 bytes "SIGTRACE") VERSION (u16 LE) chunk*
//! chunk      := TAG (1 byte) LEN (u32 LE) PAYLOAD (LEN bytes) CRC32 (u32 LE over TAG, LEN, PAYLOAD)
//! TAG 'H'    := the header, once, first: who was traced and how
//! TAG 'G'    := one generation, self-contained: threads, modules, stacks, samples, counters
//! TAG 'E'    := how the traced image ended (exit, _exit, fatal signal, exec), after its last generation
//! ```
//!
//! The format's rules, byte layout and what a reader does with a damaged tail are in docs/FORMAT.md
//! (at the repository's root): a chunk is written with one `write` (`sigprof` invariant 9), a
//! generation refers to nothing outside itself, and fields are only ever appended.
//!
//! The modules, all behind the flat surface below but for the namespaces of codes and names:
//! `types` (the records and constants), `encode`, `decode`, `stack_tree` (the stack table's
//! encoding), `reader` (chunk by chunk, from any byte source), `stack_table` (stacks in memory),
//! `thread_state` (sample states and call codes), `varint` (varints, the cursor, CRC-32), [`jitdump`] (runtimes' jitdump files),
//! [`walk`] and [`counters`] (codes and counter names), [`file_name`] (names of trace files),
//! and, with the `crafted` feature, [`crafted`] (hostile traces for tests).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]

pub mod counters;
#[cfg(feature = "crafted")]
pub mod crafted;
mod decode;
mod encode;
pub mod file_name;
mod jit_symbols;
pub mod jitdump;
mod pieces;
pub mod python;
mod reader;
pub mod ring_record;
mod sources;
pub mod spill_python;
mod stack_table;
mod stack_tree;
mod thread_state;
mod types;
mod varint;
pub mod walk;

#[cfg(test)]
mod tests;

pub use decode::{decode_end, decode_generation, decode_header};
pub use encode::{encode_chunk, encode_end, encode_generation, encode_header, encode_piece, encode_preamble};
pub use jit_symbols::{decode_jit_symbols, encode_jit_symbols, parse_perf_map_line, JitSymbol, PERF_MAP_LINE_BYTES};
pub use python::{PythonCode, PythonFrame};
pub use reader::{read_trace, Chunk, ReadStop, Trace, TraceReader};
pub use sources::{decode_sources, encode_sources, SourceKind, SourceTable, ThreadSource};
pub use stack_table::{Frames, StackNode, StackTable, NO_NODE};
pub use thread_state::{call_code, call_name, SampleState, ThreadState, CALLS, SYSCALL_CODE_BASE};
pub use types::{
    signal_name, End, EndReason, Event, EventKind, Generation, Header, Module, Sample, Thread, CHUNK_OVERHEAD, FORMAT_VERSION, MAGIC, PREAMBLE_LEN, TAG_END,
    TAG_GENERATION, TAG_HEADER, TAG_JIT_SYMBOLS, TAG_PIECE, TAG_SOURCES,
};
pub use varint::{crc32, Crc32, DecodeError};
