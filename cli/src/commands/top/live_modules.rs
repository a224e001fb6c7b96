//! The modules of a live process, read from `/proc/PID/maps` as `perf record` does for a process
//! it attaches to: `top` names the frames of spilled samples (docs/FORMAT.md "Spill") with them
//! while the trace has no module list yet (a single-threaded program that computes without a
//! waiting call writes its first one at its end).
//!
//! A module is a file mapped from an ELF object: its range covers every mapping of the file,
//! its load bias is the address of its mapping at file offset 0 minus the page of the first
//! loadable segment's address, and its build id is read from the file.

use std::collections::HashMap;

use format::Module;
use object::{Object, ObjectSegment};

const PAGE: u64 = 4096;

/// What is known of one mapped file, read once per path.
#[derive(Clone)]
struct FileFacts {
    /// The page-rounded address of the loadable segment mapped from each page-rounded offset.
    segment_pages: Vec<(u64, u64)>,
    build_id: Vec<u8>,
}

/// Reads the modules of a process, caching what each file says.
#[derive(Default)]
pub struct LiveModules {
    files: HashMap<String, Option<FileFacts>>,
}

impl LiveModules {
    /// The modules mapped in process `pid` now, when it is still the program `executable`
    /// (pids are reused); `None` when the process is gone or is another program.
    pub fn read(&mut self, pid: u32, executable: &str) -> Option<Vec<Module>> {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        if !same_file(&exe, executable) {
            return None;
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
        let mut ranges: Vec<(String, u64, u64, u64)> = Vec::new(); // path, start, end, offset
        for line in maps.lines() {
            if let Some(mapping) = parse_maps_line(line) {
                ranges.push(mapping);
            }
        }
        let mut modules: Vec<Module> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (path, start, end, offset) in &ranges {
            if let Some(&at) = index.get(path.as_str()) {
                let module = &mut modules[at];
                module.start = module.start.min(*start);
                module.end = module.end.max(*end);
                continue;
            }
            let Some(facts) = self.facts(path) else { continue };
            let Some(&(_, page_address)) = facts.segment_pages.iter().find(|(page_offset, _)| page_offset == offset) else { continue };
            index.insert(path, modules.len());
            modules.push(Module { path: path.clone(), base: start.wrapping_sub(page_address), start: *start, end: *end, build_id: facts.build_id.clone() });
        }
        Some(modules)
    }

    fn facts(&mut self, path: &str) -> Option<&FileFacts> {
        self.files.entry(path.to_string()).or_insert_with(|| read_facts(path)).as_ref()
    }
}

/// Whether `exe` (the link of `/proc/PID/exe`) names the same file as the header's `executable`.
fn same_file(exe: &std::path::Path, executable: &str) -> bool {
    if exe == std::path::Path::new(executable) {
        return true;
    }
    let canonical = |path: &std::path::Path| std::fs::canonicalize(path).ok();
    canonical(exe).is_some_and(|exe| Some(exe) == canonical(std::path::Path::new(executable)))
}

/// (path, start, end, file offset) of a line of `/proc/PID/maps` that maps a file by its path.
fn parse_maps_line(line: &str) -> Option<(String, u64, u64, u64)> {
    let mut fields = line.splitn(6, ' ');
    let (range, _perms, offset, _device, _inode) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
    let path = fields.next()?.trim_start();
    if !path.starts_with('/') || path.ends_with(" (deleted)") {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let hex = |text: &str| u64::from_str_radix(text, 16).ok();
    Some((path.to_string(), hex(start)?, hex(end)?, hex(offset)?))
}

/// The loadable segments and build id of the ELF file at `path`; `None` for anything else.
/// Opened as the symboliser opens module files (never a device, a FIFO or a kernel file: a
/// process maps `/dev` files too), mapped, not read.
fn read_facts(path: &str) -> Option<FileFacts> {
    let data = crate::symbolize::file_guard::map_file(std::path::Path::new(path)).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let segment_pages = file
        .segments()
        .map(|segment| {
            let (offset, _) = segment.file_range();
            (offset & !(PAGE - 1), segment.address() & !(PAGE - 1))
        })
        .collect();
    let build_id = file.build_id().ok().flatten().unwrap_or_default().to_vec();
    Some(FileFacts { segment_pages, build_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_file_mappings_only() {
        let line = "7f1c2a400000-7f1c2a428000 r--p 00001000 fe:01 1311       /usr/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(parse_maps_line(line), Some(("/usr/lib/x86_64-linux-gnu/libc.so.6".to_string(), 0x7f1c2a400000, 0x7f1c2a428000, 0x1000)));
        assert_eq!(parse_maps_line("7ffd5e5d2000-7ffd5e5f3000 rw-p 00000000 00:00 0                          [stack]"), None);
        assert_eq!(parse_maps_line("7f1c2a400000-7f1c2a428000 rw-p 00000000 00:00 0 "), None);
    }

    #[test]
    fn the_own_process_maps_its_executable_with_a_bias_that_finds_its_code() {
        let executable = std::env::current_exe().unwrap();
        let modules = LiveModules::default().read(std::process::id(), &executable.display().to_string()).expect("our own maps");
        let own = modules.iter().find(|module| std::path::Path::new(&module.path) == executable).expect("the executable is a module");
        let code = the_own_process_maps_its_executable_with_a_bias_that_finds_its_code as fn() as usize as u64;
        assert!((own.start..own.end).contains(&code), "{own:?} holds {code:#x}");
        // The code address, less the bias, is inside the file's executable segment.
        let data = std::fs::read(&executable).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let svma = code - own.base;
        assert!(file.segments().any(|segment| (segment.address()..segment.address() + segment.size()).contains(&svma)), "svma {svma:#x}");
    }
}
