//! Pieces of an open generation that no generation chunk superseded (the image ended without an
//! exit path): merged into the one generation they stand for (docs/FORMAT.md, "Piece").

use crate::stack_table::StackTable;
use crate::types::{Generation, Module};

/// The most module entries a reader copies into merged pieces that carry none over a whole
/// file: a real trace merges pieces once or twice; a crafted one cannot make the reader copy a
/// large module list once per tiny chunk.
pub(crate) const INHERITED_MODULES_BUDGET: usize = 1 << 16;

/// Merges the held pieces of one open generation (same sequence, file order) into one
/// generation: stacks renumbered into one table, the longest thread table (each piece's is
/// the open generation's so far, a prefix of the next), counters summed, the last module list
/// a piece carried, else `inherited` (the modules of the chunk before them) while `budget`
/// lasts. `None` when there is no piece.
pub(crate) fn merge_pieces(pieces: Vec<Generation>, inherited: &[Module], budget: &mut usize) -> Option<Generation> {
    let first = pieces.first()?;
    let mut merged = Generation { sequence: first.sequence, start_time: first.start_time, ..Generation::default() };
    let mut stacks = StackTable::new();
    let mut frames = Vec::with_capacity(64);
    for piece in pieces {
        let renumbered: Vec<u32> = piece
            .stacks
            .iter()
            .map(|stack| {
                frames.clear();
                frames.extend(stack);
                stacks.push(&frames)
            })
            .collect();
        if piece.stack_walks.len() == renumbered.len() {
            merged.stack_walks.extend_from_slice(&piece.stack_walks);
        } else {
            merged.stack_walks.resize(merged.stack_walks.len() + renumbered.len(), 0);
        }
        merged.samples.extend(piece.samples.into_iter().map(|sample| format_sample(sample, &renumbered)));
        merged.events.extend(piece.events);
        for (name, value) in piece.counters {
            match merged.counters.iter_mut().find(|(known, _)| *known == name) {
                Some((_, total)) => *total = total.saturating_add(value),
                None => merged.counters.push((name, value)),
            }
        }
        if piece.threads.len() >= merged.threads.len() {
            merged.threads = piece.threads;
        }
        if !piece.modules.is_empty() {
            merged.modules = piece.modules;
        }
        merged.end_time = piece.end_time;
        merged.process_cpu_ns = piece.process_cpu_ns;
    }
    if merged.modules.is_empty() && inherited.len() <= *budget {
        *budget -= inherited.len();
        merged.modules = inherited.to_vec();
    }
    merged.stacks = stacks;
    merged.samples.sort_by_key(|sample| sample.time);
    merged.events.sort_by_key(|event| event.time);
    Some(merged)
}

fn format_sample(sample: crate::types::Sample, renumbered: &[u32]) -> crate::types::Sample {
    // The decoder checked that every sample's stack is in its piece's table.
    let stack = renumbered.get(sample.stack as usize).copied().unwrap_or(0);
    crate::types::Sample { stack, ..sample }
}
