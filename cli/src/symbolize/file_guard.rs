//! The one way the symboliser opens a file: module files named by a trace, and the debug files,
//! DWARF packages and split DWARF found from them. A trace is input from elsewhere, so its
//! paths must never make the reader block, read without bound, or read device or kernel files:
//!
//! 1. The path is resolved component by component (symlinks followed, at most 40), and refused
//!    when it is, or leads, under `/dev`, `/proc` or `/sys`; the file it ends at must be a
//!    regular file (`lstat`, before anything is opened).
//! 2. The resolved path is opened with `O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW`, so a
//!    FIFO or device swapped in meanwhile cannot block the open, take a terminal or be reached
//!    through a new symlink.
//! 3. The opened descriptor is checked again (`fstat`: a regular file of at most
//!    [`MAX_MAPPED_BYTES`]; `fstatfs`: not on procfs, sysfs or another kernel filesystem), which
//!    closes the race between step 1 and the open.
//! 4. The file is mapped read-only, never read into memory, for exactly the size checked; the
//!    size is checked once more after mapping (a file truncated meanwhile is refused).

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

/// The largest file mapped: no ELF file the symboliser needs comes near it, and a map costs
/// address space, not memory (pages are read only where the parsers look).
pub const MAX_MAPPED_BYTES: u64 = 4 << 30;

/// Top-level directories whose files are devices or the kernel's, never module files.
const FORBIDDEN_ROOTS: [&str; 3] = ["dev", "proc", "sys"];

/// Symlinks followed while resolving one path (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// `statfs.f_type` of the kernel's pseudo filesystems, refused wherever they are mounted.
const KERNEL_FILESYSTEMS: [(i64, &str); 9] = [
    (0x9fa0, "procfs"),
    (0x6265_6572, "sysfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0027_e0eb, "cgroupfs"),
    (0x6367_7270, "cgroup2fs"),
    (0x1cd1, "devpts"),
    (0xcafe_4a11, "bpffs"),
];

/// Why a file was not opened.
#[derive(Debug)]
pub enum OpenError {
    /// The path names no file (`ENOENT`, `ENOTDIR`): normal for a candidate debug file.
    Missing,
    /// The file exists but is not one the symboliser reads; the reason reads after a colon
    /// (`not a regular file (a FIFO)`).
    Refused(String),
    /// Opening or mapping failed (permissions, I/O).
    Failed(io::Error),
}

impl OpenError {
    fn from_io(error: io::Error) -> OpenError {
        match error.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => OpenError::Missing,
            _ => OpenError::Failed(error),
        }
    }
}

/// A regular file mapped read-only, at most [`MAX_MAPPED_BYTES`] long. Its bytes stay at the
/// same address for as long as the value lives, wherever it is moved.
pub struct MappedFile {
    /// None for an empty file (which cannot be mapped).
    map: Option<Mmap>,
}

impl Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Maps the file at `path` if it is one the symboliser may read (see the module doc).
pub fn map_file(path: &Path) -> Result<MappedFile, OpenError> {
    let resolved = resolve(path)?;
    let metadata = std::fs::symlink_metadata(&resolved).map_err(OpenError::from_io)?;
    check_regular(&metadata)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW) // std adds O_CLOEXEC
        .open(&resolved)
        .map_err(OpenError::from_io)?;
    let metadata = file.metadata().map_err(OpenError::Failed)?;
    check_regular(&metadata)?;
    check_filesystem(&file)?;
    let size = metadata.len();
    if size == 0 {
        return Ok(MappedFile { map: None });
    }
    // SAFETY: the map is read-only and private to this process; its contents may still change
    // if another process writes the file, which the parsers (object, gimli) tolerate as any
    // other malformed input. A truncation after the check below would make reads past the new
    // end raise SIGBUS; that needs a writer racing us on a file it owns, and costs only this
    // run of the CLI, never the traced program.
    let map = unsafe { MmapOptions::new().len(size as usize).map_copy_read_only(&file) }.map_err(OpenError::Failed)?;
    let size_now = file.metadata().map_err(OpenError::Failed)?.len();
    if size_now < size {
        return Err(OpenError::Refused(format!("it shrank from {size} to {size_now} bytes while being opened")));
    }
    Ok(MappedFile { map: Some(map) })
}

/// A regular file within the size cap, else the refusal.
fn check_regular(metadata: &std::fs::Metadata) -> Result<(), OpenError> {
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_symlink() {
        Some("a symlink")
    } else {
        Some("an unknown kind of file")
    };
    if let Some(what) = what {
        return Err(OpenError::Refused(format!("not a regular file ({what})")));
    }
    if metadata.size() > MAX_MAPPED_BYTES {
        return Err(OpenError::Refused(format!("it has {} bytes, over the cap of {MAX_MAPPED_BYTES}", metadata.size())));
    }
    Ok(())
}

/// Refuses a descriptor on one of the kernel's pseudo filesystems.
fn check_filesystem(file: &File) -> Result<(), OpenError> {
    // SAFETY: statfs is plain data that fstatfs fills in; the descriptor is open for the call.
    let mut stats: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut stats) } != 0 {
        return Err(OpenError::Failed(io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let kind = stats.f_type as i64;
    match KERNEL_FILESYSTEMS.iter().find(|(magic, _)| *magic == kind) {
        Some((_, name)) => Err(OpenError::Refused(format!("it is on {name}"))),
        None => Ok(()),
    }
}

/// The path with every symlink resolved (like `realpath`), refused as soon as it is, or leads,
/// under a forbidden root: `/proc/self/exe` is refused although it resolves to a regular file
/// elsewhere, and so is a symlink to `/dev/zero`.
fn resolve(path: &Path) -> Result<PathBuf, OpenError> {
    let mut resolved: Vec<OsString> = Vec::new();
    // The components still to walk, in reverse (the next one last).
    let mut pending: Vec<OsString> = Vec::new();
    let start = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().map_err(OpenError::Failed)?.join(path) };
    push_components(&mut pending, &start);
    let mut symlinks = 0;
    while let Some(component) = pending.pop() {
        if component == ".." {
            resolved.pop();
            continue;
        }
        resolved.push(component);
        let current = join(&resolved);
        if let Some(root) = forbidden_root(&resolved) {
            return Err(OpenError::Refused(if symlinks == 0 {
                format!("it is under /{root}")
            } else {
                let shown = if pending.is_empty() { current } else { current.join(join_relative(&pending)) };
                format!("it leads to {}, under /{root}", shown.display())
            }));
        }
        let metadata = std::fs::symlink_metadata(&current).map_err(OpenError::from_io)?;
        if metadata.file_type().is_symlink() {
            symlinks += 1;
            if symlinks > MAX_SYMLINKS {
                return Err(OpenError::Failed(io::Error::from_raw_os_error(libc::ELOOP)));
            }
            let target = std::fs::read_link(&current).map_err(OpenError::from_io)?;
            resolved.pop();
            if target.is_absolute() {
                resolved.clear();
            }
            push_components(&mut pending, &target);
        }
    }
    Ok(join(&resolved))
}

/// Pushes `path`'s normal and `..` components onto `pending` so that the first pops first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let components: Vec<OsString> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(components.into_iter().rev());
}

fn join(components: &[OsString]) -> PathBuf {
    let mut path = PathBuf::from("/");
    path.extend(components);
    path
}

/// The pending components (reversed) as a relative path, for messages.
fn join_relative(pending: &[OsString]) -> PathBuf {
    pending.iter().rev().collect()
}

/// The forbidden root `resolved` lies under, if any.
fn forbidden_root(resolved: &[OsString]) -> Option<&'static str> {
    let first = resolved.first()?;
    FORBIDDEN_ROOTS.iter().copied().find(|root| first.as_bytes() == root.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(path: &str) -> String {
        match map_file(Path::new(path)) {
            Err(OpenError::Refused(reason)) => reason,
            Err(other) => panic!("{path}: {other:?}"),
            Ok(_) => panic!("{path} was mapped"),
        }
    }

    #[test]
    fn device_and_kernel_paths_are_refused_before_opening() {
        assert_eq!(refusal("/dev/zero"), "it is under /dev");
        assert_eq!(refusal("/dev/../dev/null"), "it is under /dev");
        assert_eq!(refusal("/proc/self/exe"), "it is under /proc");
        assert_eq!(refusal("/sys/kernel/notes"), "it is under /sys");
        // `..` is applied to the resolved path, not to the text.
        assert_eq!(refusal("/usr/../proc/self/maps"), "it is under /proc");
    }

    #[test]
    fn symlinks_are_followed_into_the_refusal() {
        let dir = std::env::temp_dir().join(format!("sigtrace-file-guard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/dev", dir.join("devices")).unwrap();
        std::os::unix::fs::symlink("devices/urandom", dir.join("relative")).unwrap();
        assert_eq!(refusal(dir.join("relative").to_str().unwrap()), "it leads to /dev/urandom, under /dev");
        assert_eq!(refusal(dir.join("devices/zero").to_str().unwrap()), "it leads to /dev/zero, under /dev");
        std::os::unix::fs::symlink("loop", dir.join("loop")).unwrap();
        assert!(matches!(map_file(&dir.join("loop")), Err(OpenError::Failed(e)) if e.raw_os_error() == Some(libc::ELOOP)));
        assert!(matches!(map_file(&dir.join("absent")), Err(OpenError::Missing)));
        assert_eq!(refusal(dir.to_str().unwrap()), "not a regular file (a directory)");
        std::fs::write(dir.join("file"), b"\x7fELF").unwrap();
        std::os::unix::fs::symlink("file", dir.join("link-to-file")).unwrap();
        assert_eq!(&*map_file(&dir.join("link-to-file")).unwrap(), b"\x7fELF");
        std::fs::write(dir.join("empty"), b"").unwrap();
        assert!(map_file(&dir.join("empty")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
