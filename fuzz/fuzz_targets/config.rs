//! The `SIGTRACE_*` parser (`Config::from_vars`, what `Config::from_env` calls) on any
//! (name, value) pairs: the input's lines, `NAME=VALUE` each. It must not panic, must keep every
//! setting in its documented range, and reports at most one line per variable: per known one,
//! and per distinct unknown `SIGTRACE_*` name.
//!
//! The shim cannot be a dependency: it is a `cdylib` whose constructor starts the profiler and
//! which interposes `pthread_create`, `execve`, `exit`, … in whatever links it. So its
//! configuration sources (`config.rs` and the `log.rs` it uses) are compiled in here as modules
//! of this crate, against the same `sigprof` and `libc`.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../shim/src/log.rs"]
mod log;

#[allow(dead_code)]
#[path = "../../shim/src/config.rs"]
mod config;

use config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|line| line.split_once('=')).collect();
    let reports = RefCell::new(Vec::new());
    let config = Config::from_vars(pairs.iter().copied(), |line| reports.borrow_mut().push(line.to_string()));
    let reports = reports.into_inner();
    let mut unknown: Vec<&str> = pairs.iter().map(|(name, _)| *name).filter(|name| name.starts_with(config::PREFIX) && !config::VARIABLES.contains(name)).collect();
    unknown.sort_unstable();
    unknown.dedup();
    assert!(reports.len() <= config::VARIABLES.len() + unknown.len(), "{reports:?}");
    assert!((1..=10_000).contains(&config.hz));
    assert!((10..=3_600_000).contains(&config.generation_ms));
    assert!((1..=2048).contains(&config.max_depth));
    assert!((4..=65_536).contains(&config.buffer_kb));
    assert!((1..=1 << 20).contains(&config.max_threads));
    assert!(config.drain_ms.is_none_or(|ms| (1..=10_000).contains(&ms)));
    assert!(!config.output_pattern.trim().is_empty());
    assert!((1..=libc::SIGRTMAX()).contains(&config.signal));
    assert!(config.ring_words() >= 4 * config.max_depth);
});
