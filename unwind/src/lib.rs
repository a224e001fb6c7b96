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
//! Both walks ([`walk::walk_stack`] by frame pointers, [`dwarf::walk_stack_dwarf`] by CFI) take
//! the interrupted registers and a checked view of the thread's stack, and push frames (leaf
//! first) into a caller-supplied sink; `walk_stack::WalkStack` runs the DWARF walk on a stack
//! of sigtrace's own.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod cache_pool;
mod cfi_coverage;
mod code_ranges;
mod dwarf;
mod first_frame;
mod memory;
mod modules;
mod published;
mod regs;
mod snapshot;
mod startup_objects;
mod walk;
mod walk_stack;

// The crate's API. Handler side: registers, stack memory, the two walks, the DWARF cache pool,
// published values read inside a critical section.
pub use cache_pool::CachePool;
pub use dwarf::{walk_dwarf_with_reads, walk_stack_dwarf, DwarfCache};
pub use memory::{read_word_via_kernel, StackBounds, StackMemory};
pub use published::{CriticalSection, Published};
pub use regs::{regs_from_ucontext, Regs};
pub use walk::{walk_stack, WalkEnd, WalkMethod};
// Drain-thread side: the module list and the unwind tables built from it.
pub use code_ranges::CodeRanges;
pub use modules::{executable_path, load_counters, loaded_modules, startup_objects, LoadedModule, SectionBytes};
pub use snapshot::{UnwindSnapshot, UnwindTables};
