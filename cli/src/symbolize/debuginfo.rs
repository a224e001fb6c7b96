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
//! else the CRC-32 that `.gnu_debuglink` records. Split DWARF: a `.dwp` package next to the
//! file, else the `.dwo` file a skeleton unit names, checked by its DWO id.
//!
//! Every file is opened and mapped through `file_guard` (regular files only, never under
//! `/dev`, `/proc` or `/sys`, size-capped), never read whole into memory; only compressed
//! sections are expanded, within [`MAX_DECOMPRESSED_BYTES`] per module.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use addr2line::gimli::{self, EndianSlice, RunTimeEndian, SectionId};
use addr2line::{Context, LookupContinuation, LookupResult};
use object::{CompressionFormat, Object, ObjectSection};

use super::file_guard::{map_file, MappedFile, OpenError};
use crate::format_numbers::hex;

/// The default root of separate debug files.
pub const DEFAULT_DEBUG_DIR: &str = "/usr/lib/debug";

/// The most the compressed DWARF sections of one module (its split DWARF included) may expand
/// to in memory: a few kilobytes of zlib can claim gigabytes. Real DWARF stays far below it
/// (Debian's libc debug file expands to ~10 MiB).
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

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

/// DWARF section data: a slice of a mapped file or of a decompressed section held by the
/// same [`DebugInfo`] (see [`Backing`]).
type Slice = EndianSlice<'static, RunTimeEndian>;

/// Memory that DWARF slices point into: kept alive by their [`DebugInfo`], never moved.
enum Backing {
    Mapped(MappedFile),
    Decompressed(Box<[u8]>),
}

impl Backing {
    fn decompressed_len(&self) -> u64 {
        match self {
            Backing::Mapped(_) => 0,
            Backing::Decompressed(data) => data.len() as u64,
        }
    }

    /// The bytes, with the lifetime of the `DebugInfo` that will own this backing.
    ///
    /// # Safety
    /// The caller must keep `self` alive (in `DebugInfo::backing`) for as long as the returned
    /// slice or anything made from it is used. Moving `self` is fine: the bytes live in a
    /// mapping or on the heap, not inline.
    unsafe fn bytes(&self) -> &'static [u8] {
        let bytes: &[u8] = match self {
            Backing::Mapped(file) => file,
            Backing::Decompressed(data) => data,
        };
        // SAFETY: the caller guarantees the bytes outlive every use of the slice (above).
        unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) }
    }
}

/// A file the DWARF came from or led to that was refused or failed to open: reported by the
/// symboliser once, with the path and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: PathBuf,
    /// What the file is to the module: `split DWARF`, `the DWARF package`.
    pub role: &'static str,
    pub reason: String,
}

/// The DWARF of one module file (the module itself or its separate debug file), read through
/// mapped files only, with its split DWARF (a `.dwp` package next to it, `.dwo` files named by
/// its units) opened through the same guard when a lookup needs it.
pub struct DebugInfo {
    /// Declared before `backing`, so it is dropped before the bytes it borrows.
    context: Context<Slice>,
    package: Option<gimli::DwarfPackage<Slice>>,
    /// Split DWARF files that were refused or failed, not yet reported.
    skipped: RefCell<Vec<SkippedFile>>,
    /// Every mapping and decompressed section the slices above point into. Only ever grows.
    backing: RefCell<Vec<Backing>>,
}

impl DebugInfo {
    /// Opens the DWARF of `file`, mapped from `path`. The `.dwp` package next to `path` is
    /// used when there is one.
    pub fn open(path: &Path, file: MappedFile) -> Result<DebugInfo, String> {
        let backing = RefCell::new(Vec::new());
        let dwarf = load_dwarf(Backing::Mapped(file), &backing, false)?;
        let context = Context::from_dwarf(dwarf).map_err(|e| e.to_string())?;
        let mut skipped = Vec::new();
        let mut package_path = path.as_os_str().to_os_string();
        package_path.push(".dwp");
        let package = match map_file(Path::new(&package_path)) {
            Ok(file) => load_package(file, &backing).ok(),
            Err(OpenError::Missing) => None,
            Err(error) => {
                skipped.push(SkippedFile { path: package_path.into(), role: "the DWARF package", reason: describe(error) });
                None
            }
        };
        Ok(DebugInfo { context, package, skipped: RefCell::new(skipped), backing })
    }

    /// The frames at `svma`, innermost (the most deeply inlined callee) first, the function
    /// that holds the instruction in the file last. Empty when DWARF does not cover `svma`.
    pub fn frames(&self, svma: u64) -> Vec<SourceFrame> {
        let mut frames = Vec::new();
        let mut lookup = self.context.find_frames(svma);
        let iter = loop {
            match lookup {
                LookupResult::Output(Ok(iter)) => break iter,
                LookupResult::Output(Err(_)) => return frames,
                LookupResult::Load { load, continuation } => lookup = continuation.resume(self.load_split_unit(load)),
            }
        };
        let mut iter = iter;
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

    /// The split DWARF files refused or failed since the last call.
    pub fn take_skipped(&self) -> Vec<SkippedFile> {
        std::mem::take(&mut *self.skipped.borrow_mut())
    }

    /// The DWARF of a split unit: from the package, else from the `.dwo` file its skeleton
    /// names (relative to its compilation directory), if that is the unit's.
    fn load_split_unit(&self, load: addr2line::SplitDwarfLoad<Slice>) -> Option<Arc<gimli::Dwarf<Slice>>> {
        if let Some(package) = &self.package {
            if let Ok(Some(unit)) = package.find_cu(load.dwo_id, &load.parent) {
                return Some(Arc::new(unit));
            }
        }
        let mut path = PathBuf::new();
        if let Some(dir) = &load.comp_dir {
            path.push(OsStr::from_bytes(dir.slice()));
        }
        path.push(OsStr::from_bytes(load.path.as_ref()?.slice()));
        let file = match map_file(&path) {
            Ok(file) => file,
            Err(OpenError::Missing) => return None,
            Err(error) => {
                self.skipped.borrow_mut().push(SkippedFile { path, role: "split DWARF", reason: describe(error) });
                return None;
            }
        };
        let mut dwarf = load_dwarf(Backing::Mapped(file), &self.backing, true).ok()?;
        let header = dwarf.units().next().ok()??;
        if dwarf.unit(header).ok()?.dwo_id != Some(load.dwo_id) {
            return None;
        }
        dwarf.make_dwo(&load.parent);
        Some(Arc::new(dwarf))
    }
}

/// A refusal's or failure's reason, for a message.
pub fn describe(error: OpenError) -> String {
    match error {
        OpenError::Missing => "no such file".to_string(),
        OpenError::Refused(reason) => reason,
        OpenError::Failed(error) => error.to_string(),
    }
}

/// Parses the ELF file held by `file` (kept in `backing`) and loads its DWARF sections (the
/// `.dwo` names when `split`).
fn load_dwarf(file: Backing, backing: &RefCell<Vec<Backing>>, split: bool) -> Result<gimli::Dwarf<Slice>, String> {
    // SAFETY: `file` goes into `backing`, which the DebugInfo owns after everything made from it.
    let data = unsafe { file.bytes() };
    backing.borrow_mut().push(file);
    let object = object::File::parse(data).map_err(|e| e.to_string())?;
    let endian = if object.is_little_endian() { RunTimeEndian::Little } else { RunTimeEndian::Big };
    gimli::Dwarf::load(|id: SectionId| section(&object, if split { id.dwo_name() } else { Some(id.name()) }, endian, backing)).map_err(|e| e.to_string())
}

/// Loads a DWARF package (`.dwp`) held by `file`.
fn load_package(file: MappedFile, backing: &RefCell<Vec<Backing>>) -> Result<gimli::DwarfPackage<Slice>, String> {
    let file = Backing::Mapped(file);
    // SAFETY: as in `load_dwarf`.
    let data = unsafe { file.bytes() };
    backing.borrow_mut().push(file);
    let object = object::File::parse(data).map_err(|e| e.to_string())?;
    let endian = if object.is_little_endian() { RunTimeEndian::Little } else { RunTimeEndian::Big };
    let empty = EndianSlice::new(&[][..], endian);
    gimli::DwarfPackage::load(|id: SectionId| section(&object, id.dwo_name(), endian, backing), empty).map_err(|e: gimli::Error| e.to_string())
}

/// The named section's data, decompressed when it is compressed (while the module's total stays
/// within [`MAX_DECOMPRESSED_BYTES`]); empty when there is no such section.
fn section(object: &object::File<'static>, name: Option<&str>, endian: RunTimeEndian, backing: &RefCell<Vec<Backing>>) -> Result<Slice, gimli::Error> {
    let Some(section) = name.and_then(|name| object.section_by_name(name)) else {
        return Ok(EndianSlice::new(&[][..], endian));
    };
    let Ok(compressed) = section.compressed_data() else { return Ok(EndianSlice::new(&[][..], endian)) };
    if compressed.format != CompressionFormat::None {
        let decompressed: u64 = backing.borrow().iter().map(Backing::decompressed_len).sum();
        if compressed.uncompressed_size > MAX_DECOMPRESSED_BYTES.saturating_sub(decompressed) {
            return Ok(EndianSlice::new(&[][..], endian)); // as if absent: the symbol table still names functions
        }
    }
    let data: &'static [u8] = match compressed.decompress() {
        Ok(Cow::Borrowed(data)) => data,
        Ok(Cow::Owned(data)) => {
            let owned = Backing::Decompressed(data.into_boxed_slice());
            // SAFETY: as in `load_dwarf`.
            let bytes = unsafe { owned.bytes() };
            backing.borrow_mut().push(owned);
            bytes
        }
        Err(_) => &[],
    };
    Ok(EndianSlice::new(data, endian))
}

/// True when the ELF file `data` carries DWARF of its own (a non-empty `.debug_info`).
pub fn has_dwarf(data: &[u8]) -> bool {
    let Ok(file) = object::File::parse(data) else { return false };
    [".debug_info", ".zdebug_info"].iter().any(|name| file.section_by_name(name).is_some_and(|section| section.size() > 0))
}

/// A separate debug file that belongs to a module, mapped.
pub struct SeparateDebugFile {
    pub path: PathBuf,
    pub data: MappedFile,
}

/// Finds the separate debug file of the module at `module_path`, whose contents are
/// `module_data` and whose build id is `build_id` (empty when it has none). Candidates that
/// exist but were refused or failed to open are added to `skipped`.
pub fn find_separate_debug_file(
    module_path: &Path,
    module_data: &[u8],
    build_id: &[u8],
    debug_dirs: &[PathBuf],
    skipped: &mut Vec<SkippedFile>,
) -> Option<SeparateDebugFile> {
    if build_id.len() >= 2 {
        let build_id_hex = hex(build_id);
        for dir in debug_dirs {
            let candidate = dir.join(".build-id").join(&build_id_hex[..2]).join(format!("{}.debug", &build_id_hex[2..]));
            if let Some(found) = accept(&candidate, build_id, None, skipped) {
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
        .find_map(|candidate| accept(candidate, build_id, Some(crc), skipped))
}

/// Maps `candidate` and keeps it when it is an ELF file with the build id `build_id` (not empty).
pub fn accept_by_build_id(candidate: &Path, build_id: &[u8], skipped: &mut Vec<SkippedFile>) -> Option<SeparateDebugFile> {
    if build_id.is_empty() {
        return None;
    }
    accept(candidate, build_id, None, skipped)
}

/// Maps `candidate` and keeps it when it is an ELF file of the same build (same build id when
/// both have one, else the debuglink CRC when there is one).
fn accept(candidate: &Path, build_id: &[u8], crc: Option<u32>, skipped: &mut Vec<SkippedFile>) -> Option<SeparateDebugFile> {
    let data = match map_file(candidate) {
        Ok(data) => data,
        Err(OpenError::Missing) => return None,
        Err(error) => {
            skipped.push(SkippedFile { path: candidate.to_path_buf(), role: "a separate debug file", reason: describe(error) });
            return None;
        }
    };
    let file = object::File::parse(&*data).ok()?;
    let candidate_id = file.build_id().ok().flatten().unwrap_or_default();
    let same = if !build_id.is_empty() && !candidate_id.is_empty() { candidate_id == build_id } else { crc.is_some_and(|crc| format::crc32(&data) == crc) };
    same.then(|| SeparateDebugFile { path: candidate.to_path_buf(), data })
}
