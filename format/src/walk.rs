//! The codes of [`Generation::stack_walks`](crate::Generation::stack_walks): which unwinding method
//! produced a stack and why its walk ended, and the counters named after them.

/// Frame pointers, by choice (`SIGTRACE_UNWIND=fp`).
pub const METHOD_FP: u8 = 0;
/// DWARF CFI (frames without CFI follow frame pointers).
pub const METHOD_DWARF: u8 = 1;
/// Frame pointers because every DWARF unwind cache was in use.
pub const METHOD_FP_NO_CACHE: u8 = 2;
/// Frame pointers because too little stack was left below the interrupted one for DWARF.
pub const METHOD_FP_NO_STACK_ROOM: u8 = 3;
/// Frame pointers because the unwind tables were not built yet (first milliseconds).
pub const METHOD_FP_NOT_READY: u8 = 4;
/// Only the interrupted PC: DWARF was forced (`SIGTRACE_UNWIND=dwarf`) but could not run.
pub const METHOD_PC_ONLY: u8 = 5;
/// Only the interrupted PC: the stack the handler ran on had too little room for a walk.
pub const METHOD_PC_ONLY_NO_STACK_ROOM: u8 = 6;

/// The walk reached the outermost frame (a null return address or undefined CFI).
pub const END_ROOT: u8 = 0;
/// A read fell outside the thread's stack.
pub const END_STACK_BOUNDS: u8 = 1;
/// A frame did not advance, or a return address points outside all code (bad CFI or frame pointer).
pub const END_BAD_FRAME: u8 = 2;
/// `SIGTRACE_DEPTH` frames were taken.
pub const END_DEPTH_LIMIT: u8 = 3;

/// How `sigtrace info` names the method of a walk code.
pub fn method_name(code: u8) -> &'static str {
    match code >> 4 {
        METHOD_FP => "fp",
        METHOD_DWARF => "dwarf",
        METHOD_FP_NO_CACHE => "fp (no free DWARF cache)",
        METHOD_FP_NO_STACK_ROOM => "fp (no stack room for DWARF)",
        METHOD_FP_NOT_READY => "fp (unwind tables not ready)",
        METHOD_PC_ONLY => "pc only",
        METHOD_PC_ONLY_NO_STACK_ROOM => "pc only (no stack room for a walk)",
        _ => "unknown",
    }
}

/// How `sigtrace info` names the end of a walk code.
pub fn end_name(code: u8) -> &'static str {
    match code & 0x0f {
        END_ROOT => "root",
        END_STACK_BOUNDS => "stack bound",
        END_BAD_FRAME => "bad frame or CFI",
        END_DEPTH_LIMIT => "depth limit",
        _ => "unknown",
    }
}

/// The counters of samples per walk method (indexed by method) and per walk end (indexed
/// by end) that each generation carries.
pub const METHOD_COUNTERS: [&str; 7] = [
    "unwind.method.fp",
    "unwind.method.dwarf",
    "unwind.method.fp_no_cache",
    "unwind.method.fp_no_stack_room",
    "unwind.method.fp_not_ready",
    "unwind.method.pc_only",
    "unwind.method.pc_only_no_stack_room",
];
/// The counters of samples per walk end, indexed by end.
pub const END_COUNTERS: [&str; 4] = ["unwind.end.root", "unwind.end.stack_bounds", "unwind.end.bad_frame", "unwind.end.depth_limit"];
/// The prefix shared by [`END_COUNTERS`].
pub const END_COUNTER_PREFIX: &str = "unwind.end.";
