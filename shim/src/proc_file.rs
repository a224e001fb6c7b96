//! Small files of `/proc/self` read in as few system calls as the kernel allows (`std::fs::read`
//! probes a file whose size reads as 0, as every procfs file's, with reads of 32 bytes, then
//! doubles; a short process pays each of those).
//!
//! [`read`] goes through a descriptor checked as sigtrace's own before each read and the close
//! (`writer::own_file`): the program may close it and take its number at any moment.
//! [`read_at_start`] is for the library's constructor: a descriptor opened, read to the end and
//! closed within the call, as libc's own short reads of `/proc` are (three system calls for a
//! small file, against nine). Before `main` no other thread of the program runs; a program that
//! `dlopen`s sigtrace while another of its threads closes numbers it does not own would meet
//! libc's own reads the same way.

/// The contents of the procfs file at `path`.
pub fn read(path: &str) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    writer::own_file::OwnFile::open(path, 0)?.read_from(0, u64::MAX, &mut bytes)?;
    Ok(bytes)
}

/// [`read`] as text (invalid UTF-8 replaced).
pub fn read_to_string(path: &str) -> std::io::Result<String> {
    read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The contents of the procfs file at `path`, through a descriptor that lives only within this
/// call (see the module doc: for the constructor).
pub fn read_at_start(path: &std::ffi::CStr) -> std::io::Result<Vec<u8>> {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut bytes = Vec::with_capacity(4096);
    let result = loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity());
        }
        let spare = bytes.spare_capacity_mut();
        // SAFETY: reads into the vector's spare capacity, `spare.len()` bytes valid for writes.
        let read = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
        match read {
            0 => break Ok(()),
            // SAFETY: the kernel initialised the `read` bytes after the current length.
            n if n > 0 => unsafe { bytes.set_len(bytes.len() + n as usize) },
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => break Err(std::io::Error::last_os_error()),
        }
    };
    // SAFETY: closes the descriptor opened above, which no other code has seen.
    unsafe { libc::close(fd) };
    result.map(|()| bytes)
}
