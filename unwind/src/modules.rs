//! The loaded modules of this process, read with `dl_iterate_phdr`. Drain thread only: it
//! allocates and `dl_iterate_phdr` takes the loader lock, so never call it from the handler.

use crate::code_ranges::{AddressRange, CodeRanges};
use std::ffi::CStr;

/// One loaded object (the executable, a shared library, the vDSO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModule {
    /// Absolute path of the file, or the loader's name for it (`linux-vdso.so.1`).
    pub path: String,
    /// The load bias: address in the process = address in the file + `base`.
    pub base: u64,
    /// The union of the loadable segments in the process.
    pub start: u64,
    pub end: u64,
    pub build_id: Vec<u8>,
    pub executable_ranges: Vec<AddressRange>,
    pub readable_ranges: Vec<AddressRange>,
}

/// The loader's counters of objects added and removed; they change whenever the module set does.
pub fn load_counters() -> (u64, u64) {
    let mut counters = (0u64, 0u64);
    unsafe extern "C" fn first(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut libc::c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and `data`
        // is the `counters` tuple below.
        unsafe {
            let counters = &mut *(data as *mut (u64, u64));
            *counters = ((*info).dlpi_adds, (*info).dlpi_subs);
        }
        1 // stop after the first object: the counters are global
    }
    // SAFETY: the callback only reads the info it is handed and writes `counters`.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut counters as *mut (u64, u64)).cast()) };
    counters
}

/// Lists every loaded object.
pub fn loaded_modules() -> Vec<LoadedModule> {
    let mut modules: Vec<LoadedModule> = Vec::new();
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut libc::c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info (and program headers) for the duration of
        // the call; `data` is the `modules` vector below.
        unsafe {
            let modules = &mut *(data as *mut Vec<LoadedModule>);
            if let Some(module) = module_from_phdr_info(&*info) {
                modules.push(module);
            }
        }
        0
    }
    // SAFETY: the callback only reads the info it is handed and pushes to `modules`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut modules as *mut Vec<LoadedModule>).cast()) };
    modules
}

/// Builds the executable and readable ranges the handler checks reads against.
pub fn code_ranges(modules: &[LoadedModule]) -> CodeRanges {
    let executable = modules.iter().flat_map(|m| m.executable_ranges.iter().copied()).collect();
    let readable = modules.iter().flat_map(|m| m.readable_ranges.iter().copied()).collect();
    CodeRanges::new(executable, readable)
}

/// # Safety
/// `info` must come from `dl_iterate_phdr` and be used within its callback.
unsafe fn module_from_phdr_info(info: &libc::dl_phdr_info) -> Option<LoadedModule> {
    let base = info.dlpi_addr;
    let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader guarantees dlpi_phnum headers at dlpi_phdr.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
    };
    let page = 4096u64;
    let mut start = u64::MAX;
    let mut end = 0u64;
    let mut executable_ranges = Vec::new();
    let mut readable_ranges = Vec::new();
    let mut build_id = Vec::new();
    for header in headers {
        match header.p_type {
            libc::PT_LOAD => {
                let segment_start = base.wrapping_add(header.p_vaddr);
                let segment_end = segment_start.wrapping_add(header.p_memsz);
                start = start.min(segment_start);
                end = end.max(segment_end);
                // The mapping covers whole pages; readable memory extends to the page end.
                let range = AddressRange { start: segment_start & !(page - 1), end: (segment_end + page - 1) & !(page - 1) };
                if header.p_flags & libc::PF_X != 0 {
                    executable_ranges.push(AddressRange { start: segment_start, end: segment_end });
                }
                if header.p_flags & libc::PF_R != 0 {
                    readable_ranges.push(range);
                }
            }
            libc::PT_NOTE if build_id.is_empty() => {
                let note = base.wrapping_add(header.p_vaddr) as *const u8;
                // SAFETY: PT_NOTE segments lie inside a loaded PT_LOAD segment of this object.
                let bytes = unsafe { std::slice::from_raw_parts(note, header.p_memsz as usize) };
                build_id = gnu_build_id(bytes).unwrap_or_default();
            }
            _ => {}
        }
    }
    if start >= end {
        return None;
    }
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: the loader's name is a NUL-terminated string.
        unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy().into_owned()
    };
    let path = if name.is_empty() { executable_path() } else { name };
    Some(LoadedModule { path, base, start, end, build_id, executable_ranges, readable_ranges })
}

/// The absolute path of the running executable.
pub fn executable_path() -> String {
    std::fs::read_link("/proc/self/exe").map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Finds the `NT_GNU_BUILD_ID` note in a note segment.
fn gnu_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let word = |at: usize| u32::from_ne_bytes([notes[at], notes[at + 1], notes[at + 2], notes[at + 3]]);
        let (name_size, desc_size, kind) = (word(0) as usize, word(4) as usize, word(8));
        let desc_start = 12 + align4(name_size);
        let next = desc_start.checked_add(align4(desc_size))?;
        if desc_start + desc_size > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && notes.get(12..12 + name_size) == Some(b"GNU\0") {
            return Some(notes[desc_start..desc_start + desc_size].to_vec());
        }
        notes = notes.get(next..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_this_executable_and_libc_with_build_ids() {
        let modules = loaded_modules();
        let me = executable_path();
        let main = modules.iter().find(|m| m.path == me).expect("the test binary is listed");
        assert!(main.start < main.end);
        assert!(!main.executable_ranges.is_empty());
        let libc = modules.iter().find(|m| m.path.contains("libc.so")).expect("libc is listed");
        assert_eq!(libc.build_id.len(), 20, "Debian's libc carries a 20-byte GNU build id");
        let ranges = code_ranges(&modules);
        let function = lists_this_executable_and_libc_with_build_ids as *const () as usize as u64;
        assert!(ranges.is_executable(function, 1));
        let (adds, _subs) = load_counters();
        assert!(adds >= modules.len() as u64);
    }
}
