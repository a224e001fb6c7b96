//! This process's configuration: the `SIGTRACE_*` variables of its environment, read once at
//! start-up by the `config` crate's parser (which defines every variable). Problems are
//! reported in one line each, once per process tree.

use crate::log;

pub use ::config::{Config, TimerChoice};

/// Reads the configuration from the process environment, reporting bad values. Variables
/// whose name or value is not UTF-8 count as unset.
pub fn from_env() -> Config {
    let vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| name.starts_with(::config::PREFIX))
        .collect();
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
