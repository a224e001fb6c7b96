//! Interposed `close`, `close_range` and `closefrom`: the program's hands stay off sigtrace's
//! descriptors. Without sigtrace those numbers would not be open, so a `close` of one of them
//! answers `EBADF` without closing it, exactly what the program would see; a range skips them.
//! (`dup2`/`dup3` onto one of them go ahead, as they would without sigtrace: sigtrace then finds
//! the number is no longer its own before it touches it again, see `sigprof::descriptors`.)

use crate::next_fn::NextFn;
use sigprof::{is_trace_fd, may_be_moved_descriptor, trace_fd, Registry};
use std::ffi::{c_int, c_uint};

type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type CloseRangeFn = unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int;

// SAFETY: the types are those of libc's close and close_range.
static REAL_CLOSE: NextFn<CloseFn> = unsafe { NextFn::new(c"close") };
// SAFETY: as above.
static REAL_CLOSE_RANGE: NextFn<CloseRangeFn> = unsafe { NextFn::new(c"close_range") };

/// The most sigtrace descriptors one range call skips (more threads than this keep their
/// perf events closed by the program; their timers are then found gone and forgotten).
const MAX_SKIPPED: usize = 256;

/// True when `fd` is one of sigtrace's open descriptors (the trace file, a thread's perf event).
fn is_sigtrace_descriptor(fd: c_int) -> bool {
    if fd < 0 {
        return false;
    }
    if fd == trace_fd() {
        return is_trace_fd(fd);
    }
    if !may_be_moved_descriptor(fd) {
        return false;
    }
    Registry::get().is_some_and(|registry| registry.live_slots().any(|slot| slot.timer.owns_descriptor(fd)))
}

fn set_errno(value: c_int) {
    // SAFETY: sets this thread's errno.
    unsafe { *libc::__errno_location() = value };
}

/// # Safety
/// Same contract as libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if is_sigtrace_descriptor(fd) {
        set_errno(libc::EBADF);
        return -1;
    }
    let Some(real) = REAL_CLOSE.get() else {
        // SAFETY: the close system call with the caller's argument.
        return unsafe { libc::syscall(libc::SYS_close, fd) } as c_int;
    };
    // SAFETY: forwarding the caller's argument to the real close.
    unsafe { real(fd) }
}

/// # Safety
/// Same contract as libc's `close_range`.
#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let next = REAL_CLOSE_RANGE.get();
    // SAFETY: the close_range system call with the caller's arguments (glibc's function is
    // exactly this).
    let real = |first: c_uint, last: c_uint| -> c_int {
        match next {
            // SAFETY: forwarding the arguments to the real close_range.
            Some(real) => unsafe { real(first, last, flags) },
            // SAFETY: as above.
            None => unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) as c_int },
        }
    };
    if first > last {
        return real(first, last);
    }
    let mut skipped = [0 as c_uint; MAX_SKIPPED];
    let count = own_descriptors_in(first, last, &mut skipped);
    let mut start = first;
    for &own in &skipped[..count] {
        if own > start {
            let result = real(start, own - 1);
            if result != 0 {
                return result;
            }
        }
        start = own.saturating_add(1);
        if own == c_uint::MAX {
            return 0;
        }
    }
    if start <= last && !(count > 0 && skipped[count - 1] == c_uint::MAX) {
        return real(start, last);
    }
    0
}

/// # Safety
/// Same contract as libc's `closefrom`.
#[no_mangle]
pub unsafe extern "C" fn closefrom(lowest: c_int) {
    // SAFETY: our close_range, with the range closefrom means.
    if unsafe { close_range(lowest.max(0) as c_uint, c_uint::MAX, 0) } != 0 {
        // Without close_range (an old kernel): one by one up to the limit, through our close.
        let limit = sigprof::descriptor_limit() as c_int;
        for fd in lowest.max(0)..limit {
            // SAFETY: closing the program's descriptors as closefrom would.
            unsafe { close(fd) };
        }
    }
}

/// sigtrace's descriptors in `[first, last]`, ascending, into `out`; returns how many.
fn own_descriptors_in(first: c_uint, last: c_uint, out: &mut [c_uint; MAX_SKIPPED]) -> usize {
    let mut count = 0;
    let mut add = |fd: c_int| {
        if fd >= 0 && (first..=last).contains(&(fd as c_uint)) && count < MAX_SKIPPED && !out[..count].contains(&(fd as c_uint)) {
            out[count] = fd as c_uint;
            count += 1;
        }
    };
    if is_trace_fd(trace_fd()) {
        add(trace_fd());
    }
    if let Some(registry) = Registry::get() {
        for slot in registry.live_slots() {
            let fd = slot.timer.perf_fd();
            if slot.timer.owns_descriptor(fd) {
                add(fd);
            }
        }
    }
    out[..count].sort_unstable();
    count
}
