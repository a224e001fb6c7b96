//! This process's configuration: the `SIGTRACE_*` variables of its environment, read once at
//! start-up by the `config` crate's parser (which defines every variable). Problems are
//! reported in one line each, once per process tree.

use crate::log;

pub use ::config::{Config, TimerChoice};

/// Reads the configuration from the process environment, reporting bad values. Variables
/// whose name or value is not UTF-8 count as unset.
pub fn from_env() -> Config {
    let vars = sigtrace_variables();
    let problems = std::cell::RefCell::new(Vec::new());
    let config = Config::from_vars(vars.iter().map(|(name, value)| (name.as_str(), value.as_str())), |problem| problems.borrow_mut().push(problem.to_string()));
    let problems = problems.into_inner();
    if !problems.is_empty() && !parent_is_traced() {
        for problem in &problems {
            log::warn(problem);
        }
    }
    config
}

/// The environment's `SIGTRACE_*` variables, read from `environ` in place: a process start pays
/// for copying only these, not every variable (`std::env::vars_os` copies them all).
fn sigtrace_variables() -> Vec<(String, String)> {
    extern "C" {
        static environ: *const *const std::ffi::c_char;
    }
    let mut vars = Vec::new();
    // SAFETY: `environ` is libc's NULL-terminated array of NUL-terminated strings; it is read at
    // start-up, before the program's `main` can change it.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let bytes = std::ffi::CStr::from_ptr(*entry).to_bytes();
            entry = entry.add(1);
            if !bytes.starts_with(::config::PREFIX.as_bytes()) {
                continue;
            }
            let Some(split) = bytes.iter().position(|&b| b == b'=') else { continue };
            if let (Ok(name), Ok(value)) = (std::str::from_utf8(&bytes[..split]), std::str::from_utf8(&bytes[split + 1..])) {
                vars.push((name.to_string(), value.to_string()));
            }
        }
    }
    vars
}

/// Whether the parent process has sigtrace's library loaded: a program started by a traced
/// parent inherits the environment that parent has reported on already, so a process tree
/// reports each configuration problem once, from its root. (An image exec'd in place reports
/// again: its parent is the tree's parent. A parent whose maps cannot be read counts as not
/// traced.) Start-up only: reads a file.
fn parent_is_traced() -> bool {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    std::fs::read_to_string(format!("/proc/{parent}/maps")).is_ok_and(|maps| maps.lines().any(|line| line.rsplit('/').next() == Some("libsigtrace.so")))
}
