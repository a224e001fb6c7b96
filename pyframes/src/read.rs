//! Reads of interpreter memory that cannot fault: a copy by `process_vm_readv` on the process
//! itself (an unmapped address is an error, `EFAULT`, never a signal), or a plain copy from a
//! range the caller proved mapped.

use std::sync::atomic::{AtomicI32, Ordering};

/// This process's id, for `process_vm_readv` (set at detection and in a forked child: a stale
/// pid would read the parent's memory).
static PID: AtomicI32 = AtomicI32::new(0);

/// Records the process id the reads use. Call at start-up and first thing in a forked child.
pub fn set_pid() {
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
}

/// Copies `out.len()` bytes at `address` of this process into `out`; false when any of them is
/// not readable. One system call. Async-signal-safe.
pub fn copy(address: u64, out: &mut [u8]) -> bool {
    let pid = PID.load(Ordering::Relaxed);
    if pid == 0 || address == 0 {
        return false;
    }
    let local = libc::iovec { iov_base: out.as_mut_ptr().cast(), iov_len: out.len() };
    let remote = libc::iovec { iov_base: address as *mut libc::c_void, iov_len: out.len() };
    // SAFETY: `local` describes `out`, writable for its length; the remote range is only read by
    // the kernel, which checks it.
    let read = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    read == out.len() as isize
}

/// A `u64` at `offset` of `bytes` (0 when it runs past the end). Async-signal-safe.
#[inline]
pub fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    bytes.get(offset..offset + 8).map_or(0, |b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
}

/// A `u32` at `offset` of `bytes` (0 when it runs past the end). Async-signal-safe.
#[inline]
pub fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    bytes.get(offset..offset + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Copies `out.len()` bytes at `address`, known to lie in mapped memory, into `out`.
/// Async-signal-safe.
///
/// # Safety
/// `[address, address + out.len())` must be mapped and readable for the whole call.
#[inline]
pub unsafe fn copy_mapped(address: u64, out: &mut [u8]) {
    // SAFETY: the caller guarantees the range is mapped; `out` is a distinct local buffer.
    unsafe { std::ptr::copy_nonoverlapping(address as *const u8, out.as_mut_ptr(), out.len()) };
}
