//! The names of a generation's other counters (see docs/FORMAT.md, "Counters"). An absent counter
//! reads as zero.

/// Samples of threads that had no registry slot (the registry was full), in periods.
pub const DROPPED_NO_SLOT: &str = "dropped.no_slot";
/// Threads that got no registry slot.
pub const THREADS_WITHOUT_SLOT: &str = "threads.without_slot";
/// Threads still inside the handler when the generation's wait gave up.
pub const WRITERS_STILL_INSIDE: &str = "generation.writers_still_inside";
/// Replaced unwind tables whose release waits for a completed advance.
pub const SNAPSHOTS_DEFERRED: &str = "unwind.snapshots_deferred";
/// Timers the storm guard re-programmed after a storm.
pub const STORMS_REPROGRAMMED: &str = "timer.storms_reprogrammed";
/// Timers the storm guard stopped after a second storm.
pub const STORMS_SWITCHED_OFF: &str = "timer.storms_switched_off";
/// Threads `SIGTRACE_TIMER=auto` moved to a perf event (they compute).
pub const MOVES_TO_PERF: &str = "timer.moves_to_perf";
/// Threads `SIGTRACE_TIMER=auto` moved to a POSIX timer (their context switches made a perf
/// event dear).
pub const MOVES_TO_POSIX: &str = "timer.moves_to_posix";
/// Annotation events skipped because their thread was already inside the tracer.
pub const ANNOTATIONS_SKIPPED_REENTRANT: &str = "annotations.skipped_reentrant";
/// In the first generation of a rotated file (`SIGTRACE_ROTATE`): the process's CPU time at
/// the end of the previous file, ns (what `process_cpu_ns` counted before this file).
pub const SERIES_CPU_NS_BEFORE: &str = "series.process_cpu_ns_before";
/// CPU time of sigtrace's drain thread so far, ns.
pub const DRAIN_CPU_NS_TOTAL: &str = "drain.cpu_ns_total";
/// Threads whose last known name and CPU time the drain keeps when the generation closes (its
/// live threads: an exited thread's are forgotten once written).
pub const THREADS_KNOWN: &str = "drain.threads_known";
/// Wall-clock mode: stacks of blocked threads walked (a new call site).
pub const WALL_WALKS: &str = "wall.walks";
/// Wall-clock mode: blocked samples that reused a stack walked before.
pub const WALL_REUSED: &str = "wall.reused";
/// Wall-clock mode: walks discarded because the call returned while the stack was read.
pub const WALL_TORN: &str = "wall.torn";
/// Wall-clock mode: blocked threads not sampled because the unwind tables were not ready.
pub const WALL_NOT_READY: &str = "wall.not_ready";
/// Wall-clock mode: threads outside interposed calls classified through `/proc`.
pub const WALL_PROC_READS: &str = "wall.proc_reads";
