//! Stacks of sigtrace's own for DWARF walks. The sampling handler runs on whatever stack the
//! kernel chose: the thread's own, or its alternate signal stack (`SA_ONSTACK`), which Rust's
//! std and Go make small (8–32 KiB). framehop needs ~20 KiB, so each pooled DWARF cache comes
//! with a stack of [`WALK_STACK_BYTES`] (guard page below it) and the walk runs there.

/// Usable bytes of a walk stack (framehop was measured at ~20 KiB; pages never touched cost
/// only address space).
pub const WALK_STACK_BYTES: usize = 128 * 1024;
const GUARD_BYTES: usize = 4096;

/// One mapped walk stack: a guard page, then [`WALK_STACK_BYTES`] of read-write memory.
pub struct WalkStack {
    base: *mut u8,
}

// SAFETY: the mapping is plain memory; who may run on it is decided by the cache lease that
// owns it (one thread at a time).
unsafe impl Send for WalkStack {}
// SAFETY: as above; the struct itself is immutable.
unsafe impl Sync for WalkStack {}

impl WalkStack {
    /// Maps a walk stack (not in the handler). `None` when memory cannot be mapped.
    pub fn map() -> Option<WalkStack> {
        // SAFETY: an anonymous private mapping, checked against MAP_FAILED; the guard page is
        // made inaccessible so an overrun faults instead of corrupting memory.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                GUARD_BYTES + WALK_STACK_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            libc::mprotect(base, GUARD_BYTES, libc::PROT_NONE);
            Some(WalkStack { base: base.cast() })
        }
    }

    /// The highest address of the stack (16-byte aligned), where a call on it starts.
    fn top(&self) -> *mut u8 {
        self.base.wrapping_add(GUARD_BYTES + WALK_STACK_BYTES)
    }

    /// Runs `body` on this stack and returns when it returns. Async-signal-safe.
    ///
    /// # Safety
    /// No other thread may run on this stack at the same time (the caller holds the lease of
    /// the cache it belongs to), and `body` must not unwind (it is caught and dropped here).
    ///
    /// Every signal is blocked while the stack pointer is here: a signal delivered now would
    /// find neither the thread's stack nor its alternate one (the kernel would start the
    /// handler at the top of the alternate stack, over the frames of the handler that called
    /// this), and a runtime's handler (Go's preemption signal) would see a stack it does not
    /// know.
    pub unsafe fn run(&self, body: &mut dyn FnMut()) {
        // SAFETY: sigset_t is plain data; sigfillset fills `all`; the raw rt_sigprocmask (the
        // shim interposes the libc wrappers) only reads `all` and writes `previous`.
        let previous = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &all as *const libc::sigset_t, &mut previous as *mut libc::sigset_t, 8);
            previous
        };
        // SAFETY: forwarded from the caller; the stack is mapped for the pool's life.
        unsafe { run_on_stack(self.top(), body) };
        // SAFETY: restores the mask saved above.
        unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &previous as *const libc::sigset_t, std::ptr::null_mut::<libc::sigset_t>(), 8) };
    }
}

impl Drop for WalkStack {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `map`; the pool that owns this stack is dropped
        // only when no handler can hold a lease (it is never replaced once published).
        unsafe { libc::munmap(self.base.cast(), GUARD_BYTES + WALK_STACK_BYTES) };
    }
}

/// Calls the `&mut dyn FnMut()` behind `data`; a panic stops here (nothing may unwind into the
/// stack switch).
extern "C" fn call_body(data: *mut libc::c_void) {
    // SAFETY: `run_on_stack` passes a pointer to a live `&mut dyn FnMut()`.
    let body = unsafe { &mut *data.cast::<&mut dyn FnMut()>() };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
}

/// Switches the stack pointer to `top`, calls `body`, and switches back.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a mapped stack that only this call uses, deep
/// enough for `body`.
#[cfg(target_arch = "x86_64")]
unsafe fn run_on_stack(top: *mut u8, body: &mut dyn FnMut()) {
    let mut body = body;
    let data = (&mut body as *mut &mut dyn FnMut()).cast::<libc::c_void>();
    // SAFETY: r12 (callee-saved, so kept across the call) holds the old stack pointer while
    // `call_body` runs on the new stack with the C ABI (16-byte aligned at the call); the old
    // stack is not touched meanwhile, and rsp is restored before the block ends.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {call_body}",
            "mov rsp, r12",
            top = in(reg) top,
            call_body = sym call_body,
            in("rdi") data,
            out("r12") _,
            clobber_abi("C"),
        );
    }
}

/// Other architectures run the body where they are (the handler's stack-room check applies).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn run_on_stack(_top: *mut u8, body: &mut dyn FnMut()) {
    body();
}

/// True when walks run on sigtrace's own stacks (else they need room on the handler's stack).
pub const SWITCHES_STACKS: bool = cfg!(target_arch = "x86_64");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_runs_on_the_walk_stack_and_comes_back() {
        let stack = WalkStack::map().expect("mapped");
        let (lo, hi) = (stack.base as usize + GUARD_BYTES, stack.top() as usize);
        let mut seen = 0usize;
        let mut depth_used = [0u8; 64 * 1024];
        // SAFETY: test: this thread alone uses the stack.
        unsafe {
            stack.run(&mut || {
                let marker = 0u8;
                seen = std::hint::black_box(&marker) as *const u8 as usize;
                // 64 KiB of locals fit on the walk stack.
                depth_used[0] = std::hint::black_box(1);
                let big = std::hint::black_box([7u8; 48 * 1024]);
                seen += usize::from(big[100]) - 7;
            })
        };
        assert!((lo..hi).contains(&seen), "ran at {seen:#x}, stack {lo:#x}..{hi:#x}");
        assert_eq!(depth_used[0], 1);
    }
}
