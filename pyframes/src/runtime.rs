//! Finding the interpreter: `_PyRuntime` and the version of the CPython the process runs,
//! published once for the handler (before any timer can fire on a Python frame).

use crate::layout::{layout_index, Layout, LAYOUTS};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Address of `_PyRuntime`, 0 while no supported interpreter is known.
static RUNTIME: AtomicU64 = AtomicU64::new(0);
/// Index into `LAYOUTS` + 1; 0 while none.
static LAYOUT: AtomicUsize = AtomicUsize::new(0);
/// Address of `PyCode_Type`: what a code object's `ob_type` must be.
static CODE_TYPE: AtomicU64 = AtomicU64::new(0);

/// What [`detect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// No CPython in the process (or none exported `_PyRuntime`).
    None,
    /// A CPython whose frames are read, as `major.minor`.
    Supported(u8, u8),
    /// A CPython whose layout sigtrace does not know: native stacks only.
    Unsupported(String),
}

/// Looks for a CPython interpreter among the loaded objects (`_PyRuntime` and `Py_Version` in
/// the global symbol scope: the `python` executable or a `libpython` it links) and publishes it
/// to the handler. Idempotent; not for the handler (`dlsym`).
pub fn detect() -> Detected {
    crate::read::set_pid();
    if let Some(layout) = layout() {
        return Detected::Supported(layout.version.0, layout.version.1);
    }
    let symbol = |name: &std::ffi::CStr| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as u64 }
    };
    let runtime = symbol(c"_PyRuntime");
    if runtime == 0 {
        return Detected::None;
    }
    let Some((major, minor)) = version(symbol(c"Py_Version"), symbol(c"Py_GetVersion")) else {
        return Detected::Unsupported("CPython of unknown version (no Py_Version nor Py_GetVersion)".to_string());
    };
    let Some(index) = layout_index(major, minor) else {
        return Detected::Unsupported(format!("CPython {major}.{minor}"));
    };
    if let Err(why) = check_debug_offsets(runtime, &LAYOUTS[index]) {
        return Detected::Unsupported(format!("CPython {major}.{minor} ({why})"));
    }
    CODE_TYPE.store(symbol(c"PyCode_Type"), Ordering::Relaxed);
    RUNTIME.store(runtime, Ordering::Relaxed);
    LAYOUT.store(index + 1, Ordering::Release);
    Detected::Supported(major, minor)
}

/// The interpreter's (major, minor): from `Py_Version` (`PY_VERSION_HEX`, 3.11 and later) at
/// `hex_address`, else from the string `Py_GetVersion` (at `function`) returns ("3.9.18 (main,
/// …"): a pure function that formats constants, callable before the interpreter starts.
fn version(hex_address: u64, function: u64) -> Option<(u8, u8)> {
    let mut hex = [0u8; 4];
    if hex_address != 0 && crate::read::copy(hex_address, &mut hex) {
        // PY_VERSION_HEX: 0xMMmmppRS.
        let hex = u32::from_le_bytes(hex);
        return Some(((hex >> 24) as u8, (hex >> 16) as u8));
    }
    if function == 0 {
        return None;
    }
    // SAFETY: `Py_GetVersion`'s signature (`const char *(void)`); it returns a static
    // NUL-terminated string.
    let text = unsafe {
        let get_version: extern "C" fn() -> *const std::ffi::c_char = std::mem::transmute(function as usize);
        std::ffi::CStr::from_ptr(get_version())
    };
    parse_version(&text.to_string_lossy())
}

/// (major, minor) of a version string such as "3.10.13 (main, …)".
fn parse_version(text: &str) -> Option<(u8, u8)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The published interpreter: `_PyRuntime`'s address and its layout. Async-signal-safe.
#[inline]
pub fn interpreter() -> Option<(u64, &'static Layout)> {
    let index = LAYOUT.load(Ordering::Acquire);
    let layout = LAYOUTS.get(index.checked_sub(1)?)?;
    Some((RUNTIME.load(Ordering::Relaxed), layout))
}

/// The layout of the published interpreter. Async-signal-safe.
pub fn layout() -> Option<&'static Layout> {
    interpreter().map(|(_, layout)| layout)
}

/// Address of `PyCode_Type` (0 when unknown).
pub fn code_type() -> u64 {
    CODE_TYPE.load(Ordering::Relaxed)
}

/// Where a 3.13 `_Py_DebugOffsets` (at the start of `_PyRuntime`) keeps the offsets the walk
/// uses, as (offset in the struct, the layout's value): `Include/internal/pycore_runtime.h`.
fn debug_offsets_3_13(layout: &Layout) -> [(usize, u64); 15] {
    [
        (40, layout.runtime_interpreters_head as u64),
        (64, layout.interp_next as u64),
        (72, layout.interp_threads_head as u64),
        (168, layout.tstate_next as u64),
        (184, layout.tstate_current_frame.unwrap_or(0) as u64),
        (192, layout.tstate_thread_id as u64),
        (208, layout.tstate_datastack_chunk as u64),
        (232, layout.frame_previous as u64),
        (240, layout.frame_code as u64),
        (248, layout.frame_prev_instr as u64),
        (264, layout.frame_owner as u64),
        (280, layout.code_filename as u64),
        (296, layout.code_qualname as u64),
        (304, layout.code_linetable as u64),
        (344, layout.code_adaptive as u64),
    ]
}

/// From 3.13 on, the interpreter publishes its own offsets: they must agree with the table
/// (a free-threaded build, or a patched one, does not). Earlier versions have none to check.
fn check_debug_offsets(runtime: u64, layout: &Layout) -> Result<(), String> {
    if layout.version < (3, 13) {
        return Ok(());
    }
    let mut offsets = [0u8; 352];
    if !crate::read::copy(runtime, &mut offsets) || &offsets[..8] != b"xdebugpy" {
        return Err("no _Py_DebugOffsets".to_string());
    }
    if crate::read::u64_at(&offsets, 16) != 0 {
        return Err("free-threaded build".to_string());
    }
    for (at, expected) in debug_offsets_3_13(layout) {
        let published = crate::read::u64_at(&offsets, at);
        if published != expected {
            return Err(format!("its _Py_DebugOffsets differ from sigtrace's table at byte {at}: {published} != {expected}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_parse_from_py_getversion_strings() {
        assert_eq!(super::parse_version("3.9.18 (main, Nov  2 2026, 10:00:00) \n[GCC 12.2.0]"), Some((3, 9)));
        assert_eq!(super::parse_version("3.10.13"), Some((3, 10)));
        assert_eq!(super::parse_version("garbage"), None);
    }
}
