//! Offline symbolisation: a traced address → the functions, inline frames and source lines of
//! the module file it falls in. `symbols` (ELF symbol tables, the per-module cache, the time
//! limit) asks `debuginfo` (DWARF, separate debug files) and opens every file through
//! `file_guard` (the checks a path from a trace must pass); `debuginfod` fetches the debug info
//! of stripped modules by build id.

pub(crate) mod debuginfo;
pub(crate) mod debuginfod;
pub(crate) mod file_guard;
mod jit;
mod symbols;

pub use jit::JitTable;

/// Maps a module file a trace names, under the reader's rules (regular files only, not under
/// /dev, /proc or /sys).
pub fn map_module_file(path: &std::path::Path) -> Result<file_guard::MappedFile, file_guard::OpenError> {
    file_guard::map_file(path)
}
#[cfg(test)]
pub use symbols::demangle;
pub use symbols::{module_file_name, FrameName, ModuleMap, Symbolizer, JIT_MODULE};
