//! The trace file's name, from `SIGTRACE_OUTPUT` (its exclusive creation is
//! `writer::trace_file`).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_escape() {
        assert_eq!(expand_pattern("sigtrace.%e.%p.sigtrace", 42, "app", 7), "sigtrace.app.42.sigtrace");
        assert_eq!(expand_pattern("%t-%%-%x-%", 1, "a", 1700000000), "1700000000-%-%x-%");
    }
}
