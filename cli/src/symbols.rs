//! Offline symbolisation: a traced address → (function, module file name), from the ELF symbol
//! tables of the module files named in a generation's module table.
//!
//! Vocabulary as in framehop: an AVMA is an address in the traced process, an SVMA the same
//! address in the module file (`svma = avma - module.base`). Return addresses (every frame but
//! the leaf) are looked up at `avma - 1`, so a call that is the last instruction of a function
//! is attributed to the caller, not to whatever follows it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use object::{Object, ObjectSymbol, SymbolKind};
use writer::Module;

use crate::output::warn;

/// What a frame is called in reports and exports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameName {
    /// The demangled function name, or `module+0xSVMA` / `0xAVMA` when it is not known.
    pub function: String,
    /// The module's file name (no directory), or empty when no module covers the address.
    pub module: String,
}

/// One generation's modules sorted by start address, for address → module lookups.
pub struct ModuleMap<'a> {
    sorted: Vec<&'a Module>,
}

impl<'a> ModuleMap<'a> {
    pub fn new(modules: &'a [Module]) -> Self {
        let mut sorted: Vec<&Module> = modules.iter().filter(|m| m.start < m.end).collect();
        sorted.sort_by_key(|m| (m.start, m.end));
        ModuleMap { sorted }
    }

    /// The module whose range `start <= address < end` holds `address`.
    pub fn find(&self, address: u64) -> Option<&'a Module> {
        let after = self.sorted.partition_point(|m| m.start <= address);
        // Ranges should not overlap; if they do, prefer the latest start that still covers it.
        self.sorted[..after].iter().rev().take(4).find(|m| address < m.end).copied()
    }
}

/// A function symbol: `start <= svma < end`.
#[derive(Debug, Clone)]
struct SymbolEntry {
    start: u64,
    end: u64,
    name: String,
}

/// The function symbols of one ELF file, sorted by address.
#[derive(Debug, Default)]
pub struct SymbolTable {
    build_id: Vec<u8>,
    /// True when the names came from `.symtab` (or a debug file), false for `.dynsym` only.
    from_symtab: bool,
    symbols: Vec<SymbolEntry>,
}

impl SymbolTable {
    /// Parses an ELF file's function symbols: `.symtab`, else `.dynsym`.
    pub fn from_elf(data: &[u8]) -> Result<SymbolTable, String> {
        let file = object::File::parse(data).map_err(|e| e.to_string())?;
        let build_id = file.build_id().ok().flatten().unwrap_or_default().to_vec();
        let mut table = SymbolTable { build_id, from_symtab: true, symbols: collect_functions(file.symbols()) };
        if table.symbols.is_empty() {
            table.from_symtab = false;
            table.symbols = collect_functions(file.dynamic_symbols());
        }
        Ok(table)
    }

    /// The raw (mangled) name of the function holding `svma`.
    pub fn lookup(&self, svma: u64) -> Option<&str> {
        let after = self.symbols.partition_point(|s| s.start <= svma);
        // A small symbol nested in a larger one may precede `svma`; look back a little.
        self.symbols[..after].iter().rev().take(8).find(|s| svma < s.end).map(|s| s.name.as_str())
    }
}

fn collect_functions<'data, S, I>(symbols: I) -> Vec<SymbolEntry>
where
    S: ObjectSymbol<'data>,
    I: Iterator<Item = S>,
{
    let mut entries: Vec<(u64, u64, String)> = symbols
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .filter(|(_, _, name)| !name.is_empty())
        .collect();
    // At one address keep the sized, then the global-looking (shorter) name.
    entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.len().cmp(&b.2.len())));
    entries.dedup_by_key(|e| e.0);
    let starts: Vec<u64> = entries.iter().map(|e| e.0).collect();
    entries
        .into_iter()
        .enumerate()
        .map(|(index, (start, size, name))| {
            let end = if size > 0 {
                start.saturating_add(size)
            } else {
                // Unsized: runs to the next symbol (the last one gets a generous page).
                starts.get(index + 1).copied().unwrap_or(start.saturating_add(4096))
            };
            SymbolEntry { start, end, name }
        })
        .collect()
}

/// Demangles Rust (legacy and v0, hash dropped) and C++ names; anything else stays as it is.
pub fn demangle(name: &str) -> String {
    if let Ok(demangled) = rustc_demangle::try_demangle(name) {
        return format!("{demangled:#}");
    }
    if name.starts_with("_Z") {
        if let Ok(symbol) = cpp_demangle::Symbol::new(name.as_bytes()) {
            if let Ok(demangled) = symbol.demangle() {
                return demangled;
            }
        }
    }
    name.to_string()
}

/// The file name part of a module path (`/usr/lib/libc.so.6` → `libc.so.6`).
pub fn module_file_name(path: &str) -> String {
    Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.to_string())
}

/// Modules that name no file on disk.
fn is_pseudo_module(path: &str) -> bool {
    path.is_empty() || path.starts_with('[') || path == "linux-vdso.so.1" || path.starts_with("linux-vdso") || path.starts_with("linux-gate")
}

/// A (path, build id) pair seen in a module table, and the symbols usable for it.
struct ModuleEntry {
    file_name: String,
    /// None when the file can't be opened or is not the one that was traced.
    table: Option<Rc<SymbolTable>>,
}

/// Symbolises addresses against module tables, caching files, modules and addresses.
#[derive(Default)]
pub struct Symbolizer {
    /// Parsed files by path; None when the file could not be read or parsed.
    files: HashMap<String, Option<Rc<SymbolTable>>>,
    /// path → build id → index into `modules`.
    module_ids: HashMap<String, HashMap<Vec<u8>, usize>>,
    modules: Vec<ModuleEntry>,
    /// Paths already warned about (one warning per module).
    warned: HashSet<String>,
    /// (module index, svma) → name.
    cache: HashMap<(usize, u64), FrameName>,
}

impl Symbolizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the frame at `avma`; `is_return_address` for every frame but a stack's first.
    pub fn symbolize(&mut self, modules: &ModuleMap<'_>, avma: u64, is_return_address: bool) -> FrameName {
        let lookup_avma = if is_return_address { avma.saturating_sub(1) } else { avma };
        let Some(module) = modules.find(lookup_avma) else {
            return FrameName { function: format!("0x{avma:x}"), module: String::new() };
        };
        let svma = lookup_avma.wrapping_sub(module.base);
        let module_id = self.module_id(module);
        if let Some(name) = self.cache.get(&(module_id, svma)) {
            return name.clone();
        }
        let entry = &self.modules[module_id];
        let function = match entry.table.as_ref().and_then(|table| table.lookup(svma)) {
            Some(raw) => demangle(raw),
            None => format!("{}+0x{svma:x}", entry.file_name),
        };
        let name = FrameName { function, module: entry.file_name.clone() };
        self.cache.insert((module_id, svma), name.clone());
        name
    }

    fn module_id(&mut self, module: &Module) -> usize {
        if let Some(&id) = self.module_ids.get(module.path.as_str()).and_then(|ids| ids.get(module.build_id.as_slice())) {
            return id;
        }
        let table = self.table_for(module);
        let id = self.modules.len();
        self.modules.push(ModuleEntry { file_name: module_file_name(&module.path), table });
        self.module_ids.entry(module.path.clone()).or_default().insert(module.build_id.clone(), id);
        id
    }

    /// The symbol table to use for `module`, checking that the file is the one traced.
    fn table_for(&mut self, module: &Module) -> Option<Rc<SymbolTable>> {
        if is_pseudo_module(&module.path) {
            return None;
        }
        let table = self.open(&module.path)?;
        if !module.build_id.is_empty() && !table.build_id.is_empty() && module.build_id != table.build_id {
            self.warn_once(&module.path, format_args!("{} has changed since it was traced (build id differs); its frames stay unresolved", module.path));
            return None;
        }
        Some(table)
    }

    fn open(&mut self, path: &str) -> Option<Rc<SymbolTable>> {
        if let Some(table) = self.files.get(path) {
            return table.clone();
        }
        let table = match std::fs::read(path).map_err(|e| e.to_string()).and_then(|data| SymbolTable::from_elf(&data)) {
            Ok(mut table) => {
                if !table.from_symtab {
                    if let Some(debug) = debug_file_table(&table.build_id) {
                        table.symbols = debug.symbols;
                        table.from_symtab = true;
                    }
                }
                Some(Rc::new(table))
            }
            Err(error) => {
                self.warn_once(path, format_args!("cannot read symbols of {path}: {error}; its frames stay unresolved"));
                None
            }
        };
        self.files.insert(path.to_string(), table.clone());
        table
    }

    fn warn_once(&mut self, path: &str, message: std::fmt::Arguments<'_>) {
        if self.warned.insert(path.to_string()) {
            warn(message);
        }
    }
}

/// The symbols of a separate debug file found by build id (`/usr/lib/debug/.build-id/ab/cdef….debug`),
/// if one is installed and matches.
fn debug_file_table(build_id: &[u8]) -> Option<SymbolTable> {
    if build_id.len() < 2 {
        return None;
    }
    let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    let data = std::fs::read(path).ok()?;
    let table = SymbolTable::from_elf(&data).ok()?;
    (table.from_symtab && !table.symbols.is_empty() && (table.build_id.is_empty() || table.build_id == build_id)).then_some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_rust_and_cpp_and_leaves_c_alone() {
        assert_eq!(demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"), "core::ptr::drop_in_place");
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }

    #[test]
    fn module_map_finds_the_covering_module() {
        let modules = vec![
            Module { path: "/b".into(), base: 0x2000, start: 0x2000, end: 0x3000, build_id: vec![] },
            Module { path: "/a".into(), base: 0x1000, start: 0x1000, end: 0x1800, build_id: vec![] },
        ];
        let map = ModuleMap::new(&modules);
        assert_eq!(map.find(0x1000).map(|m| m.path.as_str()), Some("/a"));
        assert_eq!(map.find(0x17ff).map(|m| m.path.as_str()), Some("/a"));
        assert_eq!(map.find(0x1800), None);
        assert_eq!(map.find(0x2fff).map(|m| m.path.as_str()), Some("/b"));
        assert_eq!(map.find(0x3000), None);
        assert_eq!(map.find(0x10), None);
    }

    #[test]
    fn unresolved_frames_name_module_and_offset() {
        let modules = vec![
            Module { path: "[vdso]".into(), base: 0x7000, start: 0x7000, end: 0x8000, build_id: vec![] },
            Module { path: "/nonexistent/libgone.so".into(), base: 0x10000, start: 0x10000, end: 0x20000, build_id: vec![1] },
        ];
        let map = ModuleMap::new(&modules);
        let mut symbolizer = Symbolizer::new();
        let vdso = symbolizer.symbolize(&map, 0x7010, false);
        assert_eq!(vdso, FrameName { function: "[vdso]+0x10".into(), module: "[vdso]".into() });
        // A return address is looked up (and shown) one byte earlier.
        let gone = symbolizer.symbolize(&map, 0x10100, true);
        assert_eq!(gone, FrameName { function: "libgone.so+0xff".into(), module: "libgone.so".into() });
        assert_eq!(symbolizer.symbolize(&map, 0x5, false).function, "0x5");
    }
}
