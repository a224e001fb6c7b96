//! The libc functions the shim interposes (`#[no_mangle]`, found before libc's through
//! `LD_PRELOAD`), one libc family per file. Each reaches libc's own function through
//! `next_fn::NextFn` (or the system call itself), and nothing below this layer calls into it.

mod blocking;
mod descriptors;
mod dl;
mod exec;
mod exec_variadic;
mod exit;
mod sandbox;
mod signals;
mod threads;

pub(crate) use blocking::resolve_real_functions;
