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
//! The one list of the protocol's rules: the other crates' docs refer to it by number. The
//! seqlock is changed only in [`seqlock`] (`enter`, the guard's drop, `reset_after_fork`) and
//! waited on only through [`generation::wait_for_seqlocks`] (the generation advance, `dlclose`
//! in the shim) and the registry's reclamation of free slots.
//! 1. Code reachable from the handler MUST be async-signal-safe: no allocation, no locks, no
//!    I/O, no panicking path, no lazily-initialised thread-locals; `errno` is restored.
//!    Otherwise a sample that lands inside `malloc` or a lock deadlocks or corrupts the host.
//! 2. The handler MUST read `gen` only inside its seqlock critical section, after a `SeqCst`
//!    fence that follows its seqlock increment; the drain thread MUST publish the new `gen`,
//!    then fence, then read the seqlocks ([`seqlock::ThreadSeqlock::enter`],
//!    [`generation::advance_past`]; model-checked in `tests/loom.rs`). Otherwise a sample can
//!    be written into a ring the drain thread believes closed, and is lost or attributed to
//!    the wrong generation.
//! 3. A ring has exactly one producer (its thread: the handler, which cannot nest with itself
//!    as the signal is masked while it runs, or an annotation, which enters the seqlock only
//!    when the thread is not inside it already) and one consumer (the drain thread, or a
//!    single-threaded program's own thread at a safe point: one `Drainer` per traced image,
//!    used under its lock; a forked child abandons the parent's; or the handler's spill, under
//!    invariant 13).
//!    Otherwise records interleave and the ring is corrupt. Debug builds check the consumer
//!    side: an advance and a slot reclaim each hold a [`ConsumerTurn`].
//! 4. The handler is never uninstalled and the registry never freed while a timer could fire;
//!    a slot returns to FREE only when EXITED, with both rings empty and its seqlock even, and
//!    its rings stay mapped for the next thread ([`registry`]). Otherwise a pending signal
//!    meets `SIG_DFL` and kills the host, or a late handler writes into another thread's ring.
//! 5. A full ring drops the sample and counts it (in periods); the handler never waits.
//! 6. Reclamation: anything a handler may be reading (unwind snapshots, module arrays, code
//!    ranges, code that `dlclose` is about to unmap) is released only after a wait that began
//!    after it was unpublished saw every thread outside its critical section
//!    ([`generation::Advance::completed`], [`generation::wait_for_critical_sections`] returning
//!    0). A wait that runs out of patience defers the release; it never goes ahead. Otherwise a
//!    handler reads freed memory and crashes the host. The reader's half is checked by the
//!    compiler: `unwind::Published::current` returns a reference that cannot outlive the
//!    `unwind::CriticalSection` it is given, which a handler gets only from its seqlock guard
//!    ([`seqlock::SeqlockGuard::critical_section`]); anyone else asserts one with an `unsafe`
//!    constructor whose `SAFETY` line says why nothing is freed meanwhile.
//! 7. Everything the handler needs to recognise and re-program a timer is published before the
//!    timer is enabled (its first signal may arrive inside the enabling call), and a thread
//!    signalled far faster than its period is contained ([`timer::ThreadTimer::guard_rate`]).
//!    Otherwise a lost period makes a signal storm that takes the thread's CPU for good.
//! 8. sigtrace's descriptors live at high numbers and are checked to still be ours before any
//!    `write`, `ioctl` or `close` ([`descriptors`]). Otherwise a number the program closed and
//!    reused gets trace bytes written into, or closed under, the program's own file; when the
//!    program took the trace file's number, the trace goes on in a new file under the next free
//!    name.
//! 9. A generation is written with one `write` of its complete chunk, after the advance
//!    guaranteed no thread still writes into it (the `writer` crate; the format is in
//!    docs/FORMAT.md). Otherwise a reader meets a generation with records missing, or a damaged
//!    chunk before the end of the file.
//! 10. Wall-clock mode: a thread's [`blocking::BlockingState`] is written only by the thread
//!     itself (its interposed blocking calls, a few plain stores under a sequence number), and
//!     read by the drain thread, which MUST check the sequence number again after reading the
//!     thread's stack and discard what it read if it moved. A blocked thread is never signalled,
//!     and another thread's stack is read only through `process_vm_readv` (a copy; an unmapped
//!     page is an error, not a fault). Otherwise sigtrace causes `EINTR` in the program, or the
//!     drain thread faults on the stack of a thread that exited meanwhile.
//! 11. Under `SIGTRACE_TIMER=auto` a thread's timer is replaced (perf event ⇄ POSIX timer) only
//!     by that thread itself — its handler or one of its interposed waits, never both at once
//!     — with system calls alone ([`timer::ThreadTimer::adapt`]);
//!     a sample whose signal comes from a source the thread no longer uses is dropped; and
//!     `disarm` from any other thread first stops the moves, after which a move under way
//!     releases what it armed (each source is released by a swap, so only one side closes or
//!     deletes it). Otherwise a stale signal is counted twice, or a timer outlives its slot
//!     and fires into the next thread's.
//! 12. Under `SIGTRACE_DRAIN_THREAD=with-program-threads`, sigtrace MUST NOT start a thread of
//!     its own while the program has one thread: the drain thread starts in the program's
//!     `pthread_create`, before libc's. Until then the drain work runs on the program's thread,
//!     only at safe points (its waiting calls when no handler of the program can be running,
//!     `fork`, `exec`, exit; a fatal signal's flush, with the locks only tried) and never in the
//!     sampling handler. Otherwise `unshare(CLONE_NEWUSER)` fails and programs that count
//!     `/proc/self/task` see a thread they never made.
//! 13. While invariant 12 keeps sigtrace without a thread, the sampling handler MAY consume
//!     its own ring: half full, or 20 ms after its oldest record, it writes the ring's committed
//!     records to the trace file as one spill chunk and hands their room back ([`spill`]).
//!     Only while the shim armed it (one
//!     program thread, no drain thread: disarmed before the drain thread starts and in a forked
//!     child) and while no drain work of sigtrace's runs on the thread ([`spill::ConsumerBusy`],
//!     held by every use of the drainer there), so the ring still has one consumer at a time;
//!     with `writev` at the file's end after the descriptor's identity is checked, never
//!     past `RLIMIT_FSIZE` nor into a deleted file, a failed write cut back; a spill that stops
//!     for a fault records why ([`spill_fault`]) for the drain work to say. Under the same two
//!     conditions the handler MAY enter the Python frames it records into the spill's code
//!     table and copy their code objects into its arena ([`spill_code_table`]), which the drain
//!     takes only while it holds the drainer. Otherwise a single-threaded program that
//!     never reaches a safe point drops every sample past one ring and loses the rest to
//!     `SIGKILL`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod blocking;
mod clock;
mod consumer_turn;
mod descriptors;
mod generation;
mod generation_number;
mod handler;
pub mod program_signals;
mod registry;
mod ring;
mod seqlock;
pub mod spill;
pub mod spill_code_table;
pub mod spill_fault;
mod sync;
mod timer;

// The crate's API: what the shim (start-up, interposed libc functions) and the writer (the drain
// thread) use. The modules stay private; `program_signals` is the one namespace kept, for the
// shim's interposed signal functions (its names read with the prefix: `program_signals::get`).

// The thread registry and its slots (invariants 3 and 4).
pub use registry::{Mode, Registry, SamplerConfig, SlotState, ThreadSlot, UnwindChoice};
// Tracing on and off; the generation advance and the reclamation wait (invariants 2 and 6).
pub use consumer_turn::ConsumerTurn;
pub use generation::{advance, wait_for_critical_sections};
pub use generation_number::{current_generation, start_tracing, switch_off_tracing};
// The sampling signal handler.
pub use handler::{in_signal_handler, install_sampling_handler, process_directed_samples, set_default_action};
// Sampling timers (invariant 7).
pub use timer::{
    itimer_periods_at_process_end, period_ns, refuse_perf_events, reset_itimer_account, set_process_itimer, switch_cost_ns, CountFrom, SourceAccount,
    TimerSource,
};
// What the drain thread reads out of the rings and the blocking calls (invariant 10).
pub use blocking::Blocked;
pub use ring::{ring_words, SampleRecord, RECORD_HEADER_WORDS};
// sigtrace's own descriptors (invariant 8).
pub use descriptors::{
    close_own, descriptor_limit, file_identity, forget_trace_fd_after_fork, is_trace_fd, may_be_moved_descriptor, open_high, set_trace_fd, trace_fd,
};
// Clocks.
pub use clock::{clock_ns, monotonic_ns, thread_cpu_ns};
// The lock-free core on its own, for the model checks (`tests/loom.rs`).
#[cfg(sigtrace_loom)]
pub use {generation::advance_past, ring::SampleRing, seqlock::ThreadSeqlock};
