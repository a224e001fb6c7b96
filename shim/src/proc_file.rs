//! Small files of `/proc/self` read in as few system calls as the kernel allows (`std::fs::read`
//! probes a file whose size reads as 0, as every procfs file's, with reads of 32 bytes, then
//! doubles; a short process pays each of those), through a descriptor checked as sigtrace's own
//! before each read and the close (`writer::own_file`): the program may close it and take its
//! number at any moment.

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
