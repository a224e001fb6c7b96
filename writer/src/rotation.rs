//! Rotation and retention (`SIGTRACE_ROTATE`, `SIGTRACE_KEEP`): at a generation boundary past
//! the rule, the file gets an end record saying it was rotated and the trace goes on in the next
//! file of a numbered series (`format::file_name::rotated`: `app.1234.sigtrace`,
//! `app.1234.r2.sigtrace`, …), which starts with the same header. Each file is a complete trace
//! on its own: generations carry their own thread, module and stack tables. Readers recognise a
//! series by its names and identical headers and read it as one trace.
//!
//! Retention deletes the oldest files beyond the count kept, and only files this process
//! created: each is deleted only while its path still names the file it wrote (device and
//! inode), so a file someone moved there, or replaced, is left alone.

use crate::trace_file::TraceFile;
use std::collections::VecDeque;
use std::ffi::CString;

/// When a file of the series is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Once the file covers this many ns (CLOCK_MONOTONIC).
    Every(u64),
    /// Once the file holds this many bytes.
    Size(u64),
}

/// The series being written.
pub struct Rotation {
    rule: Rule,
    /// Files kept at most (`None`: all).
    keep: Option<u32>,
    /// The first file's path and its final extension: the series' base name.
    base: String,
    extension: String,
    /// The number of the file being written (1: the base).
    number: u32,
    /// When the current file started.
    file_start_ns: u64,
    /// The files written, oldest first, with the identity each had when created (the current
    /// one last).
    written: VecDeque<(String, (u64, u64))>,
}

impl Rotation {
    /// A series whose first file is `first`, opened at `now_ns`.
    pub fn new(rule: Rule, keep: Option<u32>, first: &TraceFile, extension: &str, now_ns: u64) -> Rotation {
        let mut written = VecDeque::new();
        written.push_back((first.path().to_string(), first.identity()));
        Rotation { rule, keep, base: first.path().to_string(), extension: extension.to_string(), number: 1, file_start_ns: now_ns, written }
    }

    /// Whether `file`, started at `file_start_ns`, is due to be closed at `now_ns`.
    pub fn is_due(&self, file: &TraceFile, now_ns: u64) -> bool {
        match self.rule {
            Rule::Every(span_ns) => now_ns.saturating_sub(self.file_start_ns) >= span_ns,
            Rule::Size(bytes) => file.len() >= bytes,
        }
    }

    /// Creates the next file of the series (a taken name gets a counter, as any trace file).
    pub fn next_file(&mut self, now_ns: u64) -> std::io::Result<TraceFile> {
        let number = self.number + 1;
        let file = TraceFile::create_exclusive(&format::file_name::rotated(&self.base, &self.extension, number), &self.extension)?;
        self.number = number;
        self.file_start_ns = now_ns;
        self.written.push_back((file.path().to_string(), file.identity()));
        Ok(file)
    }

    /// Deletes the oldest files beyond the count kept, each only if its path still names the
    /// file written there. Returns the paths deleted.
    pub fn expire(&mut self) -> Vec<String> {
        let Some(keep) = self.keep else { return Vec::new() };
        let mut deleted = Vec::new();
        while self.written.len() > keep.max(1) as usize {
            let Some((path, identity)) = self.written.pop_front() else { break };
            if identity_of_path(&path) == Some(identity) && unlink(&path) {
                deleted.push(path);
            }
        }
        deleted
    }
}

/// The device and inode `path` names now (`stat`, following nothing: `lstat`).
fn identity_of_path(path: &str) -> Option<(u64, u64)> {
    crate::own_file::lstat(path).map(|stat| (stat.st_dev, stat.st_ino))
}

fn unlink(path: &str) -> bool {
    let Ok(name) = CString::new(path) else { return false };
    // SAFETY: unlinks a NUL-terminated path.
    unsafe { libc::unlink(name.as_ptr()) == 0 }
}
