//! Stack walking for the sampling signal handler, and the list of loaded modules.
//!
//! Two halves with different execution contexts:
//! * handler side (async-signal-safe: no allocation, no locks, no panics, no syscalls
//!   except `process_vm_readv` for reads whose bounds are unknown): [`regs`], [`memory`],
//!   [`walk`], [`first_frame`], and the read side of [`code_ranges`];
//! * drain-thread side (may allocate and lock): [`modules`] (which calls `dl_iterate_phdr`,
//!   never to be called from the handler: it takes the loader lock) and the publishing side
//!   of [`code_ranges`].
//!
//! The walk interface ([`walk::walk_stack`]) takes the interrupted registers, a checked view of
//! the thread's stack and the executable ranges, and pushes frames into a caller-supplied
//! sink; a DWARF CFI unwinder slots in behind the same signature.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod code_ranges;
pub mod first_frame;
pub mod memory;
pub mod modules;
pub mod regs;
pub mod walk;

pub use code_ranges::CodeRanges;
pub use memory::{StackBounds, StackMemory};
pub use regs::Regs;
pub use walk::{walk_stack, WalkEnd};
