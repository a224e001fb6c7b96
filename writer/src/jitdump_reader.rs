//! The runtime's jitdump file (`jit-PID.dump`), found as perf finds it — the runtime maps the
//! file executable as a marker, so its path is in `/proc/self/maps` — and read by the drain
//! thread as it grows, never by the handler (`format::jitdump` parses it). Only a regular file
//! owned by our user is read, opened without following a link and checked to be the mapped
//! file (device and inode); at most [`ROUND_BYTES`] per round and [`TOTAL_BYTES`] per trace.
//! A file that is not a jitdump this reader can follow gives one `sigtrace:` line and is left.

use crate::own_file::OwnFile;
use format::jitdump::{JitdumpCode, JitdumpCursor, ReadAt};

/// The most record bytes read in one drain round.
const ROUND_BYTES: u64 = 1 << 20;
/// The most record bytes read over a trace.
const TOTAL_BYTES: u64 = 64 << 20;
/// The first wait between searches of `/proc/self/maps` for the marker; it doubles after
/// each search that finds none, up to [`SEARCH_PERIOD_MAX_NS`] (reading the maps of a large
/// process costs hundreds of µs, and runtimes map their jitdump as they start).
const SEARCH_PERIOD_NS: u64 = 200_000_000;
/// The longest wait between searches.
const SEARCH_PERIOD_MAX_NS: u64 = 3_200_000_000;
/// The most bytes of `/proc/self/maps` read in one search.
const MAPS_BYTES: u64 = 8 << 20;

/// A jitdump file being read.
struct Open {
    file: DumpFile,
    path: String,
    cursor: JitdumpCursor,
}

/// The open jitdump, read with `pread`.
struct DumpFile(OwnFile);

impl ReadAt for DumpFile {
    fn available(&self) -> u64 {
        self.0.metadata().map_or(0, |stat| stat.st_size.max(0) as u64)
    }

    fn read_exact_at(&mut self, offset: u64, buffer: &mut [u8]) -> bool {
        self.0.read_exact_at(buffer, offset).is_ok()
    }
}

/// Where the search for, and the reading of, one process's jitdump stands.
pub(crate) struct JitdumpReader {
    /// The pid whose file this is (a forked child looks for its own).
    pid: u32,
    /// The trace's start (Unix ns): a file left behind must be modified after it.
    start_unix_ns: u64,
    /// When this reader was made (monotonic ns): the first search is one period later.
    created_ns: u64,
    /// When `/proc/self/maps` was last searched (monotonic ns), 0 never.
    searched_ns: u64,
    /// The wait before the next search.
    search_period_ns: u64,
    open: Option<Open>,
    /// True once the file was read to its end, refused or failed: it is not looked at again.
    done: bool,
}

impl JitdumpReader {
    /// A reader for `pid`'s jitdump; `now_ns` is the monotonic clock.
    pub(crate) fn new(pid: u32, start_unix_ns: u64, now_ns: u64) -> JitdumpReader {
        JitdumpReader { pid, start_unix_ns, created_ns: now_ns, searched_ns: 0, search_period_ns: SEARCH_PERIOD_NS, open: None, done: false }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The code the runtime named in its jitdump since the last call. `now_ns` is the
    /// monotonic clock; `search_now` searches for the marker whenever the last search was
    /// (at a generation's close); `notice` prints the one line on a file that cannot be
    /// followed. Drain thread only.
    ///
    /// The first search comes [`SEARCH_PERIOD_NS`] after the reader was made: a process that
    /// closes before (most short processes end so) only looks for a file left under the usual
    /// names, as searching the maps would cost it more than most of its start-up.
    pub(crate) fn poll(&mut self, now_ns: u64, search_now: bool, notice: fn(&str)) -> Vec<JitdumpCode> {
        if self.done {
            return Vec::new();
        }
        if self.open.is_none() && self.searched_ns == 0 && now_ns.saturating_sub(self.created_ns) < SEARCH_PERIOD_NS {
            if search_now {
                self.open = left_behind(self.pid, self.start_unix_ns).map(|(file, path)| Open { file: DumpFile(file), path, cursor: JitdumpCursor::default() });
            }
            return self.read_open(notice);
        }
        if self.open.is_none() {
            if !search_now && self.searched_ns != 0 && now_ns.saturating_sub(self.searched_ns) < self.search_period_ns {
                return Vec::new();
            }
            if self.searched_ns != 0 {
                self.search_period_ns = (self.search_period_ns * 2).min(SEARCH_PERIOD_MAX_NS);
            }
            self.searched_ns = now_ns;
            let Some(marker) = find_marker(self.pid) else {
                // The runtime unmaps its marker as it shuts down: at a close, a file it left
                // under the usual names is taken when its header names this process.
                if search_now {
                    self.open =
                        left_behind(self.pid, self.start_unix_ns).map(|(file, path)| Open { file: DumpFile(file), path, cursor: JitdumpCursor::default() });
                }
                return self.read_open(notice);
            };
            match open_checked(&marker) {
                Ok(file) => self.open = Some(Open { file: DumpFile(file), path: marker.path, cursor: JitdumpCursor::default() }),
                Err(why) => {
                    notice(&format!("sigtrace: the jitdump {} is not read ({why}); its JIT code stays unnamed", marker.path));
                    self.done = true;
                    return Vec::new();
                }
            }
        }
        self.read_open(notice)
    }

    /// Reads what the open file holds past the last read.
    fn read_open(&mut self, notice: fn(&str)) -> Vec<JitdumpCode> {
        let Some(open) = self.open.as_mut() else { return Vec::new() };
        let budget = ROUND_BYTES.min(TOTAL_BYTES.saturating_sub(open.cursor.bytes_read()));
        let mut code = Vec::new();
        if let Err(error) = open.cursor.read(&mut open.file, budget, &mut code) {
            notice(&format!("sigtrace: the jitdump {} is not read further: {error}", open.path));
            self.done = true;
        } else if open.cursor.closed() || open.cursor.bytes_read() >= TOTAL_BYTES {
            self.done = true;
        }
        if self.done {
            self.open = None;
        }
        code
    }
}

/// The runtime's marker mapping of its jitdump: path, device and inode.
#[derive(Debug, PartialEq, Eq)]
struct Marker {
    path: String,
    device: (u32, u32),
    inode: u64,
}

/// The first executable mapping in `/proc/self/maps` of a file named `jit-PID.dump`.
fn find_marker(pid: u32) -> Option<Marker> {
    let mut maps = Vec::new();
    OwnFile::open("/proc/self/maps", 0).ok()?.read_from(0, MAPS_BYTES, &mut maps).ok()?;
    marker_in(&maps, pid)
}

/// As [`find_marker`], from the text of a maps file.
fn marker_in(maps: &[u8], pid: u32) -> Option<Marker> {
    let name = format!("/jit-{pid}.dump");
    for line in maps.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let mut fields = text.splitn(6, ' ');
        let (Some(_), Some(perms), Some(_), Some(device), Some(inode), Some(path)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = path.trim_start();
        if perms.as_bytes().get(2) != Some(&b'x') || !path.starts_with('/') || !path.ends_with(&name) {
            continue;
        }
        let (major, minor) = device.split_once(':')?;
        let device = (u32::from_str_radix(major, 16).ok()?, u32::from_str_radix(minor, 16).ok()?);
        return Some(Marker { path: path.to_string(), device, inode: inode.parse().ok()? });
    }
    None
}

/// A jitdump of this process the runtime left under the usual names (`/tmp/jit-PID.dump`, or
/// `jit-PID.dump` in the working directory) after unmapping its marker: a regular file of our
/// user, reached without a link, modified since the trace began, whose header names `pid`.
fn left_behind(pid: u32, start_unix_ns: u64) -> Option<(OwnFile, String)> {
    let name = format!("jit-{pid}.dump");
    // The second is opened relative to the working directory, named in full once found.
    let candidates = [format!("/tmp/{name}"), name.clone()];
    candidates.into_iter().find_map(|path| {
        let file = OwnFile::open(&path, libc::O_NOFOLLOW | libc::O_NONBLOCK).ok()?;
        let path = if path.starts_with('/') { path } else { std::env::current_dir().map(|dir| dir.join(&path).to_string_lossy().into_owned()).unwrap_or(path) };
        let stat = file.metadata().ok()?;
        let modified_ns = (stat.st_mtime.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(stat.st_mtime_nsec.max(0) as u64);
        // SAFETY: geteuid has no preconditions.
        let ours = stat.st_uid == unsafe { libc::geteuid() };
        let mut header = [0u8; 24];
        let header_pid = file.read_exact_at(&mut header, 0).ok().map(|()| u32::from_ne_bytes([header[20], header[21], header[22], header[23]]));
        (is_regular(&stat) && ours && modified_ns >= start_unix_ns && header_pid == Some(pid)).then_some((file, path))
    })
}

fn is_regular(stat: &libc::stat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// Opens the marker's file: a regular file of our user, reached without a link, the very file
/// mapped.
fn open_checked(marker: &Marker) -> Result<OwnFile, &'static str> {
    let file = OwnFile::open(&marker.path, libc::O_NOFOLLOW | libc::O_NONBLOCK).map_err(|_| "it cannot be opened without following a link")?;
    let stat = file.metadata().map_err(|_| "it cannot be examined")?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let device = (libc::major(stat.st_dev), libc::minor(stat.st_dev));
    if !is_regular(&stat) {
        Err("not a regular file")
    } else if stat.st_uid != euid {
        Err("owned by another user")
    } else if (device, stat.st_ino) != (marker.device, marker.inode) {
        Err("the file under that name is not the one mapped")
    } else {
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_the_executable_mapping_of_our_dump() {
        let maps = b"55d0c0000000-55d0c0001000 r--p 00000000 fe:00 123 /usr/bin/python3.13\n\
7ffb87ff1000-7ffb87ff2000 r--p 00000000 fe:00 999 /tmp/jit-41.dump\n\
7ffb87ff2000-7ffb87ff3000 r-xp 00000000 fe:00 10010858                   /tmp/jit-41.dump\n\
7ffb87ff3000-7ffb87ff4000 r-xp 00000000 fe:00 5 /tmp/jit-4.dump\n";
        assert_eq!(marker_in(maps, 41), Some(Marker { path: "/tmp/jit-41.dump".into(), device: (0xfe, 0), inode: 10010858 }));
        assert_eq!(marker_in(maps, 1), None, "jit-41 is not jit-1's");
        assert_eq!(marker_in(b"\xff\xfe garbage\n1 2 3 4 5 6 7\n", 1), None);
    }

    #[test]
    fn a_dump_left_behind_is_taken_at_a_close_when_its_header_names_us() {
        let pid = 4_100_000 + std::process::id() % 100_000; // above pid_max: no real process
        let path = format!("/tmp/jit-{pid}.dump");
        let mut bytes = format::jitdump::build::header(0);
        format::jitdump::build::code_load(&mut bytes, 5, 0x7000, 1, "py::f:x.py", &[0xc3]);
        std::fs::write(&path, &bytes).unwrap();
        let names = |code: Vec<JitdumpCode>| code.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert!(JitdumpReader::new(pid, 0, 0).poll(1, true, |line| panic!("{line}")).is_empty(), "its header names pid 1");
        bytes[20..24].copy_from_slice(&pid.to_ne_bytes());
        std::fs::write(&path, &bytes).unwrap();
        assert!(JitdumpReader::new(pid, 0, 0).poll(1, false, |line| panic!("{line}")).is_empty(), "only at a close");
        assert!(JitdumpReader::new(pid, u64::MAX, 0).poll(1, true, |line| panic!("{line}")).is_empty(), "older than the trace");
        assert_eq!(names(JitdumpReader::new(pid, 0, 0).poll(1, true, |line| panic!("{line}"))), ["py::f:x.py"]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_mapped_dump_of_ours_is_read_as_it_grows() {
        let dir = std::env::temp_dir().join(format!("sigtrace-jitdump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("jit-{}.dump", std::process::id()));
        let mut bytes = format::jitdump::build::header(0);
        format::jitdump::build::code_load(&mut bytes, 5, 0x7000, 1, "py::f:x.py", &[0xc3]);
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a fresh private mapping of a file we own; unmapped below.
        let mapped =
            unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_EXEC, libc::MAP_PRIVATE, std::os::fd::AsRawFd::as_raw_fd(&file), 0) };
        assert_ne!(mapped, libc::MAP_FAILED);
        let mut reader = JitdumpReader::new(std::process::id(), 0, 0);
        let names = |code: Vec<JitdumpCode>| code.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert!(reader.poll(1, false, |line| panic!("{line}")).is_empty(), "no search in the first period");
        assert!(reader.poll(2, true, |line| panic!("{line}")).is_empty(), "a close in the first period looks at the usual names only");
        assert_eq!(names(reader.poll(SEARCH_PERIOD_NS, false, |line| panic!("{line}"))), ["py::f:x.py"]);
        let mut more = Vec::new();
        format::jitdump::build::code_load(&mut more, 6, 0x8000, 2, "py::g:x.py", &[0xc3]);
        std::fs::OpenOptions::new().append(true).open(&path).and_then(|mut f| std::io::Write::write_all(&mut f, &more)).unwrap();
        assert_eq!(names(reader.poll(SEARCH_PERIOD_NS + 1, false, |line| panic!("{line}"))), ["py::g:x.py"]);
        // SAFETY: mapped above, not used since.
        unsafe { libc::munmap(mapped, 4096) };
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
