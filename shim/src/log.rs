//! One-line messages on stderr, each starting with `sigtrace:`. Never from the handler.

use std::sync::atomic::{AtomicU8, Ordering};

pub use ::config::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);

pub fn set_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: LogLevel) -> bool {
    level != LogLevel::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes `sigtrace: <message>\n` to fd 2 with one `write`, if `level` is enabled.
pub fn log(level: LogLevel, message: &str) {
    if !enabled(level) {
        return;
    }
    let line = format!("sigtrace: {message}\n");
    // SAFETY: writes our own buffer to fd 2; a failed write is ignored (nothing else to do).
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

pub fn error(message: &str) {
    log(LogLevel::Error, message);
}

pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

pub fn info(message: &str) {
    log(LogLevel::Info, message);
}
