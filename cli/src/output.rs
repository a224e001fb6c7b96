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
    match path {
        Some(path) => std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            let mut stdout = io::stdout().lock();
            match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(format!("cannot write to stdout: {e}")),
                _ => Ok(()),
            }
        }
    }
}
