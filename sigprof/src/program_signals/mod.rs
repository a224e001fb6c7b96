//! The program's own dispositions of the signals sigtrace watches, forwarding signals that are
//! not ours to them, and the program's view of its mask for the sampling signal.
//!
//! Two ways of watching a signal:
//! * [`KEPT`] (the sampling signal): sigtrace's handler stays in the kernel whatever the program
//!   installs. The interposed `sigaction` records what the program asks for here, and the
//!   handler forwards every signal that is not a sample to it.
//! * [`WHILE_DEFAULT`] (signals whose default action kills: SIGSEGV, SIGTERM, …): sigtrace's
//!   handler is in the kernel only while the program's action is `SIG_DFL`. A handler or
//!   `SIG_IGN` of the program goes straight to the kernel (it runs natively, with its own flags,
//!   mask and stack; an ignored signal never interrupts a system call), and sigtrace's handler
//!   comes back when the program returns to `SIG_DFL`. The kernel keeps `SIG_IGN` across exec.
//!
//! Each signal's entry is a small seqlock: writers (the `sigaction` wrapper) make it odd while
//! they update it, readers (signal handlers) retry until they read an even, unchanged sequence.
//! `oldact` reports the recorded action exactly as the kernel would have (`SA_RESTORER` and
//! glibc's restorer added, `SIGKILL`/`SIGSTOP` removed from the mask).
//!
//! **The mask.** The sampling signal is never blocked in the kernel on the program's behalf
//! (samples would stop and pile up). Instead each thread records whether the program asked for
//! it to be blocked ([`program_blocks`]); the interposed mask functions report the kernel's
//! mask plus that record. A signal of that number that is not a sample and arrives while the
//! program has it "blocked" is held on the thread (its `siginfo` kept, later ones merged, as
//! the kernel does for a pending standard signal) and queued again to the thread when the
//! program unblocks it; `sigpending` reports it. New threads inherit the creator's record;
//! exec passes a real block (and the held signal, pending) on to the next image.
//!
//! One file per concern:
//! * [`actions`]: the program's recorded actions (the per-signal seqlocked entries) and how
//!   the kernel would report them;
//! * [`dispositions`]: what sigtrace puts into the kernel for a watched signal (its handler,
//!   or the program's action), the interposed `sigaction`, and signals ignored across exec;
//! * [`forward`]: running the program's handler for a signal that is not a sample;
//! * [`mask`]: the sampling signal's mask as the program sees it (`pthread_sigmask`,
//!   `sigpending`, thread creation, exec), and a signal held while the program "blocks" it,
//!   queued again when it unblocks it;
//! * [`waits`]: `sigsuspend` and `sigtimedwait` with the mask the program sees.

mod actions;
mod dispositions;
mod forward;
mod mask;
mod waits;

pub use actions::{get, is_managed, mode, ProgramAction, KEPT, UNMANAGED, WHILE_DEFAULT};
pub use dispositions::{after_failed_exec, before_exec, program_sigaction, watch_all_while_default, watch_while_default, SigactionFn};
pub use forward::{forward, Forwarded};
pub use mask::{
    inheriting_program_block, keep_mask_view, mask_after_failed_exec, mask_before_exec, program_blocks, program_sigmask, program_sigpending,
    set_program_blocks, MaskForExec, SigmaskFn,
};
pub use waits::{program_sigsuspend, program_sigtimedwait, SigtimedwaitFn};

pub(crate) use dispositions::install_handler;
