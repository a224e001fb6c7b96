//! Names of JIT-generated code: the trace's JIT symbol chunks, and what the runtime's perf map
//! still on disk (`/tmp/perf-PID.map` of the trace's pid, written to since the trace began)
//! adds after the trace ended (`-XX:+DumpPerfMapAtExit` writes it at exit). Code freed and its
//! address reused is named by time: the symbol read last at or before the generation's end.

use format::{parse_perf_map_line, JitSymbol, TraceReader};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The most bytes read from a perf map found on disk at report time.
const MAP_FILE_BYTES: u64 = 64 << 20;
/// How many symbols starting at or below an address are looked at for one that covers it.
const OVERLAP_SCAN: usize = 256;

/// JIT symbols sorted by start address, for address (and time) lookups.
#[derive(Debug, Default)]
pub struct JitTable {
    symbols: Vec<JitSymbol>,
}

impl JitTable {
    /// The table of `symbols` (any order).
    pub fn new(mut symbols: Vec<JitSymbol>) -> JitTable {
        symbols.sort_by_key(|symbol| (symbol.start, symbol.time));
        JitTable { symbols }
    }

    /// The JIT symbols of the trace file at `path`, plus those of its process's perf map when
    /// that is still on disk: a regular file (never through a link), modified after the trace
    /// began (`start_unix_ns`), read up to [`MAP_FILE_BYTES`]; its symbols count as read after
    /// the trace's end.
    pub fn of_trace_file(path: &Path, pid: u32, start_unix_ns: u64) -> JitTable {
        let mut symbols = std::fs::File::open(path).map(|file| TraceReader::new(std::io::BufReader::new(file)).jit_symbols_only()).unwrap_or_default();
        symbols.extend(JitTable::perf_map_on_disk(pid, start_unix_ns));
        JitTable::new(symbols)
    }

    /// The symbols of `/tmp/perf-PID.map` when it is a regular file modified since the trace
    /// began; empty otherwise. Any bytes give symbols or nothing, never a panic.
    pub fn perf_map_on_disk(pid: u32, start_unix_ns: u64) -> Vec<JitSymbol> {
        let path = format!("/tmp/perf-{pid}.map");
        let Ok(metadata) = std::fs::symlink_metadata(&path) else { return Vec::new() };
        let modified_ns = (metadata.mtime().max(0) as u64).saturating_mul(1_000_000_000).saturating_add(metadata.mtime_nsec().max(0) as u64);
        if !metadata.file_type().is_file() || modified_ns < start_unix_ns {
            return Vec::new();
        }
        let Ok(file) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path) else {
            return Vec::new();
        };
        if !file.metadata().is_ok_and(|opened| opened.file_type().is_file()) {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if file.take(MAP_FILE_BYTES).read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        bytes.split(|&b| b == b'\n').filter_map(|line| parse_perf_map_line(line, u64::MAX)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The symbol that names `address` at `time` (header clock ticks): among those covering it,
    /// the last read at or before `time`, else the first read after. Its index is stable for
    /// the table's life.
    pub fn lookup(&self, address: u64, time: u64) -> Option<(usize, &JitSymbol)> {
        let after = self.symbols.partition_point(|symbol| symbol.start <= address);
        let covering = self.symbols[..after].iter().enumerate().rev().take(OVERLAP_SCAN).filter(|(_, s)| address - s.start < s.size);
        let mut best: Option<(usize, &JitSymbol)> = None;
        for (index, symbol) in covering {
            let better = match best {
                None => true,
                Some((_, chosen)) => match (symbol.time <= time, chosen.time <= time) {
                    (true, true) => symbol.time > chosen.time,
                    (true, false) => true,
                    (false, true) => false,
                    (false, false) => symbol.time < chosen.time,
                },
            };
            if better {
                best = Some((index, symbol));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(time: u64, start: u64, size: u64, name: &str) -> JitSymbol {
        JitSymbol { time, start, size, name: name.into() }
    }

    #[test]
    fn reused_addresses_are_named_by_time() {
        let table = JitTable::new(vec![symbol(10, 0x1000, 0x100, "old"), symbol(50, 0x1000, 0x80, "new"), symbol(5, 0x3000, 0x10, "other")]);
        let name = |address, time| table.lookup(address, time).map(|(_, s)| s.name.clone());
        assert_eq!(name(0x1010, 20).as_deref(), Some("old"));
        assert_eq!(name(0x1010, 60).as_deref(), Some("new"));
        assert_eq!(name(0x10f0, 60).as_deref(), Some("old"), "only the old code covered that address");
        assert_eq!(name(0x1010, 1).as_deref(), Some("old"), "read after the sample: the first one read");
        assert_eq!(name(0x2000, 60), None);
        assert_eq!(name(0x3010, 60), None, "the end is exclusive");
        assert_eq!(name(0, 0), None);
    }
}
