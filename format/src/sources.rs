//! Which timer sampled each thread (the `S` chunk): the source it was on last, the CPU time
//! each source sampled, and the moves `SIGTRACE_TIMER=auto` made between them, with the
//! context-switch rate that decided the last one (docs/FORMAT.md, "Sources").

use crate::varint::{put_uvarint, Cursor, DecodeError};

/// A thread's sampling source as the file codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// Not armed (the thread was never sampled, or a code this reader does not know).
    #[default]
    None,
    /// A perf task-clock event: the full rate, a cost at each context switch.
    Perf,
    /// A POSIX thread CPU timer: checked on the scheduler tick, no cost per switch.
    Posix,
    /// The process-wide `setitimer(ITIMER_PROF)`.
    Itimer,
}

impl SourceKind {
    /// The kind of a code (unknown codes read as `None`).
    pub fn from_code(code: u64) -> SourceKind {
        match code {
            1 => SourceKind::Perf,
            2 => SourceKind::Posix,
            3 => SourceKind::Itimer,
            _ => SourceKind::None,
        }
    }

    /// The kind's code in the file.
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The name `SIGTRACE_TIMER` gives it.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::None => "none",
            SourceKind::Perf => "perf",
            SourceKind::Posix => "posix",
            SourceKind::Itimer => "itimer",
        }
    }
}

/// One thread's account of its sources, as of the chunk that carries it (the values only grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadSource {
    /// The kernel's thread id.
    pub tid: u32,
    /// The source armed last.
    pub last: SourceKind,
    /// CPU time sampled by a perf event, ns.
    pub perf_cpu_ns: u64,
    /// CPU time sampled by a POSIX timer, ns.
    pub posix_cpu_ns: u64,
    /// Moves `auto` made to a perf event (the thread computed).
    pub moves_to_perf: u32,
    /// Moves `auto` made to a POSIX timer (the thread switched contexts too often for a perf
    /// event to be cheap).
    pub moves_to_posix: u32,
    /// Context switches per second of CPU time in the window that decided the last move.
    pub last_move_switch_rate: u64,
}

/// The sources chunk: the perf event's measured cost per context switch and the threads whose
/// account changed since the previous chunk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceTable {
    /// The perf event's cost per context switch measured in the process, ns (0: never needed).
    pub switch_cost_ns: u64,
    /// The threads' accounts.
    pub threads: Vec<ThreadSource>,
}

impl SourceTable {
    /// Merges a later chunk into this table: each thread's newest account wins.
    pub fn merge(&mut self, later: SourceTable) {
        if later.switch_cost_ns != 0 {
            self.switch_cost_ns = later.switch_cost_ns;
        }
        for thread in later.threads {
            match self.threads.iter_mut().find(|known| known.tid == thread.tid) {
                Some(known) => *known = thread,
                None => self.threads.push(thread),
            }
        }
    }
}

/// The payload of a sources chunk.
pub fn encode_sources(table: &SourceTable) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + table.threads.len() * 12);
    put_uvarint(&mut payload, table.switch_cost_ns);
    put_uvarint(&mut payload, table.threads.len() as u64);
    for thread in &table.threads {
        put_uvarint(&mut payload, thread.tid.into());
        put_uvarint(&mut payload, thread.last.code());
        put_uvarint(&mut payload, thread.perf_cpu_ns);
        put_uvarint(&mut payload, thread.posix_cpu_ns);
        put_uvarint(&mut payload, thread.moves_to_perf.into());
        put_uvarint(&mut payload, thread.moves_to_posix.into());
        put_uvarint(&mut payload, thread.last_move_switch_rate);
    }
    payload
}

/// Decodes a sources chunk's payload.
pub fn decode_sources(payload: &[u8]) -> Result<SourceTable, DecodeError> {
    let mut c = Cursor::new(payload);
    let switch_cost_ns = c.uvarint()?;
    let count = c.count(7)?;
    let mut threads = Vec::with_capacity(count);
    for _ in 0..count {
        threads.push(ThreadSource {
            tid: c.u32_varint()?,
            last: SourceKind::from_code(c.uvarint()?),
            perf_cpu_ns: c.uvarint()?,
            posix_cpu_ns: c.uvarint()?,
            moves_to_perf: c.u32_varint()?,
            moves_to_posix: c.u32_varint()?,
            last_move_switch_rate: c.uvarint()?,
        });
    }
    Ok(SourceTable { switch_cost_ns, threads })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_survives_the_round_trip_and_later_accounts_win() {
        let first =
            SourceTable { switch_cost_ns: 9_100, threads: vec![ThreadSource { tid: 7, last: SourceKind::Posix, posix_cpu_ns: 5, ..Default::default() }] };
        assert_eq!(decode_sources(&encode_sources(&first)).unwrap(), first);
        let mut merged = first.clone();
        let later =
            ThreadSource { tid: 7, last: SourceKind::Perf, perf_cpu_ns: 3, posix_cpu_ns: 5, moves_to_perf: 1, moves_to_posix: 0, last_move_switch_rate: 12 };
        merged.merge(SourceTable { switch_cost_ns: 0, threads: vec![later, ThreadSource { tid: 8, ..Default::default() }] });
        assert_eq!(merged.switch_cost_ns, 9_100);
        assert_eq!(merged.threads, vec![later, ThreadSource { tid: 8, ..Default::default() }]);
        assert!(decode_sources(&[0, 200]).is_err(), "a count larger than the bytes left");
    }
}
