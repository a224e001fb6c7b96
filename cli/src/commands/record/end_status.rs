//! The end `sigtrace record` writes for its command when the command's process ended without
//! any exit path of its own — a raw `exit_group` such as Go's, `SIGKILL`, the OOM killer — so
//! that its trace says how it ended: the parent alone saw the wait status (docs/FORMAT.md,
//! "End"). Only the trace of the process it started is completed (its pid, the latest image
//! when it exec'd), only when that trace has no end record and reads without damage, and only
//! by appending one chunk to a regular file reached without a link.

use format::{encode_end, End, EndReason, TraceReader};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// The end record the wait status `status` stands for, at `time` (header clock ticks).
pub fn end_from_status(status: ExitStatus, time: u64) -> Option<End> {
    match (status.code(), status.signal()) {
        (Some(code), _) => Some(End { reason: EndReason::UnderscoreExit, signal: 0, time, seen_by_parent: Some(code as u8) }),
        (None, Some(signal)) => Some(End { reason: EndReason::FatalSignal, signal: signal as u32, time, seen_by_parent: Some(0) }),
        (None, None) => None,
    }
}

/// Appends the end `status` stands for to the trace of process `pid` among `files` when that
/// trace ended without an exit path. Returns the file completed, if any.
pub fn complete_trace_of(files: &[PathBuf], pid: u32, status: ExitStatus) -> Option<PathBuf> {
    // The latest image of the process: an exec'd image's trace starts after the one before.
    let (path, header) = files
        .iter()
        .filter_map(|path| {
            let file = std::fs::File::open(path).ok()?;
            let header = TraceReader::new(std::io::BufReader::new(file)).read_with(|_, _, _| {}).header?;
            (header.pid == pid).then_some((path, header))
        })
        .max_by_key(|(_, header)| header.start_clock_ns)?;
    let bytes = std::fs::read(path).ok()?;
    let trace = TraceReader::new(bytes.as_slice()).read_with(|_, _, _| {});
    if !trace.ended_without_exit_path || trace.ignored_bytes != 0 {
        return None;
    }
    let now_ns = monotonic_ns();
    let time = now_ns.max(header.start_clock_ns) / (1_000_000_000 / header.clock_hz.clamp(1, 1_000_000_000));
    let end = end_from_status(status, time)?;
    let mut chunk = Vec::new();
    encode_end(&mut chunk, &end);
    append(path, bytes.len() as u64, &chunk).then(|| path.clone())
}

/// Appends `chunk` in one write to the regular file `path` when it still holds `length` bytes.
fn append(path: &Path, length: u64, chunk: &[u8]) -> bool {
    let Ok(mut file) = std::fs::OpenOptions::new().append(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK).open(path) else {
        return false;
    };
    match file.metadata() {
        Ok(metadata) if metadata.is_file() && metadata.len() == length => file.write_all(chunk).is_ok(),
        _ => false,
    }
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(now.tv_nsec.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_become_ends_seen_by_the_parent() {
        let exit = end_from_status(ExitStatus::from_raw(3 << 8), 7).unwrap();
        assert_eq!((exit.reason, exit.seen_by_parent, exit.time), (EndReason::UnderscoreExit, Some(3), 7));
        let killed = end_from_status(ExitStatus::from_raw(9), 7).unwrap();
        assert_eq!((killed.reason, killed.signal, killed.seen_by_parent), (EndReason::FatalSignal, 9, Some(0)));
        assert!(exit.describe().contains("exit status 3") && killed.describe().contains("SIGKILL"));
    }
}
