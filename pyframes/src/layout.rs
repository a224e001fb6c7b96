//! Where CPython keeps what the walk reads, per interpreter version (x86_64 and aarch64 LP64).
//!
//! Every offset was printed with `offsetof` by a C program compiled against that version's own
//! headers (`Include/internal/pycore_*.h`, `-DPy_BUILD_CORE`): pyenv's 3.9.18 and 3.10.13
//! headers for 3.9 and 3.10, Debian's 3.11.2 headers for 3.11, pyenv's 3.12.1 for 3.12. The layouts did not change within a minor version on these fields.

/// Offsets (bytes) of the fields the walk and the name resolution read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// (major, minor).
    pub version: (u8, u8),
    /// `_PyRuntimeState.interpreters.head`.
    pub runtime_interpreters_head: usize,
    /// `PyInterpreterState.next`, `.threads.head`.
    pub interp_next: usize,
    pub interp_threads_head: usize,
    /// `PyThreadState.next`, `.thread_id` (the `pthread_t`), `.cframe` (3.11, 3.12; its
    /// `current_frame` at `cframe_current_frame`) or `.current_frame` (3.13),
    /// `.datastack_chunk`.
    pub tstate_next: usize,
    pub tstate_thread_id: usize,
    pub tstate_cframe: usize,
    pub tstate_current_frame: Option<usize>,
    pub tstate_datastack_chunk: usize,
    /// Bytes of `PyThreadState` the walk copies (the whole struct).
    pub tstate_size: usize,
    /// `_PyCFrame.current_frame`.
    pub cframe_current_frame: usize,
    /// `_PyInterpreterFrame.f_code` (3.13: `.f_executable`), `.f_func`/`.f_funcobj` (3.9,
    /// 3.10: `PyFrameObject.f_globals`, the nearest the frame has),
    /// `.previous`, `.prev_instr` (3.13: `.instr_ptr`), `.is_entry` (3.11 only), `.owner`; the
    /// struct's size.
    pub frame_code: usize,
    pub frame_func: usize,
    pub frame_previous: usize,
    pub frame_prev_instr: usize,
    pub frame_is_entry: Option<usize>,
    pub frame_owner: usize,
    pub frame_size: usize,
    /// The frames are heap `PyFrameObject`s (3.9, 3.10): the thread state's frame is at
    /// `tstate_current_frame`, `frame_previous` is `f_back`, `frame_prev_instr` is `f_lasti`
    /// (an `int`, in bytes on 3.9 and code units on 3.10: `lasti_bytes_per_unit`), and each
    /// Python frame has its own evaluation call (an entry frame).
    pub frame_objects: bool,
    pub lasti_bytes_per_unit: u32,
    /// `FRAME_OWNED_BY_CSTACK`: the entry frame a C call into the interpreter pushes (3.12).
    pub owner_cstack: Option<u8>,
    /// `PyCodeObject.co_filename`, `.co_qualname` (3.9, 3.10: `.co_name`), `.co_firstlineno`
    /// (int), `.co_linetable` (3.9: `.co_lnotab`), `.co_code_adaptive` (the first instruction;
    /// 3.9, 3.10: the struct's size, all the name resolution reads).
    pub code_filename: usize,
    pub code_qualname: usize,
    pub code_firstlineno: usize,
    pub code_linetable: usize,
    pub code_adaptive: usize,
    /// `sizeof(PyASCIIObject)`, `sizeof(PyCompactUnicodeObject)`: where a compact string's
    /// characters start (ASCII, other).
    pub unicode_ascii_size: usize,
    pub unicode_compact_size: usize,
}

/// `PyObject.ob_type`.
pub const OB_TYPE: usize = 8;
/// `PyVarObject.ob_size`, `PyBytesObject.ob_sval`.
pub const VAR_SIZE: usize = 16;
pub const BYTES_DATA: usize = 32;
/// `PyASCIIObject.length`, `.state` (bit field: interned 2, kind 3, compact 1, ascii 1).
pub const UNICODE_LENGTH: usize = 16;
pub const UNICODE_STATE: usize = 32;
/// Every data stack chunk is at least this long (`DATA_STACK_CHUNK_SIZE`, 3.11–3.13), and
/// `_PyStackChunk.data` starts 24 bytes in.
pub const DATA_STACK_CHUNK_SIZE: u64 = 16 * 1024;
pub const DATA_STACK_CHUNK_HEADER: u64 = 24;

/// pyenv's 3.9.18 headers (`PyFrameObject` in `Include/cpython/frameobject.h`; only the prefix
/// up to `f_lineno` is read).
pub const PY_3_9: Layout = Layout {
    version: (3, 9),
    runtime_interpreters_head: 32,
    interp_next: 0,
    interp_threads_head: 8,
    tstate_next: 8,
    tstate_thread_id: 176,
    tstate_cframe: 0,
    tstate_current_frame: Some(24),
    tstate_datastack_chunk: 0,
    tstate_size: 264,
    cframe_current_frame: 0,
    frame_code: 32,
    frame_func: 48,
    frame_previous: 24,
    frame_prev_instr: 104,
    frame_is_entry: None,
    frame_owner: 0,
    frame_size: 112,
    frame_objects: true,
    lasti_bytes_per_unit: 2,
    owner_cstack: None,
    code_filename: 104,
    code_qualname: 112,
    code_firstlineno: 40,
    code_linetable: 120,
    code_adaptive: 176,
    unicode_ascii_size: 48,
    unicode_compact_size: 72,
};

/// pyenv's 3.10.13 headers.
pub const PY_3_10: Layout = Layout {
    version: (3, 10),
    runtime_interpreters_head: 32,
    interp_next: 0,
    interp_threads_head: 8,
    tstate_next: 8,
    tstate_thread_id: 176,
    tstate_cframe: 0,
    tstate_current_frame: Some(24),
    tstate_datastack_chunk: 0,
    tstate_size: 280,
    cframe_current_frame: 0,
    frame_code: 32,
    frame_func: 48,
    frame_previous: 24,
    frame_prev_instr: 96,
    frame_is_entry: None,
    frame_owner: 0,
    frame_size: 104,
    frame_objects: true,
    lasti_bytes_per_unit: 1,
    owner_cstack: None,
    code_filename: 104,
    code_qualname: 112,
    code_firstlineno: 40,
    code_linetable: 120,
    code_adaptive: 176,
    unicode_ascii_size: 48,
    unicode_compact_size: 72,
};

pub const PY_3_11: Layout = Layout {
    version: (3, 11),
    runtime_interpreters_head: 40,
    interp_next: 0,
    interp_threads_head: 16,
    tstate_next: 8,
    tstate_thread_id: 152,
    tstate_cframe: 56,
    tstate_current_frame: None,
    tstate_datastack_chunk: 296,
    tstate_size: 360,
    cframe_current_frame: 8,
    frame_code: 32,
    frame_func: 0,
    frame_previous: 48,
    frame_prev_instr: 56,
    frame_is_entry: Some(68),
    frame_owner: 69,
    frame_size: 80,
    frame_objects: false,
    lasti_bytes_per_unit: 2,
    owner_cstack: None,
    code_filename: 112,
    code_qualname: 128,
    code_firstlineno: 72,
    code_linetable: 136,
    code_adaptive: 184,
    unicode_ascii_size: 48,
    unicode_compact_size: 72,
};

pub const PY_3_12: Layout = Layout {
    version: (3, 12),
    runtime_interpreters_head: 40,
    interp_next: 0,
    interp_threads_head: 72,
    tstate_next: 8,
    tstate_thread_id: 136,
    tstate_cframe: 56,
    tstate_current_frame: None,
    tstate_datastack_chunk: 232,
    tstate_size: 288,
    cframe_current_frame: 0,
    frame_code: 0,
    frame_func: 16,
    frame_previous: 8,
    frame_prev_instr: 56,
    frame_is_entry: None,
    frame_owner: 70,
    frame_size: 80,
    frame_objects: false,
    lasti_bytes_per_unit: 2,
    owner_cstack: Some(3),
    code_filename: 112,
    code_qualname: 128,
    code_firstlineno: 68,
    code_linetable: 136,
    code_adaptive: 192,
    unicode_ascii_size: 40,
    unicode_compact_size: 56,
};

/// 3.13.0's headers; checked at start-up against the `_Py_DebugOffsets` the interpreter
/// publishes at the start of `_PyRuntime` ([`crate::runtime`]).
pub const PY_3_13: Layout = Layout {
    version: (3, 13),
    runtime_interpreters_head: 632,
    interp_next: 7264,
    interp_threads_head: 7344,
    tstate_next: 8,
    tstate_thread_id: 152,
    tstate_cframe: 0,
    tstate_current_frame: Some(72),
    tstate_datastack_chunk: 232,
    tstate_size: 304,
    cframe_current_frame: 0,
    frame_code: 0,
    frame_func: 16,
    frame_previous: 8,
    frame_prev_instr: 56,
    frame_is_entry: None,
    frame_owner: 70,
    frame_size: 80,
    frame_objects: false,
    lasti_bytes_per_unit: 2,
    owner_cstack: Some(3),
    code_filename: 112,
    code_qualname: 128,
    code_firstlineno: 68,
    code_linetable: 136,
    code_adaptive: 200,
    unicode_ascii_size: 40,
    unicode_compact_size: 56,
};

/// The layouts known, indexed by [`layout_index`] + 1 (0 means none).
pub const LAYOUTS: [Layout; 5] = [PY_3_9, PY_3_10, PY_3_11, PY_3_12, PY_3_13];

/// The index in [`LAYOUTS`] of the layout for CPython `major.minor`, if known.
pub fn layout_index(major: u8, minor: u8) -> Option<usize> {
    LAYOUTS.iter().position(|layout| layout.version == (major, minor))
}

/// Largest `PyThreadState` copied (bytes): the handler's buffer.
pub const MAX_TSTATE_SIZE: usize = 512;
/// Largest `_PyInterpreterFrame` prefix read.
pub const MAX_FRAME_SIZE: usize = 112;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_buffers_hold_every_layout() {
        for layout in LAYOUTS {
            assert!(layout.tstate_size <= MAX_TSTATE_SIZE);
            assert!(layout.frame_size <= MAX_FRAME_SIZE);
            assert!(layout.tstate_thread_id + 8 <= layout.tstate_size && layout.tstate_datastack_chunk + 8 <= layout.tstate_size);
        }
    }
}
