//! CPython frames for sigtrace: finding the interpreter ([`runtime`]), reading the interrupted
//! thread's Python stack in the signal handler ([`walk`]; async-signal-safe, fault-proof reads
//! only: [`probe`], [`read`]), and, on the drain thread, naming each code object once ([`resolve`]).
//!
//! Supported: CPython 3.9 to 3.13 ([`layout`]); any other version gives native stacks only.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod layout;
pub mod line_tables;
pub mod probe;
pub mod read;
pub mod record;
pub mod resolve;
pub mod runtime;
pub mod snapshot;
pub mod walk;
mod walk_objects;

pub use record::{RawFrame, MARKER};
pub use resolve::{CodeInfo, Resolver};
pub use runtime::{detect, Detected};
pub use walk::{record_words, walk_python, walk_python_of};

/// Most Python frames one sample records.
pub const MAX_PYTHON_FRAMES: usize = 128;

/// Call first thing in a forked child: reads use the new pid, and the thread-state cache (keyed
/// by tid) starts empty.
pub fn after_fork_in_child() {
    read::set_pid();
    probe::after_fork_in_child();
    walk::forget_thread_states();
}
