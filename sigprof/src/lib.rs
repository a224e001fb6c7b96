//! Sampling: timers, the signal handler, the thread registry with per-thread seqlocks, and the
//! per-generation rings.
//!
//! # Design
//! Each sampled thread owns a slot in a fixed-capacity [`registry::Registry`]. Its timer
//! ([`timer`]) sends the sampling signal to that thread after every `1/hz` of its CPU time.
//! The [`handler`] enters the thread's [`seqlock`], reads the global [`generation`] `gen`,
//! walks the stack (the `unwind` crate) straight into `rings[gen % 2]` of the slot
//! ([`ring`]), and leaves the seqlock. The drain thread (crate `writer`) empties the current
//! generation's rings every few milliseconds and, every generation period, advances `gen` and
//! waits for each seqlock to be even or to move before draining the closed generation's rings
//! completely. This is the protocol of Go's execution tracer (trace generations, per-thread
//! seqlocks, two CPU-sample buffers indexed by `gen % 2`).
//!
//! # Invariants
//! 1. Code reachable from the handler MUST be async-signal-safe: no allocation, no locks, no
//!    I/O, no panicking path, no lazily-initialised thread-locals; `errno` is restored.
//!    Otherwise a sample that lands inside `malloc` or a lock deadlocks or corrupts the host.
//! 2. The handler MUST read `gen` only inside its seqlock critical section, and the drain thread
//!    MUST publish the new `gen` before reading the seqlocks (both `SeqCst`). Otherwise a
//!    sample can be written into a ring the drain thread believes closed, and is lost or
//!    attributed to the wrong generation.
//! 3. A ring has exactly one producer (its thread's handler, which cannot nest with itself: the
//!    signal is masked while it runs) and one consumer (the drain thread). Otherwise records
//!    interleave and the ring is corrupt.
//! 4. The handler is never uninstalled and the registry never freed while a timer could
//!    fire. Otherwise a pending signal meets `SIG_DFL` and kills the host.
//! 5. A full ring drops the sample and counts it; the handler never waits.
//! 6. Reclamation: anything a handler may be reading (unwind snapshots, module arrays, code
//!    ranges, code that `dlclose` is about to unmap) is released only after a wait that began
//!    after it was unpublished saw every thread outside its critical section
//!    ([`generation::Advance::completed`], [`generation::wait_for_critical_sections`] returning
//!    0). A wait that runs out of patience defers the release; it never goes ahead. Otherwise a
//!    handler reads freed memory and crashes the host.
//! 7. Everything the handler needs to recognise and re-program a timer is published before the
//!    timer is enabled (its first signal may arrive inside the enabling call), and a thread
//!    signalled far faster than its period is contained ([`timer::ThreadTimer::guard_rate`]).
//!    Otherwise a lost period makes a signal storm that takes the thread's CPU for good.
//! 8. sigtrace's descriptors live at high numbers and are checked to still be ours before any
//!    `write`, `ioctl` or `close` ([`descriptors`]). Otherwise a number the program closed and
//!    reused gets trace bytes written into, or closed under, the program's own file.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod clock;
pub mod descriptors;
pub mod generation;
pub mod handler;
pub mod program_signals;
pub mod registry;
pub mod ring;
pub mod seqlock;
pub mod sync;
pub mod timer;

pub use registry::{Registry, SamplerConfig, ThreadSlot};
pub use timer::TimerSource;
