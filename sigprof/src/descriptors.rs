//! sigtrace's descriptors inside the host: where they are placed and how their identity is
//! checked before sigtrace touches them again.
//!
//! The host may close any descriptor (daemons close everything above 2) and get the same number
//! back for its own file or socket. So sigtrace (1) moves each descriptor it keeps to a high
//! number with close-on-exec, away from the low numbers a program's `open` takes, and (2) before
//! every `write`, `ioctl` or `close` checks that the number still refers to its own open file:
//! the device and inode of the trace file, the kernel's event id of a perf event. A descriptor
//! that fails the check is forgotten, never touched again.
//!
//! "High" is measured against the ceiling `min(soft RLIMIT_NOFILE, 4096)`: the kernel's
//! descriptor table grows to the highest number in use and `fork` copies it, so a number near a
//! limit of a million would cost every fork of the program. Per-thread perf events take
//! descriptors only from the band `[ceiling / 2, ceiling - 64)`: a program with a tight limit
//! (under 128) never sees sigtrace take one for a thread (those threads use POSIX CPU timers,
//! which need none), and the last 64 numbers under the limit are always left to the program.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Descriptors kept free for the program just under its soft limit.
pub const HEADROOM: u64 = 64;

/// `_IOR('$', 7, __u64)`: the kernel's unique id of a perf event.
const PERF_EVENT_IOC_ID: libc::c_ulong = 0x8008_2407;

/// The soft `RLIMIT_NOFILE` (1024 when unknown or unlimited beyond reason).
pub fn descriptor_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes `limit`, valid for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur.min(1 << 20)
}

/// The highest numbers sigtrace's descriptors take stay under this.
const MAX_CEILING: u64 = 4096;

/// `min(soft limit, 4096)`: sigtrace's descriptors stay below it.
pub fn descriptor_ceiling() -> u64 {
    descriptor_limit().min(MAX_CEILING)
}

/// The band `[lo, hi)` of numbers a per-thread perf descriptor may take; empty (`lo >= hi`)
/// when the limit is too tight to spare any. From the limit read when the band was last
/// needed (a thread's start pays no `getrlimit`): a caller whose move into the band failed
/// calls [`forget_perf_band`] and asks again, as the program may have changed its limit.
pub fn perf_band() -> (u64, u64) {
    let mut limit = CACHED_LIMIT.load(Ordering::Relaxed);
    if limit == 0 {
        limit = descriptor_limit().max(1);
        CACHED_LIMIT.store(limit, Ordering::Relaxed);
    }
    let ceiling = limit.min(MAX_CEILING);
    (ceiling / 2, ceiling.saturating_sub(HEADROOM))
}

/// The soft `RLIMIT_NOFILE` [`perf_band`] uses; 0 = read it again.
static CACHED_LIMIT: AtomicU64 = AtomicU64::new(0);

/// Makes the next [`perf_band`] read the limit again.
pub fn forget_perf_band() {
    CACHED_LIMIT.store(0, Ordering::Relaxed);
}

/// Why [`move_above`] or [`move_to_top`] gave no descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMoved {
    /// No number was free in the band; the original was closed.
    NoRoom,
    /// The program closed the original number before it moved (a raw `close_range` of a
    /// daemon) and may have taken it back for a file of its own: it is left alone.
    Taken,
}

/// Moves `fd`, a descriptor sigtrace just opened at the lowest free number, to the lowest free
/// number at or above `lo` with close-on-exec, and closes the original. `is_ours` tells whether
/// a number refers to what was opened: the program may close `fd` and get the number back from
/// its own `open` at any moment, before the copy is made or while it is made (the kernel takes
/// the file first, then may grow its table for the new number: a program's `close_range` and
/// `open` fit in between). So the copy and then the original are checked, and a number that is
/// gone or no longer ours is never closed; what remains is the time between the check of the
/// original and its `close`, two system calls. Async-signal-safe when `is_ours` is.
pub fn move_above(fd: i32, lo: u64, hi: u64, is_ours: impl Fn(i32) -> bool) -> Result<i32, NotMoved> {
    if lo >= hi {
        close_if_ours(fd, &is_ours);
        return Err(NotMoved::NoRoom);
    }
    // SAFETY: F_DUPFD_CLOEXEC duplicates the descriptor `fd`; no memory is passed.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, lo as libc::c_int) };
    if high < 0 {
        if last_errno() == libc::EBADF {
            return Err(NotMoved::Taken);
        }
        close_if_ours(fd, &is_ours);
        return Err(NotMoved::NoRoom);
    }
    if !is_ours(high) {
        close_own(high);
        return Err(NotMoved::Taken);
    }
    close_if_ours(fd, &is_ours);
    if high as u64 >= hi {
        close_own(high);
        return Err(NotMoved::NoRoom);
    }
    LOWEST_MOVED.fetch_min(high, Ordering::Relaxed);
    Ok(high)
}

/// Moves `fd` as high as it goes under the ceiling (the trace file, a file read for a while:
/// out of the program's way), checked as in [`move_above`]. Returns the new number, or `fd`
/// itself when it cannot move.
///
/// The free number is found by asking from the top down (`F_GETFD`) before the copy:
/// `F_DUPFD` at a taken number lands on the next free one, above the ceiling, and growing the
/// descriptor table beyond it costs every later `fork` the copy of a larger table, and a
/// multithreaded process an RCU grace period (~16 ms on this VM) at the growth.
pub fn move_to_top(fd: i32, is_ours: impl Fn(i32) -> bool) -> Result<i32, NotMoved> {
    let ceiling = descriptor_ceiling().min(i32::MAX as u64) as i32;
    let mut lo = ceiling - 1;
    let mut taken_in_a_row = 0;
    while lo > fd {
        if is_open(lo) {
            // Past a run of taken numbers (the program's own high descriptors), jump lower.
            taken_in_a_row += 1;
            lo -= if taken_in_a_row < 16 { 1 } else { lo / 8 + 1 };
            continue;
        }
        // SAFETY: duplicates the descriptor `fd`; no memory is passed.
        let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, lo as libc::c_int) };
        if high >= 0 {
            if !is_ours(high) {
                close_own(high);
                return Err(NotMoved::Taken);
            }
            if high >= ceiling {
                // The number was taken in between: try lower.
                close_own(high);
                lo -= 1;
                continue;
            }
            close_if_ours(fd, &is_ours);
            return Ok(high);
        }
        if last_errno() == libc::EBADF {
            return Err(NotMoved::Taken);
        }
        // The limit is lower than it was read: try a lower start.
        lo -= lo / 8 + 1;
    }
    if is_ours(fd) {
        Ok(fd)
    } else {
        Err(NotMoved::Taken)
    }
}

/// True when `fd` is an open descriptor. Async-signal-safe.
fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; any number may be asked.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Opens `path` with `flags` (close-on-exec added) and moves it to the top ([`move_to_top`]),
/// checked to be the file at `path`. When the program took the number in between, the file is
/// opened again (without `O_CREAT`, `O_EXCL` or `O_TRUNC`: it is the file made the first
/// time), a few times at most. (A file renamed over `path` right after the `open` reads as
/// taken too: its first descriptor is left open, the safe side of the doubt.)
pub fn open_high(path: &std::ffi::CStr, flags: libc::c_int, mode: libc::mode_t) -> std::io::Result<i32> {
    let mut flags = flags | libc::O_CLOEXEC;
    for _ in 0..4 {
        // SAFETY: `path` is NUL-terminated; the mode is read only with O_CREAT.
        let fd = unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let expected = path_identity(path);
        match move_to_top(fd, |number| expected.is_some() && file_identity(number) == expected) {
            Ok(fd) => return Ok(fd),
            Err(_) => flags &= !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "the program kept taking the number of the file"))
}

/// The device and inode of the file at `path` (links followed), or `None`.
fn path_identity(path: &std::ffi::CStr) -> Option<(u64, u64)> {
    // SAFETY: stat is plain data; stat writes it.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` valid for the call.
    (unsafe { libc::stat(path.as_ptr(), &mut stat) } == 0).then_some((stat.st_dev, stat.st_ino))
}

/// Closes `fd` if `is_ours` says it is sigtrace's. Async-signal-safe when `is_ours` is.
fn close_if_ours(fd: i32, is_ours: &impl Fn(i32) -> bool) {
    if is_ours(fd) {
        close_own(fd);
    }
}

/// The calling thread's `errno`. Async-signal-safe.
fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Closes one of sigtrace's own descriptors with the plain system call: the shim interposes
/// `close` to keep the program's hands off sigtrace's numbers, and must not refuse itself.
/// The caller has checked (or just made) `fd` as its own. Async-signal-safe.
pub fn close_own(fd: i32) {
    // SAFETY: the close system call on a descriptor the caller owns; no memory is passed.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// The lowest number [`move_above`] ever gave a descriptor: no per-thread descriptor of
/// sigtrace's is below it (the interposed `close` passes lower numbers straight on).
static LOWEST_MOVED: AtomicI32 = AtomicI32::new(i32::MAX);

/// True when `fd` may be one of the per-thread descriptors [`move_above`] placed.
pub fn may_be_moved_descriptor(fd: i32) -> bool {
    fd >= LOWEST_MOVED.load(Ordering::Relaxed)
}

/// In a forked child: closes the copy of the parent's trace file descriptor (the child writes a
/// file of its own, or none) and forgets it.
pub fn forget_trace_fd_after_fork() {
    let fd = trace_fd();
    if is_trace_fd(fd) {
        close_own(fd);
    }
    set_trace_fd(-1, (0, 0));
}

/// The trace file's descriptor (-1: none) and its identity, for the interposed `close` to tell
/// sigtrace's number from the program's.
static TRACE_FD: AtomicI32 = AtomicI32::new(-1);
static TRACE_DEVICE: AtomicU64 = AtomicU64::new(0);
static TRACE_INODE: AtomicU64 = AtomicU64::new(0);

/// Records the trace file's descriptor and identity (-1 when it was given up).
pub fn set_trace_fd(fd: i32, identity: (u64, u64)) {
    TRACE_DEVICE.store(identity.0, Ordering::Relaxed);
    TRACE_INODE.store(identity.1, Ordering::Relaxed);
    TRACE_FD.store(fd, Ordering::Release);
}

/// The trace file's descriptor, or -1.
pub fn trace_fd() -> i32 {
    TRACE_FD.load(Ordering::Acquire)
}

/// The device and inode of the trace file. Async-signal-safe.
pub(crate) fn trace_identity() -> (u64, u64) {
    (TRACE_DEVICE.load(Ordering::Relaxed), TRACE_INODE.load(Ordering::Relaxed))
}

/// True when `fd` is the trace file's descriptor and still refers to the trace file.
pub fn is_trace_fd(fd: i32) -> bool {
    fd >= 0 && fd == trace_fd() && file_identity(fd) == Some((TRACE_DEVICE.load(Ordering::Relaxed), TRACE_INODE.load(Ordering::Relaxed)))
}

/// The device and inode `fd` refers to, or `None` if it is not open. Async-signal-safe.
pub fn file_identity(fd: i32) -> Option<(u64, u64)> {
    if fd < 0 {
        return None;
    }
    // SAFETY: stat is plain data; fstat writes it.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any number is harmless; `stat` is valid for the call.
    (unsafe { libc::fstat(fd, &mut stat) } == 0).then_some((stat.st_dev, stat.st_ino))
}

/// The kernel's id of the perf event open as `fd`, or `None` when `fd` is not open or not a
/// perf event. Only a file with the device and inode of sigtrace's own perf events
/// (`event_identity`, the kernel's shared anonymous inode) is asked, so the request never
/// reaches a program's device, socket or regular file; other anonymous-inode files (eventfd,
/// epoll, timerfd) answer ENOTTY to this perf-only request. Async-signal-safe.
pub fn perf_event_id(fd: i32, event_identity: (u64, u64)) -> Option<u64> {
    if file_identity(fd)? != event_identity {
        return None;
    }
    ask_perf_event_id(fd)
}

/// The perf-only id request on `fd`, which the caller has checked has the perf events' identity
/// (or, before that is known, no file type of its own). Async-signal-safe.
pub(crate) fn ask_perf_event_id(fd: i32) -> Option<u64> {
    let mut id = 0u64;
    // SAFETY: PERF_EVENT_IOC_ID writes one u64 into `id`, valid for the call.
    (unsafe { libc::ioctl(fd, PERF_EVENT_IOC_ID, &mut id as *mut u64) } == 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    fn open_raw(path: &str) -> i32 {
        std::fs::File::open(path).unwrap().into_raw_fd()
    }

    fn is_file(identity: (u64, u64)) -> impl Fn(i32) -> bool {
        move |fd| file_identity(fd) == Some(identity)
    }

    #[test]
    fn a_regular_file_is_not_a_perf_event_and_moves_high() {
        let fd = open_raw("/proc/self/exe");
        let identity = file_identity(fd).unwrap();
        assert_eq!(perf_event_id(fd, identity), None, "a file answers no perf event id");
        let (lo, hi) = perf_band();
        let moved = move_above(fd, lo, hi, is_file(identity)).expect("a free number in the band");
        assert!(moved as u64 >= lo && (moved as u64) < hi, "{moved} in {lo}..{hi}");
        assert_eq!(file_identity(moved), Some(identity));
        assert_eq!(file_identity(fd), None, "the original number is closed");
        close_own(moved);
        assert_eq!(file_identity(moved), None);
    }

    #[test]
    fn nothing_moves_into_an_empty_band() {
        let fd = open_raw("/proc/self/exe");
        let identity = file_identity(fd).unwrap();
        assert_eq!(move_above(fd, 10, 10, is_file(identity)), Err(NotMoved::NoRoom));
        assert_eq!(file_identity(fd), None, "closed");
    }

    #[test]
    fn a_number_the_program_took_back_is_neither_moved_nor_closed() {
        type Move = fn(i32, Box<dyn Fn(i32) -> bool>) -> Result<i32, NotMoved>;
        let moves: [Move; 2] = [|fd, is_ours| move_above(fd, perf_band().0, perf_band().1, is_ours), |fd, is_ours| move_to_top(fd, is_ours)];
        for move_it in moves {
            let ours = open_raw("/proc/self/exe");
            let identity = file_identity(ours).unwrap();
            // The program closes the number and gets it back for its own file (at once here,
            // as `dup2` does both).
            let programs = open_raw("/proc/self/cmdline");
            let program_identity = file_identity(programs).unwrap();
            // SAFETY: both descriptors are this test's.
            assert_eq!(unsafe { libc::dup2(programs, ours) }, ours);
            assert_eq!(move_it(ours, Box::new(is_file(identity))), Err(NotMoved::Taken));
            assert_eq!(file_identity(ours), Some(program_identity), "the program's file is still open");
            close_own(ours);
            close_own(programs);
            // Closed and not taken back: nothing to move.
            let ours = open_raw("/proc/self/exe");
            close_own(ours);
            assert_eq!(move_it(ours, Box::new(is_file(identity))), Err(NotMoved::Taken));
        }
    }

    #[test]
    fn files_moved_to_the_top_stay_under_the_ceiling() {
        let identity = file_identity(open_raw("/proc/self/exe")).unwrap();
        let moved: Vec<i32> = (0..3).map(|_| move_to_top(open_raw("/proc/self/exe"), is_file(identity)).unwrap()).collect();
        let ceiling = descriptor_ceiling() as i32;
        assert!(moved.iter().all(|&fd| fd < ceiling && fd >= ceiling - 64), "{moved:?} under {ceiling}");
        moved.iter().for_each(|&fd| close_own(fd));
    }

    #[test]
    fn a_file_opened_high_is_the_file_at_its_path() {
        let fd = open_high(c"/proc/self/exe", libc::O_RDONLY, 0).unwrap();
        assert!(fd as u64 >= descriptor_ceiling() / 2, "{fd} is high");
        assert_eq!(file_identity(fd), path_identity(c"/proc/self/exe"));
        close_own(fd);
    }
}
