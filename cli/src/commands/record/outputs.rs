//! The trace files a `record` run wrote: which names the shim makes of an output pattern, the
//! files of this run in its directory, and a shell command (`sigtrace report …`) naming them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::shell_quote::shell_quote;

/// One piece of a file-name pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternToken {
    Literal(char),
    /// `%p`, `%t`: one or more digits.
    Digits,
    /// `%e`: one or more characters.
    AnyChars,
    /// Where the shim puts its counter when the name is taken: nothing, or `.N` (N ≥ 1).
    Counter,
}

/// The tokens of a file-name pattern, with the `Counter` before its final extension (or last).
fn tokenize(pattern: &str) -> Vec<PatternToken> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            tokens.push(PatternToken::Literal(c));
            continue;
        }
        match chars.peek() {
            Some('p') | Some('t') => {
                chars.next();
                tokens.push(PatternToken::Digits);
            }
            Some('e') => {
                chars.next();
                tokens.push(PatternToken::AnyChars);
            }
            Some('%') => {
                chars.next();
                tokens.push(PatternToken::Literal('%'));
            }
            _ => tokens.push(PatternToken::Literal('%')),
        }
    }
    // The extension holds no `%`: one Literal token per character.
    let extension_tokens = format::file_name::final_extension(pattern).chars().count();
    tokens.insert(tokens.len() - extension_tokens, PatternToken::Counter);
    tokens
}

/// True if `name` is what the shim makes of the file-name `pattern`: `%p`/`%t` → digits,
/// `%e` → any non-empty text, `%%` → `%`, and when the name was taken, a counter `.N` before
/// the pattern's final extension (`format::file_name`).
pub fn file_name_matches(pattern: &str, name: &str) -> bool {
    let tokens = tokenize(pattern);
    let chars: Vec<char> = name.chars().collect();
    matches_from(&tokens, &chars)
}

fn matches_from(tokens: &[PatternToken], name: &[char]) -> bool {
    let Some((&token, rest_tokens)) = tokens.split_first() else {
        return name.is_empty();
    };
    match token {
        PatternToken::Literal(c) => name.first() == Some(&c) && matches_from(rest_tokens, &name[1..]),
        PatternToken::Digits => {
            let digits = name.iter().take_while(|c| c.is_ascii_digit()).count();
            (1..=digits).rev().any(|n| matches_from(rest_tokens, &name[n..]))
        }
        PatternToken::AnyChars => (1..=name.len()).rev().any(|n| matches_from(rest_tokens, &name[n..])),
        PatternToken::Counter => {
            let digits = if name.first() == Some(&'.') { name[1..].iter().take_while(|c| c.is_ascii_digit()).count() } else { 0 };
            let counted = digits > 0 && name[1] != '0' && (1..=digits).rev().any(|n| matches_from(rest_tokens, &name[1 + n..]));
            counted || matches_from(rest_tokens, name)
        }
    }
}

/// Splits an output pattern into the directory to list (as given, `.` if none) and the
/// file-name part to match.
pub fn split_pattern(pattern: &str) -> (PathBuf, String) {
    let path = Path::new(pattern);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let directory = path.parent().map(Path::to_path_buf).unwrap_or_default();
    (directory.to_string_lossy().replace("%%", "%").into(), file_name)
}

/// The directory `pattern`'s files go into: its directory part, `.` when it has none.
pub fn output_directory(pattern: &str) -> PathBuf {
    let (directory, _) = split_pattern(pattern);
    if directory.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        directory
    }
}

/// Filesystem timestamps come from a coarse clock (one kernel tick, up to 10 ms, behind the
/// precise one): a file written right after `since` can carry an mtime slightly before it.
const COARSE_CLOCK_SLACK: Duration = Duration::from_millis(20);
/// How far before `since` a file with a header may have been modified last: its header start
/// time decides, precisely, so this only saves reading old files.
const MTIME_SLACK: Duration = Duration::from_secs(1);

/// The trace files written for `pattern` since `since`, sorted by path.
///
/// A file must match the pattern and have been modified at or after `since`. A file with a
/// readable header must have been started (header `start_unix_ns`) at or after `since`.
pub fn find_outputs(pattern: &str, since: SystemTime) -> Vec<PathBuf> {
    let (directory, file_pattern) = split_pattern(pattern);
    let listing_directory = if directory.as_os_str().is_empty() { Path::new(".") } else { directory.as_path() };
    let Ok(entries) = std::fs::read_dir(listing_directory) else {
        return Vec::new();
    };
    let earliest_mtime = since.checked_sub(MTIME_SLACK).unwrap_or(UNIX_EPOCH);
    let since_unix_ns = since.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| file_name_matches(&file_pattern, &entry.file_name().to_string_lossy()))
        .filter_map(|entry| {
            let mtime = entry.metadata().ok()?.modified().ok()?;
            let path = directory.join(entry.file_name());
            if mtime < earliest_mtime {
                return None;
            }
            let started_in_time = match read_header_start(&path) {
                Some(start_unix_ns) => u128::from(start_unix_ns) >= since_unix_ns,
                None => mtime >= since.checked_sub(COARSE_CLOCK_SLACK).unwrap_or(UNIX_EPOCH),
            };
            started_in_time.then_some(path)
        })
        .collect();
    found.sort();
    found
}

/// The header's start time of a trace file, reading only its beginning.
fn read_header_start(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut prefix = Vec::new();
    std::fs::File::open(path).ok()?.take(64 * 1024).read_to_end(&mut prefix).ok()?;
    format::read_trace(&prefix).header.map(|h| h.start_unix_ns)
}

/// Up to this many files, the report command names each; past it, a glob when one matches
/// exactly the files written.
pub const MAX_FILES_NAMED: usize = 8;

/// A `PROGRAM report` command line (`program`: how `sigtrace` was invoked) that reads exactly
/// `files` (the files of one run of `pattern`): each named, or with more than
/// `MAX_FILES_NAMED`, the pattern as a shell glob when in their directory it matches them and
/// nothing else (older runs' files would count too).
pub fn report_command(program: &str, pattern: &str, files: &[PathBuf]) -> String {
    let named = || files.iter().map(|file| shell_quote(&file.to_string_lossy())).collect::<Vec<_>>().join(" ");
    let arguments = if files.len() > MAX_FILES_NAMED { glob_matching_exactly(pattern, files).unwrap_or_else(named) } else { named() };
    format!("{} report {arguments}", shell_quote(program))
}

/// The pattern as a shell glob (`%p`, `%t`, `%e` and the counter's place as `*`), quoted for
/// the shell, when every one of `files` and no other file of their directory matches it.
fn glob_matching_exactly(pattern: &str, files: &[PathBuf]) -> Option<String> {
    let (directory, file_pattern) = split_pattern(pattern);
    let mut glob = String::new();
    for token in tokenize(&file_pattern) {
        match token {
            PatternToken::Literal(c) => glob.push(c),
            _ if glob.ends_with('*') => {}
            _ => glob.push('*'),
        }
    }
    let listing_directory = if directory.as_os_str().is_empty() { Path::new(".") } else { directory.as_path() };
    let matching: Vec<PathBuf> = std::fs::read_dir(listing_directory)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| glob_matches(&glob, &entry.file_name().to_string_lossy()))
        .map(|entry| directory.join(entry.file_name()))
        .collect();
    let exact = matching.len() == files.len() && files.iter().all(|file| matching.contains(file));
    if !exact {
        return None;
    }
    // Quote the literal runs, leave the stars to the shell.
    let quoted_name: String = glob.split('*').map(|part| if part.is_empty() { String::new() } else { shell_quote(part) }).collect::<Vec<_>>().join("*");
    Some(if directory.as_os_str().is_empty() { quoted_name } else { format!("{}/{quoted_name}", shell_quote(&directory.to_string_lossy())) })
}

/// Shell glob matching with `*` as the only wildcard (a leading `*` does not match a leading
/// `.`, as in the shell); the names the shell sees are the same (`glob` holds no `?` or `[`
/// that matter: they are quoted in the command).
fn glob_matches(glob: &str, name: &str) -> bool {
    fn from(glob: &[char], name: &[char]) -> bool {
        match glob.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|n| from(rest, &name[n..])),
            Some((c, rest)) => name.first() == Some(c) && from(rest, &name[1..]),
        }
    }
    if glob.starts_with('*') && name.starts_with('.') {
        return false;
    }
    let glob: Vec<char> = glob.chars().collect();
    let name: Vec<char> = name.chars().collect();
    from(&glob, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_what_the_shim_writes() {
        let pattern = config::DEFAULT_OUTPUT;
        assert!(file_name_matches(pattern, "sigtrace.true.1234.sigtrace"));
        assert!(file_name_matches(pattern, "sigtrace.my.app.7.sigtrace"));
        assert!(file_name_matches(pattern, "sigtrace.true.1234.1.sigtrace"));
        assert!(file_name_matches(pattern, "sigtrace.true.1234.12.sigtrace"));
        assert!(!file_name_matches(pattern, "sigtrace.true.1234.sigtrace.1"), "the counter is before the extension");
        assert!(!file_name_matches(pattern, "sigtrace..1234.sigtrace"));
        assert!(!file_name_matches(pattern, "sigtrace.true.pid.sigtrace"));
        assert!(!file_name_matches(pattern, "sigtrace.true.1234.sigtrace."));
        assert!(!file_name_matches(pattern, "sigtrace.true.1234.sigtrace2"));
        assert!(!file_name_matches(pattern, "xsigtrace.true.1234.sigtrace"));

        assert!(file_name_matches("app.%t-%p.trace", "app.1700000000-99.trace"));
        assert!(file_name_matches("app.%t-%p.trace", "app.1700000000-99.3.trace"));
        assert!(!file_name_matches("app.%t-%p.trace", "app.1700000000-.trace"));
        assert!(file_name_matches("100%%.%p", "100%.5"));
        assert!(file_name_matches("100%%.%p", "100%.5.1"), "no extension: the counter is appended");
        assert!(!file_name_matches("100%%.%p", "100%%.5"));
        assert!(file_name_matches("fixed.sigtrace", "fixed.sigtrace"));
        assert!(file_name_matches("fixed.sigtrace", "fixed.3.sigtrace"));
        assert!(!file_name_matches("fixed.sigtrace", "fixed.0.sigtrace"), "counters start at 1");
        assert!(!file_name_matches("fixed.sigtrace", "fixed.3.4.sigtrace"));
        assert!(!file_name_matches("fixed.sigtrace", "fixed.sigtrace.3"));
    }

    #[test]
    fn split_pattern_keeps_the_directory_as_given() {
        assert_eq!(split_pattern("out/%p.sigtrace"), (PathBuf::from("out"), "%p.sigtrace".to_string()));
        assert_eq!(split_pattern("%p.sigtrace"), (PathBuf::new(), "%p.sigtrace".to_string()));
        assert_eq!(split_pattern("/tmp/100%%/x"), (PathBuf::from("/tmp/100%"), "x".to_string()));
        assert_eq!(output_directory("%p.sigtrace"), PathBuf::from("."));
    }

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob_matches("make.*.sigtrace", "make.12.sigtrace"));
        assert!(glob_matches("make.*.sigtrace", "make.12.1.sigtrace"));
        assert!(!glob_matches("make.*.sigtrace", "make.12.sigtrace.1"));
        assert!(glob_matches("*.sigtrace", "12.sigtrace"));
        assert!(!glob_matches("*.sigtrace", ".12.sigtrace"));
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("./x.1.sigtrace"), "./x.1.sigtrace");
    }

    #[test]
    fn the_report_command_names_the_files_or_a_glob_that_matches_exactly_them() {
        let dir = std::env::temp_dir().join(format!("sigtrace-report-command-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pattern = format!("{}/m.%p.sigtrace", dir.display());
        let files: Vec<PathBuf> = (1..=10).map(|pid| dir.join(format!("m.{pid}.sigtrace"))).collect();
        for file in &files {
            std::fs::write(file, b"").unwrap();
        }
        let few = report_command("sigtrace", &pattern, &files[..2]);
        assert_eq!(few, format!("sigtrace report {} {}", shell_quote(&files[0].to_string_lossy()), shell_quote(&files[1].to_string_lossy())));
        let many = report_command("sigtrace", &pattern, &files);
        assert_eq!(many, format!("sigtrace report {}/m.*.sigtrace", shell_quote(&dir.to_string_lossy())));
        // An older file the glob would match too: every file is named instead.
        let old = dir.join("m.99.1.sigtrace");
        std::fs::write(&old, b"").unwrap();
        let named = report_command("sigtrace", &pattern, &files);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!named.contains('*') && named.matches("m.").count() == files.len(), "{named}");
    }
}
