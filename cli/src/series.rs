//! Rotated series (`SIGTRACE_ROTATE`): `app.1234.sigtrace`, `app.1234.r2.sigtrace`, … read as one
//! trace. A user names a series by its first file, by its base name once that file was deleted
//! (`SIGTRACE_KEEP`), or by a glob of its files: each name is widened to every file of its
//! series found beside it, in series order, each file once. The loaders then read files whose
//! headers are identical (same process image, same start) as one trace.

use std::path::{Path, PathBuf};

/// The base name and final extension of the series `name` would belong to: `name` itself, or
/// `stem.ext` for a `stem.rN.ext`.
fn series_base(name: &str) -> (String, &str) {
    let extension = format::file_name::final_extension(name);
    let stem = name.strip_suffix(extension).filter(|stem| !extension.is_empty() && !stem.is_empty()).unwrap_or(name);
    if let Some((before, number)) = stem.rsplit_once(".r") {
        if !before.is_empty() && number.parse::<u32>().is_ok_and(|n| n >= 2 && number == n.to_string()) {
            return (format!("{before}{}", if stem.len() == name.len() { "" } else { extension }), extension);
        }
    }
    (name.to_string(), extension)
}

/// The files of the series `path` names, in series order (`path` alone when it names no series).
fn members(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else { return vec![path.to_path_buf()] };
    let (base, extension) = series_base(name);
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let entry_name = entry.file_name().into_string().ok()?;
            let n = format::file_name::rotation_index(&base, extension, &entry_name)?;
            Some((n, path.with_file_name(entry_name)))
        })
        .collect();
    if found.iter().all(|(n, _)| *n == 1) {
        return vec![path.to_path_buf()];
    }
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

/// `paths` with each name widened to its whole series (see the module docs), each file once,
/// in the order first named.
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for path in paths {
        for member in members(path) {
            if !out.contains(&member) {
                out.push(member);
            }
        }
    }
    out
}

/// Consecutive runs of `paths` that belong to one series by their headers (`key`: the same
/// process image and start), each run in the order given.
pub fn group<K: PartialEq>(paths: &[PathBuf], key: impl Fn(&Path) -> Option<K>) -> Vec<Vec<PathBuf>> {
    let mut groups: Vec<(Option<K>, Vec<PathBuf>)> = Vec::new();
    for path in paths {
        let this = key(path);
        match groups.last_mut() {
            Some((last, members)) if this.is_some() && *last == this => members.push(path.clone()),
            _ => groups.push((this, vec![path.clone()])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_name_belongs_to_the_series_of_its_base() {
        assert_eq!(series_base("app.12.r3.sigtrace"), ("app.12.sigtrace".to_string(), ".sigtrace"));
        assert_eq!(series_base("app.12.sigtrace"), ("app.12.sigtrace".to_string(), ".sigtrace"));
        assert_eq!(series_base("app.12.r1.sigtrace"), ("app.12.r1.sigtrace".to_string(), ".sigtrace"));
        assert_eq!(series_base("out.r04.sigtrace"), ("out.r04.sigtrace".to_string(), ".sigtrace"));
    }

    #[test]
    fn names_widen_to_their_series_in_order() {
        let dir = std::env::temp_dir().join(format!("sigtrace-series-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a.1.r10.sigtrace", "a.1.r9.sigtrace", "a.1.r2.sigtrace", "b.2.sigtrace", "a.1.5.sigtrace"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let names = |paths: Vec<PathBuf>| paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect::<Vec<_>>();
        let series = ["a.1.r2.sigtrace", "a.1.r9.sigtrace", "a.1.r10.sigtrace"];
        assert_eq!(names(expand(&[dir.join("a.1.sigtrace")])), series, "the base name, its file deleted");
        assert_eq!(names(expand(&[dir.join("a.1.r9.sigtrace")])), series, "one file of it");
        assert_eq!(
            names(expand(&[dir.join("a.1.r10.sigtrace"), dir.join("a.1.r2.sigtrace"), dir.join("b.2.sigtrace")])),
            [&series[..], &["b.2.sigtrace"]].concat()
        );
        assert_eq!(names(expand(&[dir.join("b.2.sigtrace")])), ["b.2.sigtrace"]);
        assert_eq!(names(expand(&[dir.join("missing.sigtrace")])), ["missing.sigtrace"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
