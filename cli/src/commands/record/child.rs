//! Runs the recorded command as `record`'s child and waits for it, passing on the signals that
//! stop a program (SIGINT, SIGTERM, SIGHUP) so that the command ends, its trace is complete and
//! `record` still prints its summary; no traced process outlives `record`.
//!
//! Process groups. When `record` is the foreground job of a terminal, the child stays in
//! `record`'s process group: it is then part of the foreground job as it would be without
//! `record` (it can read the terminal, Ctrl-Z stops it), and what the terminal sends to the
//! foreground group — Ctrl-C's SIGINT, a hang-up's SIGHUP, which the kernel sends with
//! `si_code` `SI_KERNEL` — already reaches it: `record` does not send it again (a program that
//! handles Ctrl-C, a REPL, would take a second one as a second Ctrl-C). A signal a process sent
//! (`kill PID`, `si_code` `SI_USER`) is passed on to the child.
//! Otherwise (a script, a test, a background job: no terminal signals this group) the child
//! leads a process group of its own, and `record` passes every such signal on to that group:
//! a signal sent to `record`'s group (`kill -INT -PGID`, `timeout`) reaches the command, and its
//! own children, exactly once.
//! Either way the child gets `PR_SET_PDEATHSIG` = SIGKILL: if `record` itself is killed
//! (SIGKILL), the command is killed too rather than left running without anyone waiting for it.
//!
//! Waiting. The three signals and SIGCHLD are blocked from before the spawn; a handler notes
//! each delivery in atomics, and the wait loop — reap the child if it ended, pass on what was
//! noted, `sigsuspend` — only lets them in inside `sigsuspend`, so no signal can arrive between
//! the checks and the sleep and be missed. The child gets back the mask `record` started with
//! before its `exec` (which resets the handlers).

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};

/// The signals `record` passes on to the command.
pub const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Signals delivered to `record` since the wait loop last looked, one bit per signal number:
/// those a process sent (`kill`), and those the kernel sent (a terminal's Ctrl-C or hang-up).
static SENT_BY_PROCESS: AtomicU64 = AtomicU64::new(0);
static SENT_BY_KERNEL: AtomicU64 = AtomicU64::new(0);

/// How the child relates to `record`'s process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// In `record`'s group, the terminal's foreground job: terminal signals reach it directly.
    SharedForeground,
    /// Leader of its own group: every signal reaches it through `record`.
    OwnGroup,
}

impl Grouping {
    /// `SharedForeground` when `record`'s process group is the foreground group of its
    /// controlling terminal (`/proc/self/stat`: `tty_nr` set and `tpgid` = `pgrp`).
    pub fn for_this_process() -> Grouping {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        if is_terminal_foreground(&stat) {
            Grouping::SharedForeground
        } else {
            Grouping::OwnGroup
        }
    }

    /// Whether a signal `record` received is to be sent to the child.
    fn passes_on(self, sent_by_process: bool, sent_by_kernel: bool) -> bool {
        match self {
            Grouping::SharedForeground => sent_by_process,
            Grouping::OwnGroup => sent_by_process || sent_by_kernel,
        }
    }
}

/// True when a `/proc/PID/stat` line says the process is in its terminal's foreground group.
fn is_terminal_foreground(stat: &str) -> bool {
    // After the command name (which may hold spaces and parentheses): state ppid pgrp session tty_nr tpgid.
    let Some((_, fields)) = stat.rsplit_once(')') else { return false };
    let fields: Vec<i64> = fields.split_whitespace().skip(1).take(5).map_while(|field| field.parse().ok()).collect();
    matches!(fields[..], [_ppid, pgrp, _session, tty_nr, tpgid] if tty_nr != 0 && tpgid == pgrp && pgrp > 0)
}

/// Notes a delivered signal (async-signal-safe: two atomic operations).
extern "C" fn note_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    let bit = 1u64 << (signal as u32 & 63);
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo for this delivery (checked for null anyway).
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if from_kernel {
        SENT_BY_KERNEL.fetch_or(bit, Ordering::Relaxed);
    } else {
        SENT_BY_PROCESS.fetch_or(bit, Ordering::Relaxed);
    }
}

/// While alive: the forwarded signals and SIGCHLD are blocked and noted by `note_signal`.
/// Dropping it restores the signal mask, then the previous actions.
pub struct SignalWatch {
    old_mask: libc::sigset_t,
    /// The mask `sigsuspend` waits with: the old one, with the watched signals let in.
    wait_mask: libc::sigset_t,
    old_actions: Vec<(i32, libc::sigaction)>,
}

impl SignalWatch {
    pub fn install() -> io::Result<SignalWatch> {
        let watched = FORWARDED.iter().copied().chain([libc::SIGCHLD]);
        // SAFETY: sigset_t and sigaction are plain C structs for which all-zero is a valid value;
        // each is filled by sigemptyset / sigaction / sigprocmask before it is read.
        let (mut block, mut old_mask, mut action) =
            unsafe { (std::mem::zeroed::<libc::sigset_t>(), std::mem::zeroed::<libc::sigset_t>(), std::mem::zeroed::<libc::sigaction>()) };
        action.sa_sigaction = note_signal as *const () as libc::sighandler_t;
        // No SA_RESTART: nothing here relies on it; the wait loop calls sigsuspend, which never restarts.
        action.sa_flags = libc::SA_SIGINFO;
        // SAFETY: the sets are valid, owned values; sigemptyset/sigaddset only write into them.
        unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigemptyset(&mut block);
        }
        for signal in watched.clone() {
            // SAFETY: as above; `signal` is a valid signal number.
            unsafe { libc::sigaddset(&mut block, signal) };
        }
        // SAFETY: blocks the watched signals of this (the only) thread; `old_mask` receives the old mask.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &block, &mut old_mask) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut wait_mask = old_mask;
        let mut old_actions = Vec::new();
        for signal in watched {
            // SAFETY: `wait_mask` is a valid set; sigdelset only writes into it.
            unsafe { libc::sigdelset(&mut wait_mask, signal) };
            // SAFETY: as in `install`'s first block; filled by sigaction below before use.
            let mut old = unsafe { std::mem::zeroed::<libc::sigaction>() };
            // SAFETY: installs `note_signal`, which only touches atomics (async-signal-safe), and
            // keeps the previous action to put back on drop.
            if unsafe { libc::sigaction(signal, &action, &mut old) } == 0 {
                old_actions.push((signal, old));
            }
        }
        Ok(SignalWatch { old_mask, wait_mask, old_actions })
    }

    /// Sets `command` up as described in the module doc: its own process group for `OwnGroup`,
    /// the signal mask `record` was started with (std does not reset it, and the watched
    /// signals must not stay blocked in the command), and SIGKILL when `record` dies.
    pub fn prepare(&self, command: &mut Command, grouping: Grouping) {
        if grouping == Grouping::OwnGroup {
            command.process_group(0);
        }
        let mask = self.old_mask;
        // SAFETY: getpid is a plain system call.
        let record_pid = unsafe { libc::getpid() };
        let set_up_child = move || {
            // SAFETY: runs in the forked child before exec: sigprocmask, prctl and getppid are
            // async-signal-safe system calls on values owned by the closure; nothing is allocated.
            unsafe {
                libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
                // `record` died before the line above: do not start the command at all.
                if libc::getppid() != record_pid {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe system calls (see above).
        unsafe { command.pre_exec(set_up_child) };
    }

    /// Waits for the child `pid` to end, passing on to it (`grouping`) every forwarded signal
    /// `record` gets meanwhile; returns its wait status.
    pub fn wait_passing_signals_on(&self, pid: u32, grouping: Grouping) -> io::Result<ExitStatus> {
        let pid = pid as libc::pid_t;
        loop {
            let mut status = 0;
            // SAFETY: reaps our own child if it ended; WNOHANG never blocks.
            let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if reaped == pid {
                return Ok(ExitStatus::from_raw(status));
            }
            if reaped < 0 {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            let by_process = SENT_BY_PROCESS.swap(0, Ordering::Relaxed);
            let by_kernel = SENT_BY_KERNEL.swap(0, Ordering::Relaxed);
            for signal in FORWARDED {
                let bit = 1u64 << signal;
                if grouping.passes_on(by_process & bit != 0, by_kernel & bit != 0) {
                    pass_on(pid, signal, grouping);
                }
            }
            // SAFETY: atomically lets the watched signals in and sleeps until one was handled;
            // a signal that came while they were blocked is pending and ends it at once.
            unsafe { libc::sigsuspend(&self.wait_mask) };
        }
    }
}

/// Sends `signal` to the child's process group when it leads one, else (or if it left it) to the child.
fn pass_on(pid: libc::pid_t, signal: i32, grouping: Grouping) {
    // SAFETY: kill(2) with our child's pid or process group id; no memory is involved.
    let sent_to_group = grouping == Grouping::OwnGroup && unsafe { libc::kill(-pid, signal) } == 0;
    if !sent_to_group {
        // SAFETY: as above.
        unsafe { libc::kill(pid, signal) };
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        // Mask first: a signal still pending is then taken by `note_signal`, not by SIG_DFL.
        // SAFETY: restores the mask saved in `install`.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
        for (signal, old) in &self.old_actions {
            // SAFETY: puts back the action sigaction returned in `install`.
            unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreground_is_read_from_proc_stat() {
        assert!(is_terminal_foreground("12 (make -j2 (x)) S 1 12 12 34816 12 4194304 0"));
        assert!(!is_terminal_foreground("12 (bash) S 1 12 12 34816 40 4194304 0"), "another group is in the foreground");
        assert!(!is_terminal_foreground("12 (cron) S 1 12 12 0 -1 4194304 0"), "no terminal");
        assert!(!is_terminal_foreground("garbage"));
        assert!(!is_terminal_foreground(""));
    }

    #[test]
    fn only_signals_the_child_missed_are_passed_on() {
        assert!(Grouping::SharedForeground.passes_on(true, false));
        assert!(!Grouping::SharedForeground.passes_on(false, true), "the terminal signalled the child itself");
        assert!(Grouping::OwnGroup.passes_on(false, true));
        assert!(Grouping::OwnGroup.passes_on(true, false));
        assert!(!Grouping::OwnGroup.passes_on(false, false));
    }
}
