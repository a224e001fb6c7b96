//! Wall-clock mode: the blocking calls a program makes through libc, interposed so that the
//! calling thread publishes, for the length of the call, which call it is in and the registers
//! at the call site (`sigprof::blocking`). sigtrace's own thread samples blocked threads from
//! that, and never signals them: no call here ever returns `EINTR` because of sigtrace.
//!
//! In `cpu` mode (and for threads without a slot) each wrapper is a plain jump to libc's
//! function, but for a look of `SIGTRACE_TIMER=auto` every few calls (`sampling::timers`). Every wrapper may run in a program's signal handler: what it does is
//! async-signal-safe (a thread-local `Cell`, atomics, the vDSO clock); the real functions are
//! looked up at start-up ([`resolve_real_functions`]), never first in a handler.

use crate::next_fn::NextFn;
use crate::sampling::call_marks::{marked, marked_in, wall_slot};
use format::call_code;
use libc::{c_int, c_long, c_uint, c_void, size_t, ssize_t};

/// Sets `errno` to `ENOSYS` for a function libc does not have, and returns `value`.
fn missing<R>(value: R) -> R {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() = libc::ENOSYS };
    value
}

/// Defines interposed blocking functions: each looks up libc's, and runs it [`marked`] with the
/// code of the call it is named for (or of the name after `as`).
macro_rules! blocking_functions {
    ($(fn $name:ident($($arg:ident: $type:ty),*) -> $ret:ty $(as $call:literal)?, failing $failed:expr;)*) => {
        mod real {
            use super::*;
            $(
                #[allow(non_upper_case_globals)]
                pub static $name: NextFn<unsafe extern "C" fn($($type),*) -> $ret> = {
                    const NAME: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                        Ok(name) => name,
                        Err(_) => panic!(),
                    };
                    // SAFETY: the type is the C prototype of the function of this name.
                    unsafe { NextFn::new(NAME) }
                };
            )*
        }

        $(
            #[doc = concat!("Interposed `", stringify!($name), "` (see the module docs).")]
            ///
            /// # Safety
            /// Same contract as libc's function.
            #[no_mangle]
            pub unsafe extern "C" fn $name($($arg: $type),*) -> $ret {
                const CALL: u32 = call_code(blocking_functions!(@call $name $($call)?));
                const SAFE_POINT: bool = is_safe_point(call_code(stringify!($name)));
                if SAFE_POINT {
                    crate::lifecycle::drain_thread::at_safe_point();
                }
                crate::sampling::timers::look_at_wait();
                let Some(real) = real::$name.get() else { return missing($failed) };
                // SAFETY: forwarding the caller's arguments to libc's function of the same prototype.
                marked(CALL, || unsafe { blocking_functions!(@run $name real ($($arg),*)) })
            }
        )*

        /// Looks every wrapped function up (start-up).
        fn resolve_wrapped_functions() {
            $(real::$name.resolve();)*
        }
    };
    // The sleeps the toggle signal may interrupt are resumed (`sampling::toggle_waits`).
    (@run nanosleep $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::nanosleep($real, $($arg),*) };
    (@run clock_nanosleep $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::clock_nanosleep($real, $($arg),*) };
    (@run usleep $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::usleep($real, real::nanosleep.get(), $($arg),*) };
    (@run sleep $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::sleep($real, real::nanosleep.get(), $($arg),*) };
    (@run poll $real:ident ($fds:ident, $count:ident, $timeout:ident)) => {
        crate::sampling::toggle_waits::again_with_ms_left(-1, $timeout, |left| $real($fds, $count, left))
    };
    (@run epoll_wait $real:ident ($fd:ident, $events:ident, $max:ident, $timeout:ident)) => {
        crate::sampling::toggle_waits::again_with_ms_left(-1, $timeout, |left| $real($fd, $events, $max, left))
    };
    (@run epoll_pwait $real:ident ($fd:ident, $events:ident, $max:ident, $timeout:ident, $mask:ident)) => {
        crate::sampling::toggle_waits::again_with_ms_left(-1, $timeout, |left| $real($fd, $events, $max, left, $mask))
    };
    (@run ppoll $real:ident ($fds:ident, $count:ident, $timeout:ident, $mask:ident)) => {
        crate::sampling::toggle_waits::again_with_time_left(-1, $timeout, |left| $real($fds, $count, left, $mask))
    };
    (@run pselect $real:ident ($count:ident, $read:ident, $write:ident, $except:ident, $timeout:ident, $mask:ident)) => {
        crate::sampling::toggle_waits::again_with_time_left(-1, $timeout, |left| $real($count, $read, $write, $except, left, $mask))
    };
    // Linux's select counts its timeout down and leaves the sets as they were on EINTR.
    (@run select $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::again_after_toggles(-1, || $real($($arg),*)) };
    (@run pause $real:ident ()) => { crate::sampling::toggle_waits::again_after_toggles(-1, || $real()) };
    (@run sem_wait $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::again_after_toggles(-1, || $real($($arg),*)) };
    (@run sem_timedwait $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::again_after_toggles(-1, || $real($($arg),*)) };
    (@run sem_clockwait $real:ident ($($arg:ident),*)) => { crate::sampling::toggle_waits::again_after_toggles(-1, || $real($($arg),*)) };
    (@run $name:ident $real:ident ($($arg:ident),*)) => { $real($($arg),*) };
    (@call $name:ident $call:literal) => { $call };
    (@call $name:ident) => { stringify!($name) };
}

/// The waiting calls at which a single-threaded program may do sigtrace's drain work
/// (`lifecycle::drain_thread`): calls a program makes between pieces of its work, never from
/// inside an allocator or a library holding a lock (reads and writes may be). By call code
/// (`format::call_code`); every one names an interposed call (checked at compile time).
const SAFE_POINTS: [u32; 17] = [
    call_code("poll"),
    call_code("ppoll"),
    call_code("select"),
    call_code("pselect"),
    call_code("epoll_wait"),
    call_code("epoll_pwait"),
    call_code("nanosleep"),
    call_code("clock_nanosleep"),
    call_code("sleep"),
    call_code("usleep"),
    call_code("waitpid"),
    call_code("wait4"),
    call_code("wait"),
    call_code("waitid"),
    call_code("accept"),
    call_code("accept4"),
    call_code("pause"),
];
const _: () = assert!(!is_safe_point(0), "every safe point is a known call");

/// Whether the call of code `call` is one of [`SAFE_POINTS`] (evaluated at compile time).
const fn is_safe_point(call: u32) -> bool {
    let mut index = 0;
    while index < SAFE_POINTS.len() {
        if SAFE_POINTS[index] == call {
            return true;
        }
        index += 1;
    }
    false
}

type Sockaddr = *mut libc::sockaddr;
type Timespec = *const libc::timespec;
type Sigset = *const libc::sigset_t;

blocking_functions! {
    fn read(fd: c_int, buffer: *mut c_void, count: size_t) -> ssize_t, failing -1;
    fn write(fd: c_int, buffer: *const c_void, count: size_t) -> ssize_t, failing -1;
    fn readv(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t, failing -1;
    fn writev(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t, failing -1;
    fn pread(fd: c_int, buffer: *mut c_void, count: size_t, offset: libc::off_t) -> ssize_t, failing -1;
    fn pread64(fd: c_int, buffer: *mut c_void, count: size_t, offset: libc::off64_t) -> ssize_t as "pread", failing -1;
    fn pwrite(fd: c_int, buffer: *const c_void, count: size_t, offset: libc::off_t) -> ssize_t, failing -1;
    fn pwrite64(fd: c_int, buffer: *const c_void, count: size_t, offset: libc::off64_t) -> ssize_t as "pwrite", failing -1;
    fn recv(fd: c_int, buffer: *mut c_void, length: size_t, flags: c_int) -> ssize_t, failing -1;
    fn recvfrom(fd: c_int, buffer: *mut c_void, length: size_t, flags: c_int, address: Sockaddr, address_length: *mut libc::socklen_t) -> ssize_t, failing -1;
    fn recvmsg(fd: c_int, message: *mut libc::msghdr, flags: c_int) -> ssize_t, failing -1;
    fn send(fd: c_int, buffer: *const c_void, length: size_t, flags: c_int) -> ssize_t, failing -1;
    fn sendto(fd: c_int, buffer: *const c_void, length: size_t, flags: c_int, address: *const libc::sockaddr, address_length: libc::socklen_t) -> ssize_t, failing -1;
    fn sendmsg(fd: c_int, message: *const libc::msghdr, flags: c_int) -> ssize_t, failing -1;
    fn accept(fd: c_int, address: Sockaddr, address_length: *mut libc::socklen_t) -> c_int, failing -1;
    fn accept4(fd: c_int, address: Sockaddr, address_length: *mut libc::socklen_t, flags: c_int) -> c_int, failing -1;
    fn connect(fd: c_int, address: *const libc::sockaddr, address_length: libc::socklen_t) -> c_int, failing -1;
    fn poll(fds: *mut libc::pollfd, count: libc::nfds_t, timeout: c_int) -> c_int, failing -1;
    fn ppoll(fds: *mut libc::pollfd, count: libc::nfds_t, timeout: Timespec, mask: Sigset) -> c_int, failing -1;
    fn select(count: c_int, read: *mut libc::fd_set, write: *mut libc::fd_set, except: *mut libc::fd_set, timeout: *mut libc::timeval) -> c_int, failing -1;
    fn pselect(count: c_int, read: *mut libc::fd_set, write: *mut libc::fd_set, except: *mut libc::fd_set, timeout: Timespec, mask: Sigset) -> c_int, failing -1;
    fn epoll_wait(epfd: c_int, events: *mut libc::epoll_event, max_events: c_int, timeout: c_int) -> c_int, failing -1;
    fn epoll_pwait(epfd: c_int, events: *mut libc::epoll_event, max_events: c_int, timeout: c_int, mask: Sigset) -> c_int, failing -1;
    fn nanosleep(request: Timespec, remaining: *mut libc::timespec) -> c_int, failing -1;
    fn clock_nanosleep(clock: libc::clockid_t, flags: c_int, request: Timespec, remaining: *mut libc::timespec) -> c_int, failing libc::ENOSYS;
    fn sleep(seconds: c_uint) -> c_uint, failing seconds;
    fn usleep(microseconds: libc::useconds_t) -> c_int, failing -1;
    fn pthread_join(thread: libc::pthread_t, result: *mut *mut c_void) -> c_int, failing libc::ENOSYS;
    fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t, failing -1;
    fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t, failing -1;
    fn wait(status: *mut c_int) -> libc::pid_t, failing -1;
    fn waitid(kind: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int, failing -1;
    fn sem_wait(semaphore: *mut libc::sem_t) -> c_int, failing -1;
    fn sem_timedwait(semaphore: *mut libc::sem_t, deadline: Timespec) -> c_int, failing -1;
    fn sem_clockwait(semaphore: *mut libc::sem_t, clock: libc::clockid_t, deadline: Timespec) -> c_int, failing -1;
    fn pause() -> c_int, failing -1;
    fn flock(fd: c_int, operation: c_int) -> c_int, failing -1;
    fn fsync(fd: c_int) -> c_int, failing -1;
    fn fdatasync(fd: c_int) -> c_int, failing -1;
    fn pthread_cond_clockwait(condition: *mut libc::pthread_cond_t, mutex: *mut libc::pthread_mutex_t, clock: libc::clockid_t, deadline: Timespec) -> c_int, failing libc::ENOSYS;
}

/// glibc's condition variables have an old compatibility version on x86_64 that `dlsym` may
/// give: the current one is asked for by version.
#[cfg(target_arch = "x86_64")]
const CONDITION_VERSION: &std::ffi::CStr = c"GLIBC_2.3.2";
#[cfg(not(target_arch = "x86_64"))]
const CONDITION_VERSION: &std::ffi::CStr = c"GLIBC_2.17";

type CondWaitFn = unsafe extern "C" fn(*mut libc::pthread_cond_t, *mut libc::pthread_mutex_t) -> c_int;
type CondTimedwaitFn = unsafe extern "C" fn(*mut libc::pthread_cond_t, *mut libc::pthread_mutex_t, Timespec) -> c_int;
type LockFn<T> = unsafe extern "C" fn(*mut T) -> c_int;

// SAFETY: the type is the C prototype of the function of that name (and of each below).
static REAL_COND_WAIT: NextFn<CondWaitFn> = unsafe { NextFn::versioned(c"pthread_cond_wait", CONDITION_VERSION) };
// SAFETY: as above.
static REAL_COND_TIMEDWAIT: NextFn<CondTimedwaitFn> = unsafe { NextFn::versioned(c"pthread_cond_timedwait", CONDITION_VERSION) };
// SAFETY: as above.
static REAL_MUTEX_LOCK: NextFn<LockFn<libc::pthread_mutex_t>> = unsafe { NextFn::new(c"pthread_mutex_lock") };
// SAFETY: as above.
static REAL_MUTEX_TRYLOCK: NextFn<LockFn<libc::pthread_mutex_t>> = unsafe { NextFn::new(c"pthread_mutex_trylock") };
// SAFETY: as above.
static REAL_RWLOCK_RDLOCK: NextFn<LockFn<libc::pthread_rwlock_t>> = unsafe { NextFn::new(c"pthread_rwlock_rdlock") };
// SAFETY: as above.
static REAL_RWLOCK_TRYRDLOCK: NextFn<LockFn<libc::pthread_rwlock_t>> = unsafe { NextFn::new(c"pthread_rwlock_tryrdlock") };
// SAFETY: as above.
static REAL_RWLOCK_WRLOCK: NextFn<LockFn<libc::pthread_rwlock_t>> = unsafe { NextFn::new(c"pthread_rwlock_wrlock") };
// SAFETY: as above.
static REAL_RWLOCK_TRYWRLOCK: NextFn<LockFn<libc::pthread_rwlock_t>> = unsafe { NextFn::new(c"pthread_rwlock_trywrlock") };

/// Interposed `pthread_cond_wait`.
///
/// # Safety
/// Same contract as libc's function.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_wait(condition: *mut libc::pthread_cond_t, mutex: *mut libc::pthread_mutex_t) -> c_int {
    const CALL: u32 = call_code("pthread_cond_wait");
    let Some(real) = REAL_COND_WAIT.get() else { return libc::ENOSYS };
    // SAFETY: forwarding the caller's arguments.
    marked(CALL, || unsafe { real(condition, mutex) })
}

/// Interposed `pthread_cond_timedwait`.
///
/// # Safety
/// Same contract as libc's function.
#[no_mangle]
pub unsafe extern "C" fn pthread_cond_timedwait(condition: *mut libc::pthread_cond_t, mutex: *mut libc::pthread_mutex_t, deadline: Timespec) -> c_int {
    const CALL: u32 = call_code("pthread_cond_timedwait");
    let Some(real) = REAL_COND_TIMEDWAIT.get() else { return libc::ENOSYS };
    // SAFETY: forwarding the caller's arguments.
    marked(CALL, || unsafe { real(condition, mutex, deadline) })
}

/// Takes a lock with `try_lock` first: only a lock that is held (`EBUSY`) is waited for with
/// `lock`, marked as blocking; any other answer of `try_lock` (taken, or an error such as
/// `EOWNERDEAD`) is the one `lock` would have given. In `cpu` mode, `lock` alone.
#[inline(always)]
fn contended<T>(call: u32, lock: Option<LockFn<T>>, try_lock: Option<LockFn<T>>, target: *mut T) -> c_int {
    let Some(lock) = lock else { return libc::ENOSYS };
    if let (Some(try_lock), Some(slot)) = (try_lock, wall_slot()) {
        // SAFETY: the caller's lock, as the caller passed it.
        let answer = unsafe { try_lock(target) };
        if answer != libc::EBUSY {
            return answer;
        }
        // SAFETY: as above.
        return marked_in(slot, call, || unsafe { lock(target) });
    }
    // SAFETY: as above.
    unsafe { lock(target) }
}

/// Interposed `pthread_mutex_lock`: marked only when the mutex is held.
///
/// # Safety
/// Same contract as libc's function.
#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_lock(mutex: *mut libc::pthread_mutex_t) -> c_int {
    const CALL: u32 = call_code("pthread_mutex_lock");
    contended(CALL, REAL_MUTEX_LOCK.get(), REAL_MUTEX_TRYLOCK.get(), mutex)
}

/// Interposed `pthread_rwlock_rdlock`: marked only when the lock is held.
///
/// # Safety
/// Same contract as libc's function.
#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_rdlock(lock: *mut libc::pthread_rwlock_t) -> c_int {
    const CALL: u32 = call_code("pthread_rwlock_rdlock");
    contended(CALL, REAL_RWLOCK_RDLOCK.get(), REAL_RWLOCK_TRYRDLOCK.get(), lock)
}

/// Interposed `pthread_rwlock_wrlock`: marked only when the lock is held.
///
/// # Safety
/// Same contract as libc's function.
#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_wrlock(lock: *mut libc::pthread_rwlock_t) -> c_int {
    const CALL: u32 = call_code("pthread_rwlock_wrlock");
    contended(CALL, REAL_RWLOCK_WRLOCK.get(), REAL_RWLOCK_TRYWRLOCK.get(), lock)
}

/// `futex` operations that wait.
fn futex_waits(operation: c_long) -> bool {
    const FUTEX_WAIT_REQUEUE_PI: c_int = 11;
    const FUTEX_LOCK_PI2: c_int = 13;
    let command = (operation as c_int) & !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);
    matches!(command, libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET | libc::FUTEX_LOCK_PI | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2)
}

/// `syscall(SYS_futex, …)` from the interposed `syscall` (`interpose::sandbox`): a wait is
/// marked.
///
/// # Safety
/// Same contract as libc's `syscall`.
#[cfg(target_arch = "x86_64")]
pub unsafe extern "C" fn futex_through_syscall(number: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long {
    const CALL: u32 = call_code("futex");
    // SAFETY: forwarding the caller's system call unchanged.
    let raw = || unsafe { crate::raw_syscall::raw_syscall(number, a1, a2, a3, a4, a5, a6) };
    crate::raw_syscall::libc_result(if futex_waits(a2) { marked(CALL, raw) } else { raw() })
}

/// Looks up libc's functions behind every wrapper (start-up, before any signal handler of the
/// program or ours can call one).
pub fn resolve_real_functions() {
    resolve_wrapped_functions();
    for next in [&REAL_MUTEX_LOCK, &REAL_MUTEX_TRYLOCK] {
        next.resolve();
    }
    for next in [&REAL_RWLOCK_RDLOCK, &REAL_RWLOCK_TRYRDLOCK, &REAL_RWLOCK_WRLOCK, &REAL_RWLOCK_TRYWRLOCK] {
        next.resolve();
    }
    REAL_COND_WAIT.resolve();
    REAL_COND_TIMEDWAIT.resolve();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futex_waits_are_told_from_wakes() {
        assert!(futex_waits((libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as c_long));
        assert!(futex_waits(libc::FUTEX_WAIT_BITSET as c_long));
        assert!(!futex_waits((libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as c_long));
    }

    #[test]
    fn every_wrapper_has_a_call_code() {
        for name in ["read", "pread", "epoll_wait", "pthread_cond_wait", "pthread_mutex_lock", "futex", "sigtimedwait", "sigsuspend", "pthread_cond_clockwait"]
        {
            assert_ne!(call_code(name), 0, "{name}");
        }
    }
}
