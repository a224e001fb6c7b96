//! The global trace generation number: what the writers use now. `gen == 0` means tracing is
//! off. The drain thread is the only writer of the generation while tracing runs (the advance,
//! in `generation`); start-up starts it and a fatal error or a forked child switches it off.

use crate::sync::{AtomicU64, Ordering};

#[cfg(not(sigtrace_loom))]
pub(crate) static GENERATION: AtomicU64 = AtomicU64::new(0);
#[cfg(sigtrace_loom)]
loom::lazy_static! {
    pub(crate) static ref GENERATION: AtomicU64 = AtomicU64::new(0);
}

/// The generation writers must use now. Async-signal-safe.
pub fn current_generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Starts generation 1. Start-up only.
pub fn start_tracing() {
    GENERATION.store(1, Ordering::SeqCst);
}

/// Ends tracing at once without waiting (a forked child, a fatal error): later samples are
/// ignored. Any thread; async-signal-safe.
pub fn switch_off_tracing() {
    GENERATION.store(0, Ordering::SeqCst);
}
