//! Small files of `/proc/self` read at start-up in as few system calls as the kernel allows:
//! `std::fs::read` probes a file whose size reads as 0 (every procfs file) with reads of 32
//! bytes, then doubles; a short process pays each of those.

use std::io::Read;

/// The contents of the procfs file at `path`, read into a buffer of 4 KiB to begin with.
pub fn read(path: &str) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0u8; 4096];
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            bytes.resize(bytes.len() * 2, 0);
        }
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// [`read`] as text (invalid UTF-8 replaced).
pub fn read_to_string(path: &str) -> std::io::Result<String> {
    read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}
