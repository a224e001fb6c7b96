//! Offline symbolisation: a traced address → the functions, inline frames and source lines of
//! the module file it falls in. `symbols` (ELF symbol tables, the per-module cache, the time
//! limit) asks `debuginfo` (DWARF, separate debug files) and opens every file through
//! `file_guard` (the checks a path from a trace must pass).

pub(crate) mod debuginfo;
pub(crate) mod file_guard;
mod jit;
mod symbols;

pub use jit::JitTable;
#[cfg(test)]
pub use symbols::demangle;
pub use symbols::{module_file_name, FrameName, ModuleMap, Symbolizer};
