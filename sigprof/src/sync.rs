//! The atomics of the lock-free core (the rings, the seqlocks and the generation): std's, or
//! loom's when the crate is built with `RUSTFLAGS="--cfg sigtrace_loom"` to model-check that
//! core (`sigprof/tests/loom.rs`, run by `tests/tests/integration/loom_model_checks.rs`). A cfg of our own, not
//! `loom`, so that no dependency switches to its own loom build.

#[cfg(sigtrace_loom)]
pub use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
#[cfg(not(sigtrace_loom))]
pub use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};

/// Lets other threads run while this one waits (a model-checked yield under loom, where a
/// spinning thread must yield for the model to make progress). Not for the handler.
pub fn yield_now() {
    #[cfg(sigtrace_loom)]
    loom::thread::yield_now();
    #[cfg(not(sigtrace_loom))]
    std::thread::yield_now();
}
