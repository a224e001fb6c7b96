//! An idle process writes almost nothing: a generation in which nothing happened (no sample, no
//! event, no thread exited or dropped a sample, no Python code seen) is written without its
//! thread and module tables, which make nearly all of its size and which no record of it uses,
//! nor the drain thread's running CPU total and count of the threads it knows.
//! Readers keep each thread's last CPU time from the generation that last listed it
//! (docs/FORMAT.md), and every generation that has samples carries its full tables, so a reader
//! can still start at any generation that has something to show.

use format::Generation;

/// Empties the thread and module tables of `generation` when nothing happened in it; returns
/// whether it did (the next piece must then carry the module list again).
pub(crate) fn slim_if_idle(generation: &mut Generation) -> bool {
    let idle = generation.samples.is_empty()
        && generation.events.is_empty()
        && generation.python_code.is_empty()
        && generation.stack_walks.is_empty()
        && generation.stacks.is_empty()
        && generation.threads.iter().all(|thread| !thread.exited && thread.dropped == 0);
    if idle {
        generation.threads.clear();
        generation.modules.clear();
        // Running figures, read from the last generation that carries them.
        generation.counters.retain(|(name, _)| name != format::counters::DRAIN_CPU_NS_TOTAL && name != format::counters::THREADS_KNOWN);
    }
    idle
}
