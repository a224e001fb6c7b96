//! Stack walking for the sampling signal handler, and the list of loaded modules.
//!
//! Two halves with different execution contexts:
//! * handler side (async-signal-safe: no allocation, no locks, no panics, no syscalls
//!   except `process_vm_readv` for reads whose bounds are unknown): [`regs`], [`memory`],
//!   [`walk`] (frame pointers), [`first_frame`], [`dwarf::walk_stack_dwarf`] (CFI with
//!   framehop), [`cache_pool::CachePool::claim`], and the read side of [`published`];
//! * drain-thread side (may allocate and lock): [`modules`] (which calls `dl_iterate_phdr`,
//!   never to be called from the handler: it takes the loader lock), [`snapshot`] (builds the
//!   unwinder), and the publishing side of [`published`].
//!
//! The walk interface ([`walk::walk_stack`]) takes the interrupted registers, a checked view of
//! the thread's stack and the executable ranges, and pushes frames into a caller-supplied
//! sink; a DWARF CFI unwinder slots in behind the same signature.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod cache_pool;
pub mod code_ranges;
pub mod dwarf;
pub mod first_frame;
pub mod memory;
pub mod modules;
pub mod published;
pub mod regs;
pub mod snapshot;
pub mod walk;
pub mod walk_stack;

pub use cache_pool::CachePool;
pub use code_ranges::CodeRanges;
pub use memory::{StackBounds, StackMemory};
pub use published::Published;
pub use regs::Regs;
pub use snapshot::{UnwindSnapshot, UnwindTables};
pub use walk::{walk_stack, WalkEnd, WalkMethod};
