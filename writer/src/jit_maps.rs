//! The runtime's perf map (`/tmp/perf-PID.map`, lines `START SIZE name` in hex), read by the
//! drain thread as it grows — never by the handler — and copied into the trace as JIT symbol
//! chunks. The file belongs to another program: only a regular file owned by our user is read
//! (never through a symbolic link, never blocking), at most [`ROUND_BYTES`] per drain round
//! and [`TOTAL_BYTES`] per trace, lines longer than `format::PERF_MAP_LINE_BYTES` are skipped, and no byte
//! sequence can make it panic or grow without bound.

use crate::own_file::{lstat, OwnFile};
use format::{parse_perf_map_line, JitSymbol, PERF_MAP_LINE_BYTES as LINE_BYTES};

/// The most bytes of the map read in one drain round.
pub(crate) const ROUND_BYTES: u64 = 1 << 20;
/// The most bytes of the map read over a whole trace.
pub(crate) const TOTAL_BYTES: u64 = 64 << 20;

/// Where the reading of one perf map stands.
pub(crate) struct PerfMapReader {
    /// The pid whose map this is (a forked child reads its own).
    pid: u32,
    /// (device, inode) of the file read so far; another file under the name starts over.
    identity: Option<(u64, u64)>,
    /// Bytes of the file consumed (complete lines, and skipped parts of long ones).
    offset: u64,
    /// The start of a line whose end was not written yet.
    partial: Vec<u8>,
    /// True while the rest of an over-long line is skipped.
    skipping: bool,
    /// Bytes read over the trace.
    total: u64,
}

impl PerfMapReader {
    pub(crate) fn new(pid: u32) -> PerfMapReader {
        PerfMapReader { pid, identity: None, offset: 0, partial: Vec::new(), skipping: false, total: 0 }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The symbols written to the map since the last call, stamped with `time` (header clock
    /// ticks). Empty when there is no map, it is not a regular file of ours, or the caps are
    /// reached. Drain thread only.
    pub(crate) fn poll(&mut self, time: u64) -> Vec<JitSymbol> {
        let path = format!("/tmp/perf-{}.map", self.pid);
        // One `lstat` (std's `symlink_metadata` may probe for `statx` first).
        let Some(metadata) = lstat(&path) else { return Vec::new() };
        // SAFETY: geteuid has no preconditions.
        let ours = metadata.st_uid == unsafe { libc::geteuid() };
        if metadata.st_mode & libc::S_IFMT != libc::S_IFREG || !ours || self.total >= TOTAL_BYTES {
            return Vec::new();
        }
        let identity = (metadata.st_dev, metadata.st_ino);
        let length = metadata.st_size as u64;
        if self.identity != Some(identity) || length < self.offset {
            *self = PerfMapReader { pid: self.pid, identity: Some(identity), total: self.total, ..PerfMapReader::new(self.pid) };
        }
        if length == self.offset {
            return Vec::new();
        }
        let Ok(file) = OwnFile::open(&path, libc::O_NOFOLLOW | libc::O_NONBLOCK) else {
            return Vec::new();
        };
        match file.metadata() {
            Ok(opened) if opened.st_mode & libc::S_IFMT == libc::S_IFREG && (opened.st_dev, opened.st_ino) == identity => {}
            _ => return Vec::new(),
        }
        let want = ROUND_BYTES.min(TOTAL_BYTES - self.total).min(length - self.offset);
        let mut bytes = Vec::new();
        if file.read_from(self.offset, want, &mut bytes).is_err() {
            return Vec::new();
        }
        self.total += bytes.len() as u64;
        self.offset += bytes.len() as u64;
        self.take_lines(&bytes, time)
    }

    /// Parses the complete lines of `bytes` (after the partial line held before); keeps an
    /// unfinished last line for the next round.
    fn take_lines(&mut self, bytes: &[u8], time: u64) -> Vec<JitSymbol> {
        let mut symbols = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(end);
            rest = &after[1..];
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.partial.is_empty() {
                symbols.extend(parse_perf_map_line(line, time));
            } else {
                self.partial.extend_from_slice(line);
                symbols.extend(parse_perf_map_line(&self.partial, time));
                self.partial.clear();
            }
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > LINE_BYTES {
                self.partial.clear();
                self.skipping = true;
            }
        }
        symbols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_rounds_and_long_lines_are_handled() {
        let mut reader = PerfMapReader::new(1);
        assert!(reader.take_lines(b"1000 10 a\n2000 2", 1).len() == 1);
        let symbols = reader.take_lines(b"0 b\n", 2);
        assert_eq!(symbols.len(), 1);
        assert_eq!((symbols[0].start, symbols[0].size, symbols[0].name.as_str()), (0x2000, 0x20, "b"));
        let long = vec![b'x'; LINE_BYTES + 10];
        assert!(reader.take_lines(&long, 3).is_empty());
        assert!(reader.take_lines(b"more of it\n3000 1 c\n", 4).iter().map(|s| s.name.as_str()).eq(["c"]));
        assert!(reader.partial.len() <= LINE_BYTES);
    }

    #[test]
    fn any_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut reader = PerfMapReader::new(1);
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(state % 200))
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b"0123456789abcdefx \n\xff"[(state % 20) as usize]
                })
                .collect();
            let _ = reader.take_lines(&bytes, 0);
            assert!(reader.partial.len() <= LINE_BYTES);
        }
    }

    #[test]
    fn a_growing_map_of_ours_is_read_incrementally_and_a_symlink_never() {
        let pid = 4_000_000 + std::process::id() % 100_000; // above pid_max: no real process
        let path = format!("/tmp/perf-{pid}.map");
        std::fs::write(&path, "1000 10 first\n2000 10 sec").unwrap();
        let mut reader = PerfMapReader::new(pid);
        assert_eq!(reader.poll(1).iter().map(|s| s.name.clone()).collect::<Vec<_>>(), ["first"]);
        assert!(reader.poll(2).is_empty(), "nothing new");
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"ond\n").unwrap();
        assert_eq!(reader.poll(3).iter().map(|s| (s.name.clone(), s.time)).collect::<Vec<_>>(), [("second".to_string(), 3)]);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(PerfMapReader::new(pid).poll(4).is_empty(), "a symbolic link is not read");
        std::fs::remove_file(&path).unwrap();
    }

    use std::io::Write;
}
