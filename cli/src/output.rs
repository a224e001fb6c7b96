//! Where the commands' results go: stdout or a file, and `sigtrace: …` lines on stderr.
//! Nothing here panics when a pipe closes (`sigtrace report x | head` is fine).

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

/// Prints one `sigtrace: <message>` line on stderr.
pub fn warn(message: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "sigtrace: {message}");
}

/// `warn(format_args!(…))`, shorter.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::output::warn(format_args!($($arg)*)) };
}

/// Writes a command's result to `path`, or to stdout when there is none. A closed stdout pipe
/// is not an error; anything else is returned as a message.
pub fn write_result(path: Option<&Path>, bytes: &[u8]) -> Result<(), String> {
    write_result_with(path, |out| out.write_all(bytes))
}

/// Like [`write_result`], with the result written by `write` as it is produced (through a
/// buffer), so that a large result is never held whole in memory.
pub fn write_result_with(path: Option<&Path>, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), String> {
    match path {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let mut out = io::BufWriter::with_capacity(1 << 16, file);
            write(&mut out).and_then(|()| out.flush()).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
            match write(&mut out).and_then(|()| out.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(format!("cannot write to stdout: {e}")),
                _ => Ok(()),
            }
        }
    }
}
