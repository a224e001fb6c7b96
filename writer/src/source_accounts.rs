//! The `S` chunks: which timer sampled each thread, written beside the generations for the
//! threads whose account changed (docs/FORMAT.md, "Sources").

use format::{encode_chunk, encode_sources, SourceKind, SourceTable, ThreadSource, TAG_SOURCES};
use sigprof::{SourceAccount, TimerSource};
use std::collections::HashMap;

/// The accounts written so far and those changed since.
#[derive(Default)]
pub struct SourceAccounts {
    written: HashMap<u32, ThreadSource>,
    changed: Vec<ThreadSource>,
    written_cost_ns: u64,
}

impl SourceAccounts {
    /// Notes thread `tid`'s account (`exited`: its last one, forgotten once written).
    pub fn note(&mut self, tid: u32, account: SourceAccount, exited: bool) {
        let last = match account.last {
            Some(TimerSource::Perf) => SourceKind::Perf,
            Some(TimerSource::Posix) => SourceKind::Posix,
            Some(TimerSource::Itimer) => SourceKind::Itimer,
            None => SourceKind::None,
        };
        let thread = ThreadSource {
            tid,
            last,
            perf_cpu_ns: account.perf_ns,
            posix_cpu_ns: account.posix_ns,
            moves_to_perf: account.moves_to_perf,
            moves_to_posix: account.moves_to_posix,
            last_move_switch_rate: account.last_move_switch_rate,
        };
        if exited {
            self.written.remove(&tid);
        } else if self.written.get(&tid) == Some(&thread) {
            return;
        } else {
            self.written.insert(tid, thread);
        }
        if last != SourceKind::None {
            self.changed.push(thread);
        }
    }

    /// The chunk of the accounts noted since the last one, if any changed, to be written
    /// before its generation's chunk.
    pub fn take_chunk(&mut self, out: &mut Vec<u8>) {
        let cost = sigprof::switch_cost_ns().unwrap_or(0);
        if self.changed.is_empty() && cost == self.written_cost_ns {
            return;
        }
        self.written_cost_ns = cost;
        let table = SourceTable { switch_cost_ns: cost, threads: std::mem::take(&mut self.changed) };
        encode_chunk(out, TAG_SOURCES, &encode_sources(&table));
    }
}
