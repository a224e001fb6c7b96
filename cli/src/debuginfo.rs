//! DWARF symbolisation: an SVMA → its source frames, inlined callees first, with files and
//! lines (addr2line), and where a module's DWARF lives: the file itself, a build-id debug file
//! or a `.gnu_debuglink` one.
//!
//! Search order for a separate debug file, as gdb does it (`DIR` is each debug directory,
//! `/usr/lib/debug` by default):
//! 1. `DIR/.build-id/ab/cdef….debug`, named by the module's build id;
//! 2. the `.gnu_debuglink` name next to the module, in its `.debug/` subdirectory, then in
//!    `DIR/<the module's directory>/`.
//!
//! A candidate is accepted only when it is the module's: same build id when both have one,
//! else the CRC-32 that `.gnu_debuglink` records. Split DWARF (`.dwo` files, a `.dwp`
//! package next to the file) is found by addr2line's `Loader`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

/// The default root of separate debug files.
pub const DEFAULT_DEBUG_DIR: &str = "/usr/lib/debug";

/// One frame at an address, as DWARF describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFrame {
    /// The raw (possibly mangled) function name; None when DWARF names no function here.
    pub function: Option<String>,
    /// The source file: for the innermost frame where the instruction comes from, for the
    /// others the file of the call site that was inlined.
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The DWARF of one module file, opened with addr2line.
pub struct DebugInfo {
    loader: addr2line::Loader,
}

impl DebugInfo {
    /// Opens the DWARF of `path` (the module itself or its separate debug file).
    pub fn open(path: &Path) -> Result<DebugInfo, String> {
        let loader = addr2line::Loader::new(path).map_err(|e| e.to_string())?;
        Ok(DebugInfo { loader })
    }

    /// The frames at `svma`, innermost (the most deeply inlined callee) first, the function
    /// that holds the instruction in the file last. Empty when DWARF does not cover `svma`.
    pub fn frames(&self, svma: u64) -> Vec<SourceFrame> {
        let mut frames = Vec::new();
        let Ok(mut iter) = self.loader.find_frames(svma) else { return frames };
        // A damaged DIE ends the list; the frames before it stay.
        while let Ok(Some(frame)) = iter.next() {
            let function = frame.function.as_ref().and_then(|name| name.raw_name().ok()).map(|name| name.into_owned());
            let (file, line) = match &frame.location {
                Some(location) => (location.file.map(str::to_string), location.line.filter(|&line| line != 0)),
                None => (None, None),
            };
            frames.push(SourceFrame { function, file, line });
        }
        // A frame with nothing at all in it (no DWARF for this address) is no frame.
        if frames.iter().all(|f| f.function.is_none() && f.file.is_none()) {
            frames.clear();
        }
        frames
    }
}

/// True when the ELF file `data` carries DWARF of its own (a non-empty `.debug_info`).
pub fn has_dwarf(data: &[u8]) -> bool {
    let Ok(file) = object::File::parse(data) else { return false };
    [".debug_info", ".zdebug_info"].iter().any(|name| file.section_by_name(name).is_some_and(|section| section.size() > 0))
}

/// A separate debug file that belongs to a module, read into memory.
pub struct SeparateDebugFile {
    pub path: PathBuf,
    pub data: Vec<u8>,
}

/// Finds the separate debug file of the module at `module_path`, whose contents are
/// `module_data` and whose build id is `build_id` (empty when it has none).
pub fn find_separate_debug_file(module_path: &Path, module_data: &[u8], build_id: &[u8], debug_dirs: &[PathBuf]) -> Option<SeparateDebugFile> {
    if build_id.len() >= 2 {
        let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
        for dir in debug_dirs {
            let candidate = dir.join(".build-id").join(&hex[..2]).join(format!("{}.debug", &hex[2..]));
            if let Some(found) = accept(&candidate, build_id, None) {
                return Some(found);
            }
        }
    }
    let file = object::File::parse(module_data).ok()?;
    let (name, crc) = file.gnu_debuglink().ok().flatten()?;
    let name = Path::new(OsStr::from_bytes(name));
    if name.as_os_str().is_empty() || name.components().count() != 1 {
        return None; // a debuglink is a bare file name
    }
    let module_dir = module_path.parent().unwrap_or(Path::new("/"));
    let mut candidates = vec![module_dir.join(name), module_dir.join(".debug").join(name)];
    let absolute_dir = std::fs::canonicalize(module_dir).unwrap_or_else(|_| module_dir.to_path_buf());
    let relative_dir = absolute_dir.strip_prefix("/").unwrap_or(&absolute_dir);
    candidates.extend(debug_dirs.iter().map(|dir| dir.join(relative_dir).join(name)));
    let module_identity = std::fs::canonicalize(module_path).ok();
    candidates
        .iter()
        .filter(|candidate| module_identity.is_none() || std::fs::canonicalize(candidate).ok() != module_identity)
        .find_map(|candidate| accept(candidate, build_id, Some(crc)))
}

/// Reads `candidate` and keeps it when it is an ELF file of the same build (same build id when
/// both have one, else the debuglink CRC when there is one).
fn accept(candidate: &Path, build_id: &[u8], crc: Option<u32>) -> Option<SeparateDebugFile> {
    if !candidate.is_file() {
        return None;
    }
    let data = std::fs::read(candidate).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let candidate_id = file.build_id().ok().flatten().unwrap_or_default();
    let same =
        if !build_id.is_empty() && !candidate_id.is_empty() { candidate_id == build_id } else { crc.is_some_and(|crc| writer::varint::crc32(&data) == crc) };
    same.then(|| SeparateDebugFile { path: candidate.to_path_buf(), data })
}
