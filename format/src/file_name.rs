//! The names of trace files when the name a pattern gives is taken: a counter goes before the
//! pattern's final extension (`demo.1234.sigtrace` → `demo.1234.1.sigtrace`), or at the end when
//! the pattern has none (`trace` → `trace.1`), so the extension stays last and a glob on it
//! (`demo.*.sigtrace`) finds every file of a process tree, exec'd images included.

/// The final extension of an output pattern, with its dot (`.sigtrace`), or `""` when it has
/// none. It is the text after the last `.` of the pattern's file name (after its last `/`), when
/// that text is not empty and holds no `%` (so every expanded name ends with it), and the dot
/// does not start the file name (`.sigtrace` alone names a hidden file, as in `Path::extension`).
pub fn final_extension(pattern: &str) -> &str {
    let file_name = pattern.rsplit('/').next().unwrap_or(pattern);
    match file_name.rfind('.') {
        Some(dot) if dot > 0 && dot + 1 < file_name.len() && !file_name[dot..].contains('%') => &file_name[dot..],
        _ => "",
    }
}

/// `path` with the counter `n` inserted before `extension` when `path` ends with it (and is
/// longer), else appended: `numbered("a.7.sigtrace", ".sigtrace", 1)` is `a.7.1.sigtrace`.
pub fn numbered(path: &str, extension: &str, n: u32) -> String {
    let stem_len = match path.strip_suffix(extension) {
        Some(stem) if !extension.is_empty() && !stem.is_empty() => stem.len(),
        _ => path.len(),
    };
    format!("{}.{n}{}", &path[..stem_len], &path[stem_len..])
}

/// The `n`th file (n ≥ 2) of the rotated series (`SIGTRACE_ROTATE`) whose first file is `base`:
/// `.rN` before `extension` as for [`numbered`] (`a.7.sigtrace` → `a.7.r2.sigtrace`).
pub fn rotated(base: &str, extension: &str, n: u32) -> String {
    let (stem, tail) = split_extension(base, extension);
    format!("{stem}.r{n}{tail}")
}

/// The position of `name` in the rotated series of `base` (1 for `base` itself, N for the file
/// [`rotated`] names N), or `None` when it is not one of its files.
pub fn rotation_index(base: &str, extension: &str, name: &str) -> Option<u32> {
    if name == base {
        return Some(1);
    }
    let (stem, tail) = split_extension(base, extension);
    let middle = name.strip_prefix(stem)?.strip_suffix(tail)?;
    let n: u32 = middle.strip_prefix(".r")?.parse().ok()?;
    (n >= 2 && middle == format!(".r{n}")).then_some(n)
}

/// `path` cut before `extension` when it ends with it (and is longer): (stem, extension).
fn split_extension<'a>(path: &'a str, extension: &str) -> (&'a str, &'a str) {
    match path.strip_suffix(extension) {
        Some(stem) if !extension.is_empty() && !stem.is_empty() => (stem, &path[stem.len()..]),
        _ => (path, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_take_r_and_their_number_before_the_extension() {
        assert_eq!(rotated("demo.1234.sigtrace", ".sigtrace", 2), "demo.1234.r2.sigtrace");
        assert_eq!(rotated("out.d/1234", "", 12), "out.d/1234.r12");
        assert_eq!(rotation_index("demo.1234.sigtrace", ".sigtrace", "demo.1234.sigtrace"), Some(1));
        assert_eq!(rotation_index("demo.1234.sigtrace", ".sigtrace", "demo.1234.r7.sigtrace"), Some(7));
        assert_eq!(rotation_index("demo.1234.sigtrace", ".sigtrace", "demo.1234.1.sigtrace"), None);
        assert_eq!(rotation_index("demo.1234.sigtrace", ".sigtrace", "demo.1234.r07.sigtrace"), None);
        assert_eq!(rotation_index("demo.1234.sigtrace", ".sigtrace", "demo.1234.r1.sigtrace"), None);
        assert_eq!(rotation_index("out.d/1234", "", "out.d/1234.r3"), Some(3));
    }

    #[test]
    fn the_extension_is_the_literal_text_after_the_last_dot_of_the_file_name() {
        assert_eq!(final_extension("sigtrace.%e.%p.sigtrace"), ".sigtrace");
        assert_eq!(final_extension("out/demo.%p.trace"), ".trace");
        assert_eq!(final_extension("out.d/%p"), "");
        assert_eq!(final_extension("trace.%p"), "", "the pid is not an extension");
        assert_eq!(final_extension("trace.%%"), "");
        assert_eq!(final_extension("dir/.sigtrace"), "");
        assert_eq!(final_extension("trace."), "");
        assert_eq!(final_extension("fixed.sigtrace"), ".sigtrace");
    }

    #[test]
    fn the_counter_goes_before_the_extension() {
        assert_eq!(numbered("demo.1234.sigtrace", ".sigtrace", 1), "demo.1234.1.sigtrace");
        assert_eq!(numbered("out.d/1234", "", 2), "out.d/1234.2");
        assert_eq!(numbered("a/b.sigtrace", ".other", 3), "a/b.sigtrace.3", "an extension the path lacks is ignored");
        assert_eq!(numbered(".sigtrace", ".sigtrace", 4), ".sigtrace.4");
    }
}
