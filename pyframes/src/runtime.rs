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
/// the global symbol scope: the `python` executable or a `libpython` it links; else in each
/// loaded `libpython*`, which an embedding program may have opened `RTLD_LOCAL`) and publishes
/// it to the handler. Idempotent; not for the handler (`dlsym`).
pub fn detect() -> Detected {
    crate::read::set_pid();
    if let Some(layout) = layout() {
        return Detected::Supported(layout.version.0, layout.version.1);
    }
    let Some(scope) = Scope::find() else { return Detected::None };
    let detected = detect_in(&scope);
    drop(scope);
    detected
}

/// Reads the version and publishes the interpreter whose `_PyRuntime` `scope` holds.
fn detect_in(scope: &Scope) -> Detected {
    let symbol = |name: &std::ffi::CStr| scope.symbol(name);
    let runtime = symbol(c"_PyRuntime");
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

/// Where the interpreter's symbols are looked up: the global scope, or the handle of a loaded
/// `libpython*` (opened with `RTLD_NOLOAD` through libc's own `dlopen`, not sigtrace's
/// interposed one, and closed again when dropped: the library stays loaded).
struct Scope {
    handle: *mut libc::c_void,
    opened: bool,
}

impl Scope {
    fn find() -> Option<Scope> {
        let global = Scope { handle: libc::RTLD_DEFAULT, opened: false };
        if global.symbol(c"_PyRuntime") != 0 {
            return Some(global);
        }
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the symbol up.
        let dlopen = unsafe { libc::dlsym(libc::RTLD_NEXT, c"dlopen".as_ptr()) };
        if dlopen.is_null() {
            return None;
        }
        // SAFETY: libc's dlopen has this signature.
        let dlopen: unsafe extern "C" fn(*const std::ffi::c_char, i32) -> *mut libc::c_void = unsafe { std::mem::transmute(dlopen) };
        for path in loaded_libpythons() {
            // SAFETY: a NUL-terminated path; RTLD_NOLOAD only returns a handle of an object
            // already loaded (one more reference, dropped by `Scope::drop`).
            let handle = unsafe { dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
            if handle.is_null() {
                continue;
            }
            let scope = Scope { handle, opened: true };
            if scope.symbol(c"_PyRuntime") != 0 {
                return Some(scope);
            }
        }
        None
    }

    /// The address of `name` in this scope, 0 when absent.
    fn symbol(&self, name: &std::ffi::CStr) -> u64 {
        // SAFETY: a valid handle (RTLD_DEFAULT or one of ours) and a NUL-terminated name.
        unsafe { libc::dlsym(self.handle, name.as_ptr()) as u64 }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if self.opened {
            // SAFETY: the handle dlopen gave us, closed once.
            unsafe { libc::dlclose(self.handle) };
        }
    }
}

/// The paths of the loaded objects whose file name starts with `libpython`.
fn loaded_libpythons() -> Vec<std::ffi::CString> {
    extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: usize, paths: *mut libc::c_void) -> i32 {
        // SAFETY: the loader's info for one object; `paths` is the Vec passed below.
        let (name, paths) = unsafe { ((*info).dlpi_name, &mut *paths.cast::<Vec<std::ffi::CString>>()) };
        if !name.is_null() {
            // SAFETY: a NUL-terminated name owned by the loader for this call.
            let name = unsafe { std::ffi::CStr::from_ptr(name) };
            let file = name.to_bytes().rsplit(|&b| b == b'/').next().unwrap_or_default();
            if file.starts_with(b"libpython") {
                paths.push(name.to_owned());
            }
        }
        0
    }
    let mut paths: Vec<std::ffi::CString> = Vec::new();
    // SAFETY: the callback only reads each info and pushes into `paths`, alive for the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut paths as *mut Vec<std::ffi::CString>).cast()) };
    paths
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
