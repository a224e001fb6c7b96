//! Debug info by build id from debuginfod servers, as gdb, perf and elfutils fetch it: for a
//! module whose file has neither a symbol table nor DWARF, `GET URL/buildid/HEX/debuginfo`
//! (then `/executable`) on each server of `DEBUGINFOD_URLS` (space-separated), into the cache
//! elfutils' client uses (`$DEBUGINFOD_CACHE_PATH`, else `$XDG_CACHE_HOME/debuginfod_client`,
//! else `~/.cache/debuginfod_client`; `HEX/debuginfo`, `HEX/executable`), which is read first,
//! without any network, whether servers are set or not.
//!
//! A server is another party: an answer is written to a temporary file in the cache, kept only
//! when it is an ELF file with the expected build id (then renamed into place), and refused past
//! a size cap (`DEBUGINFOD_MAXSIZE` bytes, else [`DEFAULT_MAX_BYTES`]); each request has a time
//! limit (`DEBUGINFOD_TIMEOUT` seconds, else [`DEFAULT_REQUEST_TIMEOUT`]) and all requests of a
//! run share [`TOTAL_TIME_BUDGET`]. A failure is one `sigtrace:` line per module and the module
//! stays `module+0x…`; a server that cannot be reached is not asked again in the run.

use std::collections::HashSet;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::format_numbers::hex;

/// The time one request may take, unless `DEBUGINFOD_TIMEOUT` says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The time all requests of one run may take together.
pub const TOTAL_TIME_BUDGET: Duration = Duration::from_secs(120);
/// The largest file accepted, unless `DEBUGINFOD_MAXSIZE` says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// What is asked for: a separate debug file, or the executable (with its symbols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    Debuginfo,
    Executable,
}

impl Artifact {
    fn name(self) -> &'static str {
        match self {
            Artifact::Debuginfo => "debuginfo",
            Artifact::Executable => "executable",
        }
    }
}

/// The client: servers, cache, limits, and what failed in this run.
pub struct Debuginfod {
    urls: Vec<String>,
    cache: Option<PathBuf>,
    request_timeout: Duration,
    max_bytes: u64,
    /// Time left for requests in this run.
    budget: Duration,
    /// Servers that could not be reached (not asked again).
    unreachable: HashSet<String>,
    agent: Option<ureq::Agent>,
}

impl Debuginfod {
    /// The client the environment describes.
    pub fn from_env() -> Debuginfod {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let urls = var("DEBUGINFOD_URLS").map(|urls| urls.split_whitespace().map(|url| url.trim_end_matches('/').to_string()).collect()).unwrap_or_default();
        let cache = cache_dir(var);
        let request_timeout =
            var("DEBUGINFOD_TIMEOUT").and_then(|s| s.parse::<u64>().ok()).filter(|&s| s > 0).map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_secs);
        let max_bytes = var("DEBUGINFOD_MAXSIZE").and_then(|s| s.parse::<u64>().ok()).filter(|&n| n > 0).unwrap_or(DEFAULT_MAX_BYTES);
        Debuginfod { urls, cache, request_timeout, max_bytes, budget: TOTAL_TIME_BUDGET, unreachable: HashSet::new(), agent: None }
    }

    /// The cached file of `artifact` for `build_id`, fetched first when it is not cached and
    /// servers are set; `Err` with what went wrong with each server that failed otherwise than
    /// by not having it (empty: nobody has it). `module` names the module in the progress line.
    /// The file is checked by the caller again as it maps it.
    pub fn find(&mut self, build_id: &[u8], artifact: Artifact, module: &str) -> Result<PathBuf, Vec<String>> {
        let mut failures = Vec::new();
        if build_id.len() < 2 {
            return Err(failures);
        }
        let id = hex(build_id);
        let Some(cache) = self.cache.clone() else { return Err(failures) };
        let target = cache.join(&id).join(artifact.name());
        if is_elf_with_build_id(&target, build_id) {
            return Ok(target);
        }
        for url in self.urls.clone() {
            if self.unreachable.contains(&url) {
                continue;
            }
            match self.fetch(&url, &id, artifact, build_id, module, &target) {
                Ok(()) => return Ok(target),
                Err(Failure::Missing) => {}
                Err(Failure::Unreachable(why)) => {
                    self.unreachable.insert(url.clone());
                    failures.push(format!("{url}: {}: {why}", artifact.name()));
                }
                Err(Failure::Refused(why)) => failures.push(format!("{url}: {}: {why}", artifact.name())),
            }
        }
        Err(failures)
    }

    fn fetch(&mut self, url: &str, id: &str, artifact: Artifact, build_id: &[u8], module: &str, target: &Path) -> Result<(), Failure> {
        let started = Instant::now();
        let timeout = self.request_timeout.min(self.budget);
        if timeout.is_zero() {
            return Err(Failure::Refused("the time for debuginfod requests in this run is used up".into()));
        }
        let agent =
            self.agent.get_or_insert_with(|| ureq::AgentBuilder::new().redirects(4).user_agent(concat!("sigtrace/", env!("CARGO_PKG_VERSION"))).build());
        let address = format!("{url}/buildid/{id}/{}", artifact.name());
        if std::io::stderr().is_terminal() {
            crate::warn!("debuginfod: fetching the {} of {module} from {url}…", artifact.name());
        }
        let result = download(agent, &address, timeout, self.max_bytes, build_id, target);
        self.budget = self.budget.saturating_sub(started.elapsed());
        result
    }
}

/// The cache directory, from the variables `var` gives (elfutils' order).
fn cache_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("DEBUGINFOD_CACHE_PATH")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|dir| Path::new(&dir).join("debuginfod_client")))
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache/debuginfod_client")))
}

/// Why a fetch from one server gave nothing.
enum Failure {
    /// The server does not have it (404 and the like): not worth a line.
    Missing,
    /// The server could not be reached or timed out.
    Unreachable(String),
    /// The answer was refused (too large, not ELF, another build id, cannot be cached).
    Refused(String),
}

/// GETs `address` within `timeout` into a temporary file beside `target`, then checks it and
/// renames it to `target`.
fn download(agent: &ureq::Agent, address: &str, timeout: Duration, max_bytes: u64, build_id: &[u8], target: &Path) -> Result<(), Failure> {
    let response = match agent.get(address).timeout(timeout).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(404 | 406 | 410, _)) => return Err(Failure::Missing),
        Err(ureq::Error::Status(code, _)) => return Err(Failure::Refused(format!("HTTP status {code}"))),
        Err(ureq::Error::Transport(error)) => return Err(Failure::Unreachable(error.to_string())),
    };
    if response.header("content-length").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > max_bytes) {
        return Err(Failure::Refused(format!("larger than the {max_bytes}-byte cap (DEBUGINFOD_MAXSIZE)")));
    }
    let dir = target.parent().ok_or_else(|| Failure::Refused("no cache directory".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| Failure::Refused(format!("cannot create {}: {e}", dir.display())))?;
    let temporary = dir.join(format!(".{}.sigtrace-{}.tmp", target.file_name().and_then(|n| n.to_str()).unwrap_or("file"), std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(|e| Failure::Refused(format!("cannot write {}: {e}", temporary.display())))?;
        let mut body = response.into_reader().take(max_bytes + 1);
        let copied = std::io::copy(&mut body, &mut file).map_err(|e| Failure::Unreachable(format!("reading the answer: {e}")))?;
        if copied > max_bytes {
            return Err(Failure::Refused(format!("larger than the {max_bytes}-byte cap (DEBUGINFOD_MAXSIZE)")));
        }
        file.flush().map_err(|e| Failure::Refused(format!("cannot write {}: {e}", temporary.display())))?;
        if !is_elf_with_build_id(&temporary, build_id) {
            return Err(Failure::Refused("the answer is not an ELF file with that build id".into()));
        }
        std::fs::rename(&temporary, target).map_err(|e| Failure::Refused(format!("cannot cache {}: {e}", target.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Whether the file at `path` is a regular ELF file whose GNU build id is `build_id`.
fn is_elf_with_build_id(path: &Path, build_id: &[u8]) -> bool {
    use object::Object;
    let Ok(data) = super::file_guard::map_file(path) else { return false };
    object::File::parse(&*data).ok().and_then(|file| file.build_id().ok().flatten().map(|id| id == build_id)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_where_elfutils_looks() {
        let vars =
            |set: &'static [(&'static str, &'static str)]| move |name: &str| set.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
        const ALL: [(&str, &str); 3] = [("DEBUGINFOD_CACHE_PATH", "/c/explicit"), ("XDG_CACHE_HOME", "/c/xdg"), ("HOME", "/c/home")];
        assert_eq!(cache_dir(vars(&ALL)), Some(PathBuf::from("/c/explicit")));
        assert_eq!(cache_dir(vars(&ALL[1..])), Some(PathBuf::from("/c/xdg/debuginfod_client")));
        assert_eq!(cache_dir(vars(&ALL[2..])), Some(PathBuf::from("/c/home/.cache/debuginfod_client")));
        assert_eq!(cache_dir(vars(&[])), None);
    }
}
