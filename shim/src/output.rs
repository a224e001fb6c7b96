//! The trace file's name and its exclusive creation: no trace file is ever truncated or
//! overwritten; a taken name gets the next free `.N` suffix.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;

/// Expands `%p` (pid), `%e` (executable file name), `%t` (start time, Unix seconds) and `%%`.
/// Any other `%x` is kept as written.
pub fn expand_pattern(pattern: &str, pid: u32, executable_name: &str, start_unix_seconds: u64) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('p') => out.push_str(&pid.to_string()),
            Some('e') => out.push_str(executable_name),
            Some('t') => out.push_str(&start_unix_seconds.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Creates `path`, or `path.1`, `path.2`, … if taken, with `O_EXCL` (and `O_CLOEXEC`).
pub fn create_exclusive(path: &str) -> std::io::Result<(File, String)> {
    for attempt in 0..10_000u32 {
        let candidate = if attempt == 0 { path.to_string() } else { format!("{path}.{attempt}") };
        match OpenOptions::new().write(true).create_new(true).mode(0o644).open(&candidate) {
            Ok(file) => return Ok((file, candidate)),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::new(ErrorKind::AlreadyExists, "10000 names with this pattern are taken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_escape() {
        assert_eq!(expand_pattern("sigtrace.%e.%p.sigtrace", 42, "app", 7), "sigtrace.app.42.sigtrace");
        assert_eq!(expand_pattern("%t-%%-%x-%", 1, "a", 1700000000), "1700000000-%-%x-%");
    }

    #[test]
    fn never_overwrites() {
        let dir = std::env::temp_dir().join(format!("sigtrace-output-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sigtrace").to_string_lossy().into_owned();
        let (_, first) = create_exclusive(&path).unwrap();
        let (_, second) = create_exclusive(&path).unwrap();
        let (_, third) = create_exclusive(&path).unwrap();
        assert_eq!(first, path);
        assert_eq!(second, format!("{path}.1"));
        assert_eq!(third, format!("{path}.2"));
        assert!(create_exclusive(&dir.join("missing/t").to_string_lossy()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
