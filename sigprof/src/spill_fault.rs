//! Why the sampling handler stopped spilling (invariant 13): a fault of the trace file that the
//! drain, had it met it, would have said in one `sigtrace:` line. The handler cannot say it (no
//! formatting, no allocation there), so it records the reason here, and the next drain work on
//! the program's thread (a safe point, `pthread_create`, exit) takes it and acts as the drain
//! does for the same fault.

use std::sync::atomic::{AtomicI32, Ordering};

/// No fault recorded.
const NONE: i32 = 0;
/// The trace file has no name left (`st_nlink` 0): the drain goes on in a new file.
const DELETED: i32 = -1;

/// The first fault since the last [`take`]: an errno value, or [`DELETED`].
static STOPPED_BECAUSE: AtomicI32 = AtomicI32::new(NONE);

/// Why spilling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillFault {
    /// A write failed or would have crossed `RLIMIT_FSIZE` (`EFBIG`): this errno. The trace
    /// file takes no more; the drain would stop with the same error.
    Write(i32),
    /// The trace file was deleted: the drain notices it at its next generation end and goes on
    /// in a new file, where spills may resume.
    Deleted,
}

/// Records that the handler stopped spilling because of `fault` (the first one is kept).
/// Async-signal-safe.
pub(crate) fn record(fault: SpillFault) {
    let code = match fault {
        SpillFault::Write(errno) => errno.max(1),
        SpillFault::Deleted => DELETED,
    };
    let _ = STOPPED_BECAUSE.compare_exchange(NONE, code, Ordering::SeqCst, Ordering::SeqCst);
}

/// Takes the fault recorded since the last call, if any.
pub fn take() -> Option<SpillFault> {
    match STOPPED_BECAUSE.swap(NONE, Ordering::SeqCst) {
        NONE => None,
        DELETED => Some(SpillFault::Deleted),
        errno => Some(SpillFault::Write(errno)),
    }
}

/// Writes `parts` to `fd` in order with `writev`, going on after a short or interrupted write,
/// until all is written or a write fails. Returns the bytes written and, when not all were,
/// the errno of the failure (`EIO` for a write that made no progress). Async-signal-safe (the
/// caller's errno is saved and restored by the handler).
pub(crate) fn write_parts(fd: i32, parts: &[&[u8]; 4]) -> (usize, i32) {
    let total: usize = parts.iter().map(|part| part.len()).sum();
    let mut done = 0usize;
    while done < total {
        // The parts not yet written whole, the first one from where it was left.
        let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; 4];
        let mut count = 0usize;
        let mut skip = done;
        for part in parts {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            let rest = &part[skip..];
            skip = 0;
            iov[count] = libc::iovec { iov_base: rest.as_ptr() as *mut libc::c_void, iov_len: rest.len() };
            count += 1;
        }
        // SAFETY: writev reads `count` buffers that point into `parts`, alive for the call.
        let written = unsafe { libc::writev(fd, iov.as_ptr(), count as libc::c_int) };
        if written > 0 {
            done += written as usize;
            continue;
        }
        // SAFETY: this thread's errno slot.
        let errno = unsafe { *libc::__errno_location() };
        if written < 0 && errno == libc::EINTR {
            continue;
        }
        return (done, if written < 0 { errno } else { libc::EIO });
    }
    (done, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fault_is_kept_until_taken() {
        assert_eq!(take(), None);
        record(SpillFault::Write(libc::EFBIG));
        record(SpillFault::Deleted);
        assert_eq!(take(), Some(SpillFault::Write(libc::EFBIG)));
        assert_eq!(take(), None);
        record(SpillFault::Deleted);
        assert_eq!(take(), Some(SpillFault::Deleted));
    }

    #[test]
    fn parts_are_written_whole_and_in_order() {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into `fds`.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let parts: [&[u8]; 4] = [b"ab", b"", b"cde", b"f"];
        assert_eq!(write_parts(fds[1], &parts), (6, 0));
        let mut read = [0u8; 8];
        // SAFETY: reads into `read`, then closes our own pipe.
        let got = unsafe { libc::read(fds[0], read.as_mut_ptr().cast(), read.len()) };
        assert_eq!(&read[..got as usize], b"abcdef");
        // SAFETY: closes the read end; a write then fails with EPIPE (SIGPIPE ignored here).
        unsafe {
            libc::close(fds[0]);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        assert_eq!(write_parts(fds[1], &parts), (0, libc::EPIPE));
        // SAFETY: closes our own descriptor.
        unsafe { libc::close(fds[1]) };
    }
}
