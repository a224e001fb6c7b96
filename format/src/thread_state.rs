//! What a thread was doing when a sample was taken (wall-clock mode): running, runnable, or
//! blocked in a named call. The codes here are the file's (docs/FORMAT.md, "Thread states") and the
//! shim's: defined once.

/// The state of a sampled thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum ThreadState {
    /// On a CPU: a sample of its CPU timer (every sample of a `cpu` mode trace).
    #[default]
    Running,
    /// Ready to run but waiting for a CPU.
    Runnable,
    /// Waiting in a call (see [`SampleState::call`]).
    Blocked,
}

impl ThreadState {
    /// Every state, in code order.
    pub const ALL: [ThreadState; 3] = [ThreadState::Running, ThreadState::Runnable, ThreadState::Blocked];

    /// The name the tools show and accept (`report --state`).
    pub fn name(self) -> &'static str {
        match self {
            ThreadState::Running => "running",
            ThreadState::Runnable => "runnable",
            ThreadState::Blocked => "blocked",
        }
    }

    /// The state named `name`.
    pub fn from_name(name: &str) -> Option<ThreadState> {
        ThreadState::ALL.into_iter().find(|state| state.name() == name)
    }
}

/// A sample's state and, for a blocked thread, the call it was blocked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SampleState {
    /// Running, runnable or blocked.
    pub state: ThreadState,
    /// The blocking call's code ([`call_name`]); 0 when unknown or not blocked.
    pub call: u32,
}

impl SampleState {
    /// A sample of a running thread.
    pub const RUNNING: SampleState = SampleState { state: ThreadState::Running, call: 0 };

    /// The code in the file: `call << 2 | state`.
    pub fn code(self) -> u64 {
        u64::from(self.call) << 2 | self.state as u64
    }

    /// The state of a code; `None` for a state this reader does not know.
    pub fn from_code(code: u64) -> Option<SampleState> {
        let state = *ThreadState::ALL.get((code & 3) as usize)?;
        Some(SampleState { state, call: u32::try_from(code >> 2).ok()? })
    }

    /// `running`, `runnable`, or `blocked` (without the call).
    pub fn name(self) -> &'static str {
        self.state.name()
    }
}

/// The blocking calls sigtrace interposes, by code (code = index + 1; 0 = unknown). A call found
/// only through `/proc/self/task/TID/syscall` has code [`SYSCALL_CODE_BASE`] + its number.
pub const CALLS: [&str; 48] = [
    "read",
    "write",
    "readv",
    "writev",
    "pread",
    "pwrite",
    "recv",
    "recvfrom",
    "recvmsg",
    "send",
    "sendto",
    "sendmsg",
    "accept",
    "accept4",
    "connect",
    "poll",
    "ppoll",
    "select",
    "pselect",
    "epoll_wait",
    "epoll_pwait",
    "nanosleep",
    "clock_nanosleep",
    "sleep",
    "usleep",
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "pthread_mutex_lock",
    "pthread_rwlock_rdlock",
    "pthread_rwlock_wrlock",
    "pthread_join",
    "waitpid",
    "wait4",
    "wait",
    "waitid",
    "sem_wait",
    "sem_timedwait",
    "sigwait",
    "sigwaitinfo",
    "sigtimedwait",
    "sigsuspend",
    "futex",
    "pause",
    "flock",
    "fsync",
    "fdatasync",
    "pthread_cond_clockwait",
    "sem_clockwait",
];

/// The code of the interposed call `name`, 0 when it is not one of [`CALLS`]. A `const fn`, so
/// that the shim's wrappers carry their codes as constants.
pub const fn call_code(name: &str) -> u32 {
    let mut index = 0;
    while index < CALLS.len() {
        if same_bytes(CALLS[index].as_bytes(), name.as_bytes()) {
            return index as u32 + 1;
        }
        index += 1;
    }
    0
}

const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Codes from here up are raw system call numbers (+ this base), read from `/proc`.
pub const SYSCALL_CODE_BASE: u32 = 1024;

/// How the tools name a call code: an interposed call's name, `syscall:NAME` for a known system
/// call number found through `/proc`, `syscall:N` for another, `unknown` for 0.
pub fn call_name(code: u32) -> String {
    match code {
        0 => "unknown".into(),
        code if code >= SYSCALL_CODE_BASE => {
            let number = code - SYSCALL_CODE_BASE;
            match syscall_name(number) {
                Some(name) => format!("syscall:{name}"),
                None => format!("syscall:{number}"),
            }
        }
        code => CALLS.get(code as usize - 1).map_or_else(|| format!("call:{code}"), |name| (*name).to_string()),
    }
}

/// Names of the x86_64 system calls a thread commonly blocks in.
#[cfg(target_arch = "x86_64")]
fn syscall_name(number: u32) -> Option<&'static str> {
    Some(match number {
        0 => "read",
        1 => "write",
        7 => "poll",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        23 => "select",
        34 => "pause",
        35 => "nanosleep",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        61 => "wait4",
        73 => "flock",
        74 => "fsync",
        75 => "fdatasync",
        128 => "rt_sigtimedwait",
        130 => "rt_sigsuspend",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        247 => "waitid",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        _ => return None,
    })
}

/// Names of the aarch64 system calls a thread commonly blocks in.
#[cfg(not(target_arch = "x86_64"))]
fn syscall_name(number: u32) -> Option<&'static str> {
    Some(match number {
        22 => "epoll_pwait",
        63 => "read",
        64 => "write",
        72 => "pselect6",
        73 => "ppoll",
        98 => "futex",
        101 => "nanosleep",
        115 => "clock_nanosleep",
        202 => "accept",
        203 => "connect",
        260 => "wait4",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for state in ThreadState::ALL {
            for call in [0, 1, 48, SYSCALL_CODE_BASE + 202] {
                let sample = SampleState { state, call };
                assert_eq!(SampleState::from_code(sample.code()), Some(sample));
            }
        }
        assert_eq!(SampleState::from_code(3), None, "state 3 is not defined");
        assert_eq!(SampleState::RUNNING.code(), 0);
    }

    #[test]
    fn calls_are_named() {
        assert_eq!(call_name(call_code("read")), "read");
        assert_eq!(call_name(call_code("pthread_mutex_lock")), "pthread_mutex_lock");
        assert_eq!(call_code("no_such_call"), 0);
        assert_eq!(call_name(0), "unknown");
        assert_eq!(call_name(999), "call:999");
        assert!(call_name(SYSCALL_CODE_BASE + 100_000).starts_with("syscall:"));
        assert_eq!(ThreadState::from_name("blocked"), Some(ThreadState::Blocked));
    }
}
