//! Files the drain side holds open for a moment or for a while (`/proc/self/maps`, a runtime's
//! perf map or jitdump) among the host's descriptors.
//!
//! The host may close any descriptor at any moment (a daemon's raw `close_range`) and get the
//! same number back from its next `open` for its own file or socket. So an [`OwnFile`] is moved
//! at once to a high number (the host's `open` takes the lowest free one; the move checks the
//! number against the file at the path: `sigprof::open_high`), and every read and the final
//! close first check that the number still refers to the file opened (device and inode). A number that fails the check is the host's now: it is forgotten, never read from
//! and never closed.

use std::ffi::CString;
use std::io::{Error, ErrorKind, Result};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sigprof::{close_own, file_identity, open_high};

/// The text of a small procfs file (`/proc/self/task/TID/comm`…), read through an [`OwnFile`];
/// invalid UTF-8 replaced. `None` when it cannot be read.
pub fn read_proc_text(path: &str) -> Option<String> {
    let mut bytes = Vec::new();
    OwnFile::open(path, 0).ok()?.read_from(0, 1 << 20, &mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The status of `path` itself (a link is not followed: `lstat`), or `None`.
pub(crate) fn lstat(path: &str) -> Option<libc::stat> {
    let path = std::ffi::CString::new(path).ok()?;
    // SAFETY: stat is plain data; lstat writes it.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` valid for the call.
    (unsafe { libc::lstat(path.as_ptr(), &mut stat) } == 0).then_some(stat)
}

/// A file opened read-only by sigtrace, checked as its own before each use.
pub struct OwnFile {
    fd: i32,
    /// Device and inode of the file opened.
    identity: (u64, u64),
}

impl OwnFile {
    /// Opens `path` read-only with close-on-exec and the `extra_flags` (`O_NOFOLLOW`,
    /// `O_NONBLOCK`…), and moves it to a high number.
    pub fn open(path: impl AsRef<Path>, extra_flags: libc::c_int) -> Result<OwnFile> {
        let path = CString::new(path.as_ref().as_os_str().as_bytes()).map_err(|_| Error::from(ErrorKind::InvalidInput))?;
        let fd = open_high(&path, libc::O_RDONLY | extra_flags, 0)?;
        match file_identity(fd) {
            Some(identity) => Ok(OwnFile { fd, identity }),
            None => Err(Error::from(ErrorKind::NotFound)),
        }
    }

    /// The file's status, if its number still refers to it.
    pub fn metadata(&self) -> Result<libc::stat> {
        // SAFETY: stat is plain data; fstat writes it.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on any number is harmless; `stat` is valid for the call.
        if unsafe { libc::fstat(self.fd, &mut stat) } != 0 || (stat.st_dev, stat.st_ino) != self.identity {
            return Err(self.not_ours());
        }
        Ok(stat)
    }

    /// Reads into `buffer` at `offset` (`pread`), if the number still refers to the file.
    pub fn read_at(&self, buffer: &mut [u8], offset: u64) -> Result<usize> {
        self.metadata()?;
        loop {
            // SAFETY: `buffer` is valid for `buffer.len()` bytes; the descriptor was just checked.
            let read = unsafe { libc::pread(self.fd, buffer.as_mut_ptr().cast(), buffer.len(), offset as libc::off_t) };
            if read >= 0 {
                return Ok(read as usize);
            }
            let error = Error::last_os_error();
            if error.kind() != ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    /// Fills `buffer` from `offset`, or fails.
    pub fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> Result<()> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.read_at(&mut buffer[filled..], offset + filled as u64)? {
                0 => return Err(Error::from(ErrorKind::UnexpectedEof)),
                read => filled += read,
            }
        }
        Ok(())
    }

    /// Appends to `out` what the file holds from `offset`, at most `limit` bytes. Files whose
    /// size reads as 0 (procfs's) are read to their end, in reads of 4 KiB and then doubling.
    pub fn read_from(&self, offset: u64, limit: u64, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let mut chunk = 4096usize;
        loop {
            let done = (out.len() - start) as u64;
            let want = (chunk as u64).min(limit - done) as usize;
            if want == 0 {
                return Ok(());
            }
            let filled = out.len();
            out.resize(filled + want, 0);
            let read = self.read_at(&mut out[filled..], offset + done);
            out.truncate(filled + *read.as_ref().unwrap_or(&0));
            if read? == 0 {
                return Ok(());
            }
            chunk = chunk.saturating_mul(2).min(1 << 20);
        }
    }

    /// The names in the directory this file is (opened with `O_DIRECTORY`), `.` and `..` left
    /// out; the number is checked before each read of entries.
    pub fn entry_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut buffer = [0u64; 512];
        loop {
            self.metadata()?;
            // SAFETY: getdents64 writes at most `size_of_val(&buffer)` bytes into `buffer`; the
            // descriptor was just checked as ours.
            let filled = unsafe { libc::syscall(libc::SYS_getdents64, self.fd, buffer.as_mut_ptr(), std::mem::size_of_val(&buffer)) };
            if filled < 0 {
                return Err(Error::last_os_error());
            }
            if filled == 0 {
                return Ok(names);
            }
            // SAFETY: the kernel initialised `filled` bytes of the buffer.
            let bytes = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), filled as usize) };
            // Each record: inode (8), offset (8), record length (2), type (1), NUL-ended name.
            let mut at = 0;
            while at + 19 <= bytes.len() {
                let length = u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
                let Some(record) = bytes.get(at..at + length).filter(|_| length > 19) else { break };
                let name = &record[19..];
                let name = &name[..name.iter().position(|&byte| byte == 0).unwrap_or(name.len())];
                if name != b"." && name != b".." {
                    names.push(String::from_utf8_lossy(name).into_owned());
                }
                at += length;
            }
        }
    }

    fn not_ours(&self) -> Error {
        Error::new(ErrorKind::NotFound, "the program closed the descriptor and took its number")
    }
}

impl Drop for OwnFile {
    fn drop(&mut self) {
        if file_identity(self.fd) == Some(self.identity) {
            close_own(self.fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_number_the_program_took_over_is_neither_read_nor_closed() {
        let own = OwnFile::open("/proc/self/maps", 0).unwrap();
        let mut maps = Vec::new();
        own.read_from(0, 1 << 20, &mut maps).unwrap();
        assert!(!maps.is_empty(), "procfs files are read to their end");
        // The program closes every descriptor and its next file lands on our number.
        let program = std::fs::File::open("/proc/self/exe").unwrap();
        // SAFETY: dup2 onto our own descriptor's number, as the host's close + open would.
        assert_eq!(unsafe { libc::dup2(program.as_raw_fd(), own.fd) }, own.fd);
        let number = own.fd;
        assert!(own.read_at(&mut [0u8; 16], 0).is_err(), "the program's file is not read");
        drop(own);
        // SAFETY: F_GETFD only asks whether the number is open.
        assert!(unsafe { libc::fcntl(number, libc::F_GETFD) } >= 0, "the program's descriptor stays open");
        // SAFETY: the test's own duplicate.
        unsafe { libc::close(number) };
    }

    #[test]
    fn a_directory_lists_its_entries() {
        let tasks = OwnFile::open("/proc/self/task", libc::O_DIRECTORY).unwrap();
        let names = tasks.entry_names().unwrap();
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() }.to_string();
        assert!(names.contains(&me), "{me} among {names:?}");
        assert!(!names.iter().any(|name| name == "." || name == ".."));
        let many = OwnFile::open("/proc/self/fd", libc::O_DIRECTORY).unwrap().entry_names().unwrap();
        assert!(many.len() >= 3, "{many:?}");
    }

    #[test]
    fn it_is_moved_above_the_numbers_a_program_opens() {
        let own = OwnFile::open("/proc/self/status", 0).unwrap();
        let low = std::fs::File::open("/proc/self/status").unwrap();
        assert!(own.fd > low.as_raw_fd(), "{} above {}", own.fd, low.as_raw_fd());
        let mut buffer = [0u8; 5];
        own.read_exact_at(&mut buffer, 0).unwrap();
        assert_eq!(&buffer, b"Name:");
    }
}
