//! Pieces of the open generation: after each drain period, what it took from the rings is
//! appended to the trace as a piece chunk (`format::TAG_PIECE`), so that a process ending
//! without any exit path sigtrace can run (Go's raw `exit_group`, `SIGKILL`, the OOM killer)
//! loses at most the samples of one drain period. The generation chunk written at the
//! generation's close holds everything again and supersedes its pieces (docs/FORMAT.md, "Piece").

use crate::generation_builder::{ticks, GenerationBuilder};
use format::{walk, Generation, Module, StackTable, Thread};
use std::collections::HashMap;

/// Where the next piece starts in the open generation's builder.
#[derive(Default)]
pub(crate) struct PieceCursor {
    /// Samples and events of the builder already written in a piece.
    samples_written: usize,
    events_written: usize,
    /// The end of the last piece (or the generation's start), ns.
    start_ns: u64,
    /// The module list's version (`ModuleSnapshots::version`) last written in a chunk.
    modules_written: Option<u64>,
}

/// What a piece takes besides the builder: the module list, thread names, the process's CPU time.
pub(crate) struct PieceContext<'a> {
    pub(crate) sequence: u64,
    pub(crate) now_ns: u64,
    pub(crate) modules_version: u64,
    pub(crate) modules: &'a dyn Fn() -> Vec<Module>,
    /// A thread's last known name and CPU time (empty and 0 when not known yet).
    pub(crate) thread: &'a mut dyn FnMut(u32) -> (String, u64),
    pub(crate) process_cpu_ns: u64,
}

impl PieceCursor {
    /// The cursor of a trace whose first generation opens at `start_ns`.
    pub(crate) fn new(start_ns: u64) -> PieceCursor {
        PieceCursor { start_ns, ..PieceCursor::default() }
    }

    /// A new generation opened at `start_ns` (its builder is empty); the module list was last
    /// written in full with version `modules_written`.
    pub(crate) fn generation_closed(&mut self, start_ns: u64, modules_written: u64) {
        *self = PieceCursor { samples_written: 0, events_written: 0, start_ns, modules_written: Some(modules_written) };
    }

    /// The piece of what `builder` received since the last piece, or `None` when nothing came.
    /// Its stacks are those its samples use, renumbered; its thread table is the builder's
    /// (indices unchanged); its modules are empty when the chunk before holds the same list.
    pub(crate) fn next_piece(&mut self, builder: &GenerationBuilder, context: PieceContext<'_>) -> Option<Generation> {
        let samples = builder.samples.get(self.samples_written..).unwrap_or_default();
        let events = builder.events.get(self.events_written..).unwrap_or_default();
        if samples.is_empty() && events.is_empty() {
            return None;
        }
        let mut stacks = StackTable::new();
        let mut stack_walks = Vec::new();
        let mut renumbered: HashMap<u32, u32> = HashMap::new();
        let mut frames = Vec::with_capacity(64);
        let mut ends = [0u64; walk::END_COUNTERS.len()];
        let mut methods = [0u64; walk::METHOD_COUNTERS.len()];
        let mut piece_samples = Vec::with_capacity(samples.len());
        for sample in samples {
            let walk_code = builder.stack_walks.get(sample.stack as usize).copied().unwrap_or(0);
            let stack = *renumbered.entry(sample.stack).or_insert_with(|| {
                frames.clear();
                frames.extend(builder.stacks.get(sample.stack as usize).into_iter().flatten());
                stack_walks.push(walk_code);
                stacks.push(&frames)
            });
            if let Some(count) = ends.get_mut((walk_code & 0x0f) as usize) {
                *count += 1;
            }
            if let Some(count) = methods.get_mut((walk_code >> 4) as usize) {
                *count += 1;
            }
            piece_samples.push(format::Sample { stack, ..*sample });
        }
        piece_samples.sort_by_key(|sample| sample.time);
        let mut piece_events = events.to_vec();
        piece_events.sort_by_key(|event| event.time);
        let threads = builder
            .thread_tids
            .iter()
            .map(|&tid| {
                let (name, cpu_ns) = (context.thread)(tid);
                Thread { tid, name, cpu_ns, dropped: 0, exited: false }
            })
            .collect();
        let modules = if self.modules_written == Some(context.modules_version) { Vec::new() } else { (context.modules)() };
        let mut counters: Vec<(String, u64)> = walk::END_COUNTERS.iter().zip(ends).map(|(name, count)| (name.to_string(), count)).collect();
        counters.extend(walk::METHOD_COUNTERS.iter().zip(methods).map(|(name, count)| (name.to_string(), count)));
        counters.retain(|(_, count)| *count != 0);
        let piece = Generation {
            sequence: context.sequence,
            start_time: ticks(self.start_ns),
            end_time: ticks(context.now_ns),
            process_cpu_ns: context.process_cpu_ns,
            threads,
            modules,
            stacks,
            samples: piece_samples,
            counters,
            stack_walks,
            events: piece_events,
            // A piece's Python frames name code objects of the generation's table, written
            // with the closing generation only (a recovered piece shows them unnamed).
            python_code: Vec::new(),
        };
        self.samples_written = builder.samples.len();
        self.events_written = builder.events.len();
        self.start_ns = context.now_ns;
        self.modules_written = Some(context.modules_version);
        Some(piece)
    }
}
