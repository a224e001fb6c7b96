//! Offline symbolisation: a traced address → its frames (function, module file name, source
//! file and line), from the module files named in a generation's module table: their DWARF
//! (see `debuginfo`, inline frames included) and their ELF symbol tables (here).
//!
//! Vocabulary as in framehop: an AVMA is an address in the traced process, an SVMA the same
//! address in the module file (`svma = avma - module.base`). Return addresses (every frame but
//! the leaf) are looked up at `avma - 1`, so a call that is the last instruction of a function
//! is attributed to the caller, not to whatever follows it.
//!
//! A trace is input from elsewhere: module files are opened only through `file_guard` (regular
//! files, never under `/dev`, `/proc` or `/sys`, mapped, size-capped), and the work on one module
//! file is time-boxed ([`MODULE_TIME_LIMIT`]). A module refused or out of time is reported once,
//! on one `sigtrace:` line, and its addresses keep their `module+0xOFFSET` names.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use format::Module;
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

use super::debuginfo::{accept_by_build_id, describe, find_separate_debug_file, has_dwarf, DebugInfo, SeparateDebugFile, SkippedFile, DEFAULT_DEBUG_DIR};
use super::file_guard::{map_file, MappedFile, OpenError};
use crate::output::warn;

/// The time the symbolisation of one module file may take, all its work added up: opening it
/// (symbol table, `.eh_frame` ranges, debug files; their loops check the clock every
/// `WORK_BETWEEN_CLOCK_CHECKS` items) and every address looked up in it (checked between
/// addresses; one DWARF lookup is not interrupted). Past it, the module's remaining addresses
/// keep their `module+0xOFFSET` names. Real modules take milliseconds (libc with its DWARF:
/// ~50 ms for a few hundred addresses).
pub const MODULE_TIME_LIMIT: Duration = Duration::from_secs(5);

/// Symbols or `.eh_frame` entries handled between two looks at the clock.
const WORK_BETWEEN_CLOCK_CHECKS: usize = 4096;

/// True once `deadline` (if any) has passed; looks at the clock only every
/// [`WORK_BETWEEN_CLOCK_CHECKS`] items.
fn out_of_time(index: usize, deadline: Option<Instant>) -> bool {
    index % WORK_BETWEEN_CLOCK_CHECKS == WORK_BETWEEN_CLOCK_CHECKS - 1 && deadline.is_some_and(|deadline| Instant::now() >= deadline)
}

/// What a frame is called in reports and exports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameName {
    /// The demangled function name, or `module+0xSVMA` / `0xAVMA` when it is not known.
    pub function: String,
    /// The module's file name (no directory), or empty when no module covers the address.
    pub module: String,
    /// The source file as DWARF names it (often absolute), or empty when not known.
    pub file: String,
    /// The source line, or 0 when not known.
    pub line: u32,
    /// The name as the file spells it (mangled, from the symbol table or DWARF's linkage
    /// name); empty when the function is not known by name (`function` is then an address).
    pub system_name: String,
}

impl FrameName {
    /// A frame known by name (or address) only, without a source location.
    pub fn unresolved(function: String, module: String) -> FrameName {
        FrameName { function, module, file: String::new(), line: 0, system_name: String::new() }
    }

    /// `file.c:42` (the file name without its directory), `file.c`, or None when unknown.
    pub fn location(&self) -> Option<String> {
        if self.file.is_empty() {
            return None;
        }
        let name = module_file_name(&self.file);
        Some(if self.line == 0 { name } else { format!("{name}:{}", self.line) })
    }
}

/// The module name JIT frames carry.
pub const JIT_MODULE: &str = "[jit]";

/// One generation's modules sorted by start address, for address → module lookups, and the
/// trace's JIT symbols with the generation's end time.
pub struct ModuleMap<'a> {
    sorted: Vec<&'a Module>,
    jit: Option<(&'a super::JitTable, u64)>,
}

impl<'a> ModuleMap<'a> {
    pub fn new(modules: &'a [Module]) -> Self {
        let mut sorted: Vec<&Module> = modules.iter().filter(|m| m.start < m.end).collect();
        sorted.sort_by_key(|m| (m.start, m.end));
        ModuleMap { sorted, jit: None }
    }

    /// The same map naming addresses outside every module from `jit` as of `time` (the
    /// generation's end, header clock ticks).
    pub fn with_jit(self, jit: &'a super::JitTable, time: u64) -> Self {
        ModuleMap { jit: (!jit.is_empty()).then_some((jit, time)), ..self }
    }

    /// True when `address` is known code: in a module, or in generated code a JIT symbol names.
    pub fn is_code(&self, address: u64) -> bool {
        self.find(address).is_some() || self.jit_symbol(address).is_some()
    }

    /// The JIT symbol naming `address` (outside every module) and its index in the table.
    pub fn jit_symbol(&self, address: u64) -> Option<(usize, &'a format::JitSymbol)> {
        let (table, time) = self.jit?;
        table.lookup(address, time)
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
    /// Function ranges from `.eh_frame` (sorted), for a stripped file: an unnamed address is
    /// reported at the start of its function, so its samples add up per function.
    function_ranges: Vec<(u64, u64)>,
}

impl SymbolTable {
    /// Parses an ELF file's function symbols: `.symtab`, else `.dynsym`. Stops collecting
    /// (keeping what it has) once `deadline` has passed.
    pub fn from_elf(data: &[u8], deadline: Option<Instant>) -> Result<SymbolTable, String> {
        let file = object::File::parse(data).map_err(|e| e.to_string())?;
        let build_id = file.build_id().ok().flatten().unwrap_or_default().to_vec();
        let mut table = SymbolTable { build_id, from_symtab: true, symbols: collect_functions(file.symbols(), deadline), function_ranges: Vec::new() };
        if table.symbols.is_empty() {
            table.from_symtab = false;
            table.symbols = collect_functions(file.dynamic_symbols(), deadline);
            table.function_ranges = eh_frame_function_ranges(&file, deadline);
        }
        Ok(table)
    }

    /// The start of the `.eh_frame` function range holding `svma` (stripped files only).
    pub fn function_start(&self, svma: u64) -> Option<u64> {
        let after = self.function_ranges.partition_point(|range| range.0 <= svma);
        self.function_ranges[..after].last().filter(|range| svma < range.1).map(|range| range.0)
    }

    /// The raw (mangled) name of the function holding `svma`.
    pub fn lookup(&self, svma: u64) -> Option<&str> {
        let after = self.symbols.partition_point(|s| s.start <= svma);
        // A small symbol nested in a larger one may precede `svma`; look back a little.
        self.symbols[..after].iter().rev().take(8).find(|s| svma < s.end).map(|s| s.name.as_str())
    }
}

fn collect_functions<'data, S, I>(symbols: I, deadline: Option<Instant>) -> Vec<SymbolEntry>
where
    S: ObjectSymbol<'data>,
    I: Iterator<Item = S>,
{
    let mut entries: Vec<(u64, u64, String)> = symbols
        .enumerate()
        .take_while(|(index, _)| !out_of_time(*index, deadline))
        .map(|(_, symbol)| symbol)
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

/// The address ranges of the functions described by the file's `.eh_frame` (FDEs), sorted.
fn eh_frame_function_ranges(file: &object::File<'_>, deadline: Option<Instant>) -> Vec<(u64, u64)> {
    use addr2line::gimli::{BaseAddresses, CieOrFde, EhFrame, LittleEndian, UnwindSection};
    let Some(section) = file.section_by_name(".eh_frame") else { return Vec::new() };
    let Ok(data) = section.data() else { return Vec::new() };
    let mut eh_frame = EhFrame::new(data, LittleEndian);
    eh_frame.set_address_size(8);
    let mut bases = BaseAddresses::default().set_eh_frame(section.address());
    if let Some(text) = file.section_by_name(".text") {
        bases = bases.set_text(text.address());
    }
    let mut ranges = Vec::new();
    let mut entries = eh_frame.entries(&bases);
    for index in 0.. {
        let Ok(Some(entry)) = entries.next() else { break };
        if out_of_time(index, deadline) {
            break;
        }
        if let CieOrFde::Fde(partial) = entry {
            if let Ok(fde) = partial.parse(|section, bases, offset| section.cie_from_offset(bases, offset)) {
                if fde.len() > 0 {
                    ranges.push((fde.initial_address(), fde.initial_address().saturating_add(fde.len())));
                }
            }
        }
    }
    ranges.sort_unstable();
    ranges
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

/// A module file opened for symbolisation: its symbol table and, when there is any, its DWARF.
struct ModuleFile {
    /// The path the trace names.
    path: String,
    table: SymbolTable,
    debug: Option<DebugInfo>,
    /// The time spent on this file so far: opening it and looking addresses up.
    spent: Cell<Duration>,
}

/// A (path, build id) pair seen in a module table, and the file usable for it.
struct ModuleEntry {
    file_name: String,
    /// None when the file can't be opened or is not the one that was traced.
    file: Option<Rc<ModuleFile>>,
}

/// Symbolises addresses against module tables, caching files, modules and addresses.
pub struct Symbolizer {
    /// Roots of separate debug files (`/usr/lib/debug`).
    debug_dirs: Vec<PathBuf>,
    /// Opened files by path; None when the file could not be read or parsed.
    files: HashMap<String, Option<Rc<ModuleFile>>>,
    /// path → build id → index into `modules`.
    module_ids: HashMap<String, HashMap<Vec<u8>, usize>>,
    modules: Vec<ModuleEntry>,
    /// Paths already warned about (one warning per module).
    warned: HashSet<String>,
    /// (module index, svma) → frames, innermost first.
    cache: HashMap<(usize, u64), Rc<[FrameName]>>,
    /// The time one module file's symbolisation may take ([`MODULE_TIME_LIMIT`]).
    time_limit: Duration,
    /// The debuginfod client, made from the environment when a stripped module first needs it.
    debuginfod: Option<super::debuginfod::Debuginfod>,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Symbolizer::with_debug_dirs(vec![PathBuf::from(DEFAULT_DEBUG_DIR)])
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A symbolizer that looks for separate debug files under `debug_dirs` instead of `/usr/lib/debug`.
    pub fn with_debug_dirs(debug_dirs: Vec<PathBuf>) -> Self {
        Symbolizer {
            debug_dirs,
            files: HashMap::new(),
            module_ids: HashMap::new(),
            modules: Vec::new(),
            warned: HashSet::new(),
            cache: HashMap::new(),
            time_limit: MODULE_TIME_LIMIT,
            debuginfod: None,
        }
    }

    /// The keys of the warnings printed so far, sorted (tests).
    #[cfg(test)]
    pub fn warnings(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.warned.iter().cloned().collect();
        keys.sort();
        keys
    }

    /// The same symbolizer with another time limit per module file (tests).
    #[cfg(test)]
    pub fn with_time_limit(mut self, time_limit: Duration) -> Self {
        self.time_limit = time_limit;
        self
    }

    /// Names the frames at `avma`, innermost first: the functions inlined at that address,
    /// then the function that holds it. Never empty. `is_return_address` for every frame but
    /// a stack's first.
    pub fn symbolize(&mut self, modules: &ModuleMap<'_>, avma: u64, is_return_address: bool) -> Rc<[FrameName]> {
        let lookup_avma = if is_return_address { avma.saturating_sub(1) } else { avma };
        let Some(module) = modules.find(lookup_avma) else {
            if let Some((_, symbol)) = modules.jit_symbol(lookup_avma) {
                return Rc::new([FrameName::unresolved(symbol.name.clone(), JIT_MODULE.to_string())]);
            }
            return Rc::new([FrameName::unresolved(format!("0x{avma:x}"), String::new())]);
        };
        let svma = lookup_avma.wrapping_sub(module.base);
        let module_id = self.module_id(module);
        if let Some(frames) = self.cache.get(&(module_id, svma)) {
            return frames.clone();
        }
        let entry = &self.modules[module_id];
        let file_name = entry.file_name.clone();
        let frames: Rc<[FrameName]> = match entry.file.clone() {
            Some(file) if file.spent.get() < self.time_limit => {
                let started = Instant::now();
                let frames = file_frames(&file, &file_name, svma).into();
                file.spent.set(file.spent.get() + started.elapsed());
                if let Some(debug) = &file.debug {
                    self.report_skipped(&file.path, debug.take_skipped());
                }
                frames
            }
            file => {
                if let Some(file) = file {
                    let limit = self.time_limit;
                    let message = format_args!(
                        "stopped symbolising {} (named by the trace as a module): it took over the {limit:?} limit; its other addresses stay module+offset",
                        file.path
                    );
                    self.warn_once(&format!("{} (time limit)", file.path), message);
                }
                Rc::new([FrameName::unresolved(format!("{file_name}+0x{svma:x}"), file_name)])
            }
        };
        self.cache.insert((module_id, svma), frames.clone());
        frames
    }

    fn module_id(&mut self, module: &Module) -> usize {
        if let Some(&id) = self.module_ids.get(module.path.as_str()).and_then(|ids| ids.get(module.build_id.as_slice())) {
            return id;
        }
        let file = self.file_for(module);
        let id = self.modules.len();
        self.modules.push(ModuleEntry { file_name: module_file_name(&module.path), file });
        self.module_ids.entry(module.path.clone()).or_default().insert(module.build_id.clone(), id);
        id
    }

    /// The file to use for `module`, checking that it is the one traced.
    fn file_for(&mut self, module: &Module) -> Option<Rc<ModuleFile>> {
        if is_pseudo_module(&module.path) {
            return None;
        }
        let file = self.open(&module.path)?;
        if !module.build_id.is_empty() && !file.table.build_id.is_empty() && module.build_id != file.table.build_id {
            self.warn_once(&module.path, format_args!("{} has changed since it was traced (build id differs); its frames stay unresolved", module.path));
            return None;
        }
        Some(file)
    }

    fn open(&mut self, path: &str) -> Option<Rc<ModuleFile>> {
        if let Some(file) = self.files.get(path) {
            return file.clone();
        }
        let started = Instant::now();
        let deadline = started.checked_add(self.time_limit);
        let opened = match map_file(Path::new(path)) {
            Ok(data) => match SymbolTable::from_elf(&data, deadline) {
                Ok(table) => {
                    let file = self.open_debug_info(path, data, table, deadline);
                    file.spent.set(started.elapsed());
                    Some(Rc::new(file))
                }
                Err(error) => {
                    self.warn_once(path, format_args!("cannot read symbols of {path}: {error}; its frames stay unresolved"));
                    None
                }
            },
            Err(OpenError::Refused(reason)) => {
                self.warn_once(path, format_args!("not reading {path} (named by the trace as a module): {reason}"));
                None
            }
            Err(error) => {
                let error = describe(error);
                self.warn_once(path, format_args!("cannot read symbols of {path}: {error}; its frames stay unresolved"));
                None
            }
        };
        self.files.insert(path.to_string(), opened.clone());
        opened
    }

    /// Completes a module file's symbols from its separate debug file and opens its DWARF
    /// (its own, else the debug file's). Without DWARF the symbol table is all there is.
    fn open_debug_info(&mut self, path: &str, data: MappedFile, mut table: SymbolTable, deadline: Option<Instant>) -> ModuleFile {
        let own_dwarf = has_dwarf(&data);
        let mut skipped = Vec::new();
        let separate = if own_dwarf && table.from_symtab {
            None
        } else {
            find_separate_debug_file(Path::new(path), &data, &table.build_id, &self.debug_dirs, &mut skipped)
        };
        self.report_skipped(path, skipped);
        let separate = match separate {
            // Neither symbols nor DWARF: ask debuginfod (its cache, then its servers) by build id.
            None if !own_dwarf && !table.from_symtab => self.debug_file_from_debuginfod(path, &table.build_id),
            found => found,
        };
        if let Some(separate) = &separate {
            if !table.from_symtab {
                if let Ok(debug_table) = SymbolTable::from_elf(&separate.data, deadline) {
                    if debug_table.from_symtab && !debug_table.symbols.is_empty() {
                        table.symbols = debug_table.symbols;
                        table.from_symtab = true;
                    }
                }
            }
        }
        let dwarf = match separate {
            _ if own_dwarf => Some((PathBuf::from(path), data)),
            Some(separate) if has_dwarf(&separate.data) => Some((separate.path, separate.data)),
            _ => None,
        };
        let debug = dwarf.and_then(|(dwarf_path, dwarf_data)| match DebugInfo::open(&dwarf_path, dwarf_data) {
            Ok(debug) => {
                self.report_skipped(path, debug.take_skipped());
                Some(debug)
            }
            Err(error) => {
                self.warn_once(path, format_args!("cannot read the DWARF of {}: {error}; using its symbol table", dwarf_path.display()));
                None
            }
        });
        ModuleFile { path: path.to_string(), table, debug, spent: Cell::new(Duration::ZERO) }
    }

    /// The debug info (else the executable, with its symbols) of the stripped module at `path`
    /// with `build_id`, from debuginfod's cache or servers ([`super::debuginfod`]).
    fn debug_file_from_debuginfod(&mut self, path: &str, build_id: &[u8]) -> Option<SeparateDebugFile> {
        use super::debuginfod::{Artifact, Debuginfod};
        let module = module_file_name(path);
        let mut failures = Vec::new();
        for artifact in [Artifact::Debuginfo, Artifact::Executable] {
            let client = self.debuginfod.get_or_insert_with(Debuginfod::from_env);
            let found = match client.find(build_id, artifact, &module) {
                Ok(found) => found,
                Err(why) => {
                    failures.extend(why);
                    continue;
                }
            };
            let mut skipped = Vec::new();
            let accepted = accept_by_build_id(&found, build_id, &mut skipped);
            self.report_skipped(path, skipped);
            if accepted.is_some() {
                return accepted;
            }
        }
        if !failures.is_empty() {
            let id = crate::format_numbers::hex(build_id);
            self.warn_once(
                &format!("{path} (debuginfod)"),
                format_args!("debuginfod: no debug info for {module} (build id {id}): {}; its frames stay module+offset", failures.join("; ")),
            );
        }
        None
    }

    /// Reports files found from `module_path` (debug files, split DWARF) that were refused or
    /// failed to open, once each.
    fn report_skipped(&mut self, module_path: &str, skipped: Vec<SkippedFile>) {
        for file in skipped {
            let shown = file.path.display().to_string();
            self.warn_once(&shown, format_args!("not reading {shown} ({} of {module_path}): {}", file.role, file.reason));
        }
    }

    fn warn_once(&mut self, path: &str, message: std::fmt::Arguments<'_>) {
        if self.warned.insert(path.to_string()) {
            warn(message);
        }
    }
}

/// The frames at `svma` in `file`, innermost first: DWARF's (inline frames, files, lines)
/// where it names the functions, the symbol table's name for the outermost function where it
/// does not, `module+0xSVMA` where neither knows it.
fn file_frames(file: &ModuleFile, file_name: &str, svma: u64) -> Vec<FrameName> {
    let symbol = || file.table.lookup(svma);
    let source = file.debug.as_ref().map(|debug| debug.frames(svma)).unwrap_or_default();
    let outermost = source.len().saturating_sub(1);
    let mut frames = Vec::with_capacity(source.len().max(1));
    for (index, frame) in source.into_iter().enumerate() {
        let (function, system_name) = match frame.function {
            Some(raw) => (demangle(&raw), raw),
            // A nameless inline frame tells nothing; a nameless outermost one is the symbol's.
            None if index == outermost => match symbol() {
                Some(raw) => (demangle(raw), raw.to_string()),
                None => (format!("{file_name}+0x{svma:x}"), String::new()),
            },
            None => continue,
        };
        let (file, line) = (frame.file.unwrap_or_default(), frame.line.unwrap_or(0));
        frames.push(FrameName { function, module: file_name.to_string(), file, line, system_name });
    }
    if frames.is_empty() {
        // Unnamed code of a stripped file is reported at the start of its function.
        let offset = file.table.function_start(svma).unwrap_or(svma);
        let mut frame = FrameName::unresolved(format!("{file_name}+0x{offset:x}"), file_name.to_string());
        if let Some(raw) = symbol() {
            frame.function = demangle(raw);
            frame.system_name = raw.to_string();
        }
        frames.push(frame);
    }
    frames
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
    fn stripped_files_get_function_ranges_from_eh_frame() {
        let data = std::fs::read("/usr/bin/python3").or_else(|_| std::fs::read("/bin/ls")).expect("a stripped system binary");
        let table = SymbolTable::from_elf(&data, None).unwrap();
        assert!(!table.from_symtab, "the system binary is stripped");
        assert!(table.function_ranges.len() > 100, "{} FDE ranges", table.function_ranges.len());
        let (start, end) = table.function_ranges[table.function_ranges.len() / 2];
        assert_eq!(table.function_start(start + (end - start) / 2), Some(start));
        assert_eq!(table.function_start(0), None);
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
        assert_eq!(&vdso[..], [FrameName::unresolved("[vdso]+0x10".into(), "[vdso]".into())]);
        // A return address is looked up (and shown) one byte earlier.
        let gone = symbolizer.symbolize(&map, 0x10100, true);
        assert_eq!(&gone[..], [FrameName::unresolved("libgone.so+0xff".into(), "libgone.so".into())]);
        assert_eq!(symbolizer.symbolize(&map, 0x5, false)[0].function, "0x5");
    }

    #[test]
    fn locations_show_the_file_name_and_line() {
        let mut frame = FrameName::unresolved("f".into(), "m".into());
        assert_eq!(frame.location(), None);
        frame.file = "/src/dir/file.c".into();
        assert_eq!(frame.location().as_deref(), Some("file.c"));
        frame.line = 42;
        assert_eq!(frame.location().as_deref(), Some("file.c:42"));
    }
}
