//! The trace file inside the host: created exclusively (never truncating or overwriting a
//! file; a taken name gets the next free counter before its extension, `file_name`), kept on a high descriptor number with
//! close-on-exec, and checked to still be ours before every write.
//!
//! The program may close every descriptor (daemons do) and get our number back for its own
//! log file: a write then would put trace bytes into the program's file. So each write first
//! compares the device and inode behind the number with the file we created; a descriptor that
//! fails the check is forgotten, never written or closed again.
//!
//! Writes never signal the host: a write past `RLIMIT_FSIZE` makes the kernel send SIGXFSZ,
//! which kills by default. A write that would cross the limit is not made; SIGXFSZ is also
//! blocked around every write (the limit may change between the check and the write), and one
//! raised by our write is taken back before the mask is restored. A write that fails part-way
//! (a full file system) is cut back, so the file always ends after a complete chunk.

use sigprof::{close_own, file_identity, open_high, set_trace_fd, trace_fd};
use std::ffi::CString;
use std::io::{Error, ErrorKind};

/// An open trace file, owned by the drain side.
pub struct TraceFile {
    fd: i32,
    /// Device and inode of the file we created.
    identity: (u64, u64),
    path: String,
    /// The path asked for (`path` is it or a numbered variant of it) and its final extension.
    requested_path: String,
    extension: String,
    /// Bytes written so far (the file's length: only complete writes are kept).
    len: u64,
    /// True when the new file showed a link count (some file systems report 0 for every file):
    /// only then does a count of 0 mean the file was deleted.
    counts_links: bool,
}

/// What became of the trace file behind our descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Our descriptor still refers to our file, and the file still has a name.
    Intact,
    /// The program closed our descriptor or put another file on its number.
    TakenOver,
    /// Our file has no name left (deleted, or its directory removed): bytes written to it are lost.
    Deleted,
}

impl TraceFile {
    /// Creates `path`, or if taken the first free of its numbered variants (`demo.7.1.sigtrace`,
    /// `demo.7.2.sigtrace`, … with `extension` ".sigtrace": `file_name::numbered`), with `O_EXCL`
    /// and `O_CLOEXEC`, and moves its descriptor as high as the soft `RLIMIT_NOFILE` allows.
    pub fn create_exclusive(path: &str, extension: &str) -> std::io::Result<TraceFile> {
        for attempt in 0..10_000u32 {
            let candidate = if attempt == 0 { path.to_string() } else { format::file_name::numbered(path, extension, attempt) };
            let name = CString::new(candidate.as_str()).map_err(|_| Error::new(ErrorKind::InvalidInput, "the path holds a NUL byte"))?;
            // The flags never truncate an existing file.
            let fd = match open_high(&name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644) {
                Ok(fd) => fd,
                Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            };
            let Some(stat) = fstat(fd) else {
                return Err(Error::other("the new trace file vanished"));
            };
            let identity = (stat.st_dev, stat.st_ino);
            set_trace_fd(fd, identity);
            return Ok(TraceFile {
                fd,
                identity,
                path: candidate,
                requested_path: path.to_string(),
                extension: extension.to_string(),
                len: 0,
                counts_links: stat.st_nlink > 0,
            });
        }
        Err(Error::new(ErrorKind::AlreadyExists, "10000 names with this pattern are taken"))
    }

    /// Creates a new file under the next free name of the path this one was asked for.
    pub fn create_successor(&self) -> std::io::Result<TraceFile> {
        TraceFile::create_exclusive(&self.requested_path, &self.extension)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device and inode of the file created.
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// The descriptor number (for tests and diagnostics).
    pub fn raw_fd(&self) -> i32 {
        self.fd
    }

    /// True while our descriptor number still refers to the file we created.
    pub fn is_intact(&self) -> bool {
        self.fd >= 0 && file_identity(self.fd) == Some(self.identity)
    }

    /// What became of the file: still ours and named, taken over by the program, or deleted.
    /// One `fstat`; while the file is ours, its length is read too (see [`Self::write_checked`]).
    pub fn state(&mut self) -> FileState {
        match fstat(self.fd) {
            Some(stat) if (stat.st_dev, stat.st_ino) == self.identity => {
                // The file's length includes what the sampling handler spilled into it meanwhile
                // (sigprof invariant 13): a failed write is cut back to there.
                self.len = self.len.max(stat.st_size as u64);
                if self.counts_links && stat.st_nlink == 0 {
                    FileState::Deleted
                } else {
                    FileState::Intact
                }
            }
            _ => FileState::TakenOver,
        }
    }

    /// Writes all of `bytes` (retrying interrupted and short writes), after checking that the
    /// descriptor is still ours; a descriptor the program took over is forgotten and the write
    /// fails with `ErrorKind::NotFound`. A write that would cross `RLIMIT_FSIZE` fails with
    /// EFBIG without writing; one that fails part-way is cut back to the file's previous end.
    /// Never raises SIGXFSZ (see the module doc).
    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.state() == FileState::TakenOver {
            self.forget_descriptor();
            return Err(Error::new(ErrorKind::NotFound, "the program closed or replaced the trace file's descriptor"));
        }
        self.write_checked(bytes)
    }

    /// Writes as [`Self::write_all`] does, right after [`Self::state`] found the descriptor
    /// still ours (the check and the length read are not made again).
    pub fn write_checked(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.len.saturating_add(bytes.len() as u64) > file_size_limit() {
            return Err(Error::from_raw_os_error(libc::EFBIG));
        }
        let result = without_sigxfsz(|| write_fully(self.fd, bytes));
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(error) => {
                // SAFETY: truncates our own, just checked, descriptor back to its last complete
                // write, and puts its offset there (the next write, and a spill, append there).
                unsafe {
                    libc::ftruncate(self.fd, self.len as libc::off_t);
                    libc::lseek(self.fd, self.len as libc::off_t, libc::SEEK_SET);
                }
                Err(error)
            }
        }
    }
}

/// The status of the file open as `fd`, or `None` when `fd` is not open.
fn fstat(fd: i32) -> Option<libc::stat> {
    if fd < 0 {
        return None;
    }
    // SAFETY: stat is plain data; fstat writes it (any number is harmless to ask about).
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `stat` is valid for the call.
    (unsafe { libc::fstat(fd, &mut stat) } == 0).then_some(stat)
}

/// Writes all of `bytes` to `fd`, retrying interrupted and short writes.
fn write_fully(fd: i32, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes from our own buffer to the caller's descriptor.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            let error = Error::last_os_error();
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if written == 0 {
            return Err(Error::new(ErrorKind::WriteZero, "the trace file takes no more bytes"));
        }
        bytes = &bytes[written as usize..];
    }
    Ok(())
}

/// The soft `RLIMIT_FSIZE` in bytes (`u64::MAX` when unlimited).
fn file_size_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    limit.rlim_cur
}

/// The kernel's signal mask bit of `signal` (a kernel sigset is one 64-bit word here).
fn signal_bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// Runs `write` with SIGXFSZ blocked on the calling thread; a SIGXFSZ the write raised (it was
/// not pending before) is taken back before the thread's mask is restored, so the program never
/// sees it. Raw system calls: the shim interposes the libc wrappers of the signal mask.
fn without_sigxfsz<T>(write: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let sigxfsz = signal_bit(libc::SIGXFSZ);
    let mut previous: u64 = 0;
    let mut pending: u64 = 0;
    // SAFETY: rt_sigprocmask and rt_sigpending with 8-byte kernel sigsets we own.
    unsafe {
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &sigxfsz as *const u64, &mut previous as *mut u64, 8usize);
        libc::syscall(libc::SYS_rt_sigpending, &mut pending as *mut u64, 8usize);
    }
    let result = write();
    if pending & sigxfsz == 0 && matches!(&result, Err(error) if error.raw_os_error() == Some(libc::EFBIG)) {
        let no_wait = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: takes a pending SIGXFSZ (ours) without waiting; the siginfo is not wanted.
        unsafe { libc::syscall(libc::SYS_rt_sigtimedwait, &sigxfsz as *const u64, std::ptr::null_mut::<libc::siginfo_t>(), &no_wait, 8usize) };
    }
    if previous & sigxfsz == 0 {
        // SAFETY: unblocks SIGXFSZ again, as it was before.
        unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_UNBLOCK, &sigxfsz as *const u64, std::ptr::null_mut::<u64>(), 8usize) };
    }
    result
}

impl TraceFile {
    /// Stops using the descriptor, without closing it (it may be the program's by now).
    fn forget_descriptor(&mut self) {
        if trace_fd() == self.fd {
            set_trace_fd(-1, (0, 0));
        }
        self.fd = -1;
    }
}

impl Drop for TraceFile {
    fn drop(&mut self) {
        if self.is_intact() {
            close_own(self.fd);
        }
        self.forget_descriptor();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sigtrace-trace-file-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn never_overwrites() {
        let dir = scratch("names");
        let path = dir.join("t.sigtrace").to_string_lossy().into_owned();
        let first = TraceFile::create_exclusive(&path, ".sigtrace").unwrap();
        let second = TraceFile::create_exclusive(&path, ".sigtrace").unwrap();
        let third = first.create_successor().unwrap();
        assert_eq!(first.path(), path);
        assert_eq!(second.path(), dir.join("t.1.sigtrace").to_string_lossy());
        assert_eq!(third.path(), dir.join("t.2.sigtrace").to_string_lossy());
        let plain = dir.join("plain").to_string_lossy().into_owned();
        TraceFile::create_exclusive(&plain, "").unwrap();
        assert_eq!(TraceFile::create_exclusive(&plain, "").unwrap().path(), format!("{plain}.1"));
        assert!(TraceFile::create_exclusive(&dir.join("missing/t").to_string_lossy(), "").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_descriptor_the_program_took_over_is_never_written() {
        let dir = scratch("takeover");
        let path = dir.join("t.sigtrace").to_string_lossy().into_owned();
        let mut trace = TraceFile::create_exclusive(&path, ".sigtrace").unwrap();
        assert!(trace.raw_fd() > 2);
        trace.write_all(b"trace").unwrap();
        // The program closes our number and gets it back for its own file.
        let own = dir.join("program.log");
        let program = std::fs::File::create(&own).unwrap();
        let program_fd = std::os::fd::IntoRawFd::into_raw_fd(program);
        // SAFETY: test: puts the program's file on the trace file's number, as dup2 in a host would.
        let moved = unsafe { libc::dup2(program_fd, trace.raw_fd()) };
        assert_eq!(moved, trace.raw_fd());
        assert!(!trace.is_intact());
        assert_eq!(trace.write_all(b"more").unwrap_err().kind(), ErrorKind::NotFound);
        drop(trace);
        assert_eq!(std::fs::read(&own).unwrap(), b"", "nothing written into the program's file");
        assert_eq!(std::fs::read(&path).unwrap(), b"trace");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_deleted_file_is_told_from_an_intact_one() {
        let dir = scratch("deleted");
        let path = dir.join("t.sigtrace").to_string_lossy().into_owned();
        let mut trace = TraceFile::create_exclusive(&path, ".sigtrace").unwrap();
        trace.write_all(b"trace").unwrap();
        assert_eq!(trace.state(), FileState::Intact);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(trace.state(), FileState::Deleted);
        drop(trace);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
