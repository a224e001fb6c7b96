//! The `SIGTRACE_*` parser (`config::Config::from_vars`, what the shim calls at start-up) on any
//! (name, value) pairs: the input's lines, `NAME=VALUE` each. It must not panic, must keep every
//! setting in its documented range, and reports at most one line per variable: per known one,
//! and per distinct unknown `SIGTRACE_*` name.
#![no_main]

use std::cell::RefCell;

use config::{Config, NumberVariable};
use libfuzzer_sys::fuzz_target;

fn within(variable: &NumberVariable, value: u64) -> bool {
    (variable.min..=variable.max).contains(&value)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|line| line.split_once('=')).collect();
    let reports = RefCell::new(Vec::new());
    let config = Config::from_vars(pairs.iter().copied(), |line| reports.borrow_mut().push(line.to_string()));
    let reports = reports.into_inner();
    let mut unknown: Vec<&str> = pairs.iter().map(|(name, _)| *name).filter(|name| name.starts_with(config::PREFIX) && !config::is_known(name)).collect();
    unknown.sort_unstable();
    unknown.dedup();
    assert!(reports.len() <= config::VARIABLES.len() + unknown.len(), "{reports:?}");
    assert!(within(&config::HZ, config.hz.into()));
    assert!(within(&config::WALL_HZ, config.wall_hz.into()));
    assert!(within(&config::GENERATION_MS, config.generation_ms.into()));
    assert!(within(&config::DEPTH, config.max_depth as u64));
    assert!(within(&config::BUFFER_KB, config.buffer_kb as u64));
    assert!(within(&config::MAX_THREADS, config.max_threads as u64));
    assert!(config.drain_ms.is_none_or(|ms| within(&config::DRAIN_MS, ms.into())));
    assert!(!config.output_pattern.trim().is_empty());
    assert!((1..=libc::SIGRTMAX()).contains(&config.signal));
    assert!(sigprof::ring_words(config.buffer_kb, config.max_depth) >= 4 * config.max_depth);
});
