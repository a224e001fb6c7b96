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
    let version_address = symbol(c"Py_Version");
    let mut version = [0u8; 4];
    if version_address == 0 || !crate::read::copy(version_address, &mut version) {
        return Detected::Unsupported("CPython older than 3.11 (no Py_Version)".to_string());
    }
    // PY_VERSION_HEX: 0xMMmmppRS.
    let hex = u32::from_le_bytes(version);
    let (major, minor) = ((hex >> 24) as u8, (hex >> 16) as u8);
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
