//! The loaded modules of this process, read with `dl_iterate_phdr`. Drain thread only: it
//! allocates and `dl_iterate_phdr` takes the loader lock, so never call it from the handler.

use crate::code_ranges::{AddressRange, CodeRanges};
use crate::startup_objects::{dynamic_names, startup_object_keys, DynamicNames};
use std::collections::HashSet;
use std::ffi::CStr;
use std::ops::Range;

/// The bytes of an unwind section: copied out of an object that `dlclose` may unmap, or read
/// in place in an object mapped for the life of the process (`startup_objects`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionBytes {
    /// Shared by the unwinder and the handler's CFI lookup.
    Copied(std::sync::Arc<[u8]>),
    /// Mapped until the process ends: a start-up object's section.
    InPlace(&'static [u8]),
}

impl Default for SectionBytes {
    fn default() -> Self {
        SectionBytes::InPlace(&[])
    }
}

impl std::ops::Deref for SectionBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SectionBytes::Copied(bytes) => bytes,
            SectionBytes::InPlace(bytes) => bytes,
        }
    }
}

/// A module's call-frame information, copied out of its mapped image (so it stays valid after
/// `dlclose`) unless the module is never unloaded. Addresses are SVMAs (as in the file):
/// AVMA = SVMA + the module's `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwindSections {
    pub eh_frame_svma: Range<u64>,
    pub eh_frame: SectionBytes,
    /// The binary-search table; `None` when the module has none (then the unwinder indexes
    /// `eh_frame` itself).
    pub eh_frame_hdr: Option<(Range<u64>, SectionBytes)>,
    pub text_svma: Option<Range<u64>>,
}

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
    /// Present when asked for and the module has `.eh_frame` data.
    pub unwind_sections: Option<UnwindSections>,
}

impl LoadedModule {
    /// The key that identifies one mapping of one object: (load bias, start).
    pub fn key(&self) -> (u64, u64) {
        (self.base, self.start)
    }
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

struct Listing<'a> {
    modules: Vec<LoadedModule>,
    /// Modules (by key) whose unwind sections are already known and need no copy.
    sections_known: &'a HashSet<(u64, u64)>,
    /// Modules (by key) mapped for the life of the process: their sections are read in place.
    in_place: &'a HashSet<(u64, u64)>,
    copy_sections: bool,
}

/// Lists every loaded object, without unwind sections.
pub fn loaded_modules() -> Vec<LoadedModule> {
    list_modules(false, &HashSet::new(), &HashSet::new())
}

/// Lists every loaded object with the unwind sections of those not in `sections_known`: read in
/// place for the start-up objects in `in_place` ([`startup_objects`]), copied for the others.
/// The copy happens inside `dl_iterate_phdr`'s callback, under the loader lock, so a
/// concurrent `dlclose` cannot unmap the sections while they are read.
pub fn loaded_modules_with_unwind_sections(sections_known: &HashSet<(u64, u64)>, in_place: &HashSet<(u64, u64)>) -> Vec<LoadedModule> {
    list_modules(true, sections_known, in_place)
}

/// The keys of the loaded objects that are never unloaded (see `startup_objects`).
pub fn startup_objects() -> HashSet<(u64, u64)> {
    let mut listed: Vec<(LoadedModule, Option<DynamicNames>)> = Vec::new();
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut libc::c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call; `data` is
        // the `listed` vector below.
        unsafe {
            let listed = &mut *(data as *mut Vec<(LoadedModule, Option<DynamicNames>)>);
            if let Some(module) = module_from_phdr_info(&*info) {
                let names = dynamic_names(&*info, &module);
                listed.push((module, names));
            }
        }
        0
    }
    // SAFETY: the callback only reads the info it is handed and writes `listed`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut listed as *mut Vec<(LoadedModule, Option<DynamicNames>)>).cast()) };
    let preload = std::env::var("LD_PRELOAD").unwrap_or_default();
    // SAFETY: getauxval has no preconditions.
    let loader_base = unsafe { libc::getauxval(libc::AT_BASE) };
    startup_object_keys(&listed, &executable_path(), &preload, loader_base)
}

fn list_modules(copy_sections: bool, sections_known: &HashSet<(u64, u64)>, in_place: &HashSet<(u64, u64)>) -> Vec<LoadedModule> {
    let mut listing = Listing { modules: Vec::new(), sections_known, in_place, copy_sections };
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut libc::c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info (and program headers) for the duration of
        // the call; `data` is the `listing` below.
        unsafe {
            let listing = &mut *(data as *mut Listing<'_>);
            if let Some(mut module) = module_from_phdr_info(&*info) {
                if listing.copy_sections && !listing.sections_known.contains(&module.key()) {
                    let in_place = listing.in_place.contains(&module.key());
                    module.unwind_sections = unwind_sections(&*info, &module, in_place);
                }
                listing.modules.push(module);
            }
        }
        0
    }
    // SAFETY: the callback only reads the info it is handed and writes `listing`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut listing as *mut Listing<'_>).cast()) };
    listing.modules
}

/// The program headers of a `dl_iterate_phdr` entry.
///
/// # Safety
/// `info` must come from `dl_iterate_phdr` and be used within its callback.
pub(crate) unsafe fn program_headers(info: &libc::dl_phdr_info) -> &[libc::Elf64_Phdr] {
    if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader guarantees dlpi_phnum headers at dlpi_phdr.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
    }
}

/// Finds `.eh_frame_hdr` and `.eh_frame` in a loaded module: copied, or read in place when
/// `in_place` (the module is never unloaded).
///
/// # Safety
/// `info` must come from `dl_iterate_phdr` and be used within its callback (the loader lock
/// keeps the module mapped); `in_place` only for a module mapped until the process ends.
unsafe fn unwind_sections(info: &libc::dl_phdr_info, module: &LoadedModule, in_place: bool) -> Option<UnwindSections> {
    let base = info.dlpi_addr;
    // SAFETY: forwarded from the caller.
    let headers = unsafe { program_headers(info) };
    let hdr_header = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME)?;
    let hdr_avma = base.wrapping_add(hdr_header.p_vaddr);
    // The readable mapped range that holds an address: reads are bounded by its end.
    let mapped_end = |avma: u64| module.readable_ranges.iter().find(|r| r.start <= avma && avma < r.end).map(|r| r.end);
    let hdr_len = hdr_header.p_memsz.min(mapped_end(hdr_avma)?.saturating_sub(hdr_avma));
    // SAFETY: the header lies inside a mapped, readable segment of the module (checked above).
    let hdr = unsafe { std::slice::from_raw_parts(hdr_avma as *const u8, hdr_len as usize) };
    let eh_frame_avma = eh_frame_address_from_hdr(hdr, hdr_avma)?;
    let limit = mapped_end(eh_frame_avma)?.saturating_sub(eh_frame_avma);
    // SAFETY: [eh_frame_avma, + limit) lies inside one mapped, readable segment.
    let mapped = unsafe { std::slice::from_raw_parts(eh_frame_avma as *const u8, limit as usize) };
    let has_table = hdr.len() >= 4 && hdr[2] != 0xff && hdr[3] != 0xff;
    // A copy takes the section to its terminator. In place, with a search table (which finds
    // every FDE), the rest of the segment may follow: walking every entry to find the end
    // would touch every page of the section at start-up.
    let eh_frame_len = if in_place && has_table && !mapped.is_empty() { mapped.len() } else { eh_frame_length(mapped) };
    if eh_frame_len == 0 {
        return None;
    }
    let svma = |avma: u64| avma.wrapping_sub(base);
    let text_svma = module.executable_ranges.first().map(|r| svma(r.start)..svma(r.end));
    let bytes = |section: &'static [u8]| if in_place { SectionBytes::InPlace(section) } else { SectionBytes::Copied(section.into()) };
    Some(UnwindSections {
        eh_frame_svma: svma(eh_frame_avma)..svma(eh_frame_avma) + eh_frame_len as u64,
        eh_frame: bytes(&mapped[..eh_frame_len]),
        eh_frame_hdr: has_table.then(|| (svma(hdr_avma)..svma(hdr_avma) + hdr.len() as u64, bytes(hdr))),
        text_svma,
    })
}

/// Decodes the `eh_frame_ptr` field of an `.eh_frame_hdr` located at `hdr_avma`.
fn eh_frame_address_from_hdr(hdr: &[u8], hdr_avma: u64) -> Option<u64> {
    const DW_EH_PE_PCREL: u8 = 0x10;
    let (&version, &encoding) = (hdr.first()?, hdr.get(1)?);
    if version != 1 {
        return None;
    }
    let field = hdr.get(4..)?;
    let read = |n: usize| -> Option<[u8; 8]> {
        let mut bytes = [0u8; 8];
        bytes[..n].copy_from_slice(field.get(..n)?);
        Some(bytes)
    };
    let value: u64 = match encoding & 0x0f {
        0x00 | 0x04 | 0x0c => u64::from_le_bytes(read(8)?),
        0x03 => u64::from(u32::from_le_bytes(read(4)?[..4].try_into().ok()?)),
        0x0b => i64::from(i32::from_le_bytes(read(4)?[..4].try_into().ok()?)) as u64,
        _ => return None,
    };
    match encoding & 0x70 {
        0 => Some(value),
        DW_EH_PE_PCREL => Some(hdr_avma.wrapping_add(4).wrapping_add(value)),
        _ => None,
    }
}

/// The length of `.eh_frame` found by walking its entries' length words to the zero
/// terminator (or to the end of `mapped`).
fn eh_frame_length(mapped: &[u8]) -> usize {
    let mut offset = 0usize;
    while let Some(word) = mapped.get(offset..offset + 4) {
        let length = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        if length == 0 {
            return offset + 4;
        }
        let (header, body) = if length == u32::MAX {
            let Some(extended) = mapped.get(offset + 4..offset + 12) else { break };
            (12usize, u64::from_le_bytes(extended.try_into().unwrap_or_default()))
        } else {
            (4usize, u64::from(length))
        };
        let Some(next) = usize::try_from(body).ok().and_then(|body| offset.checked_add(header)?.checked_add(body)) else { break };
        if next > mapped.len() {
            break;
        }
        offset = next;
    }
    offset
}

/// Builds the executable and readable ranges the handler checks reads against.
pub fn code_ranges(modules: &[LoadedModule]) -> CodeRanges {
    let executable = modules.iter().flat_map(|m| m.executable_ranges.iter().copied()).collect();
    let readable = modules.iter().flat_map(|m| m.readable_ranges.iter().copied()).collect();
    // SAFETY: the ranges of loaded modules, mapped until their `dlclose`, which waits until no
    // handler can be reading them.
    unsafe { CodeRanges::new(executable, readable) }
}

/// # Safety
/// `info` must come from `dl_iterate_phdr` and be used within its callback.
unsafe fn module_from_phdr_info(info: &libc::dl_phdr_info) -> Option<LoadedModule> {
    let base = info.dlpi_addr;
    // SAFETY: forwarded from the caller.
    let headers = unsafe { program_headers(info) };
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
    Some(LoadedModule { path, base, start, end, build_id, executable_ranges, readable_ranges, unwind_sections: None })
}

/// The absolute path of the running executable, read once per image (`exec` replaces the
/// image and this memory with it; a forked child runs the same file).
pub fn executable_path() -> String {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| std::fs::read_link("/proc/self/exe").map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()).clone()
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

    #[test]
    fn unwind_sections_are_copied_for_libc_and_the_vdso() {
        let modules = loaded_modules_with_unwind_sections(&HashSet::new(), &HashSet::new());
        let libc = modules.iter().find(|m| m.path.contains("libc.so")).expect("libc");
        let sections = libc.unwind_sections.as_ref().expect("libc has .eh_frame");
        assert!(matches!(sections.eh_frame, SectionBytes::Copied(_)), "not a start-up object here: copied");
        assert!(sections.eh_frame.len() > 10_000, "libc's .eh_frame is large: {}", sections.eh_frame.len());
        assert_eq!(sections.eh_frame_svma.end - sections.eh_frame_svma.start, sections.eh_frame.len() as u64);
        assert!(sections.eh_frame_hdr.is_some(), "libc has a search table");
        assert!(sections.eh_frame.ends_with(&[0, 0, 0, 0]), "ends at the terminator");
        if let Some(vdso) = modules.iter().find(|m| m.path.contains("vdso")) {
            assert!(vdso.unwind_sections.is_some(), "the vDSO carries .eh_frame");
        }
        let known: HashSet<(u64, u64)> = modules.iter().map(LoadedModule::key).collect();
        assert!(loaded_modules_with_unwind_sections(&known, &HashSet::new()).iter().all(|m| m.unwind_sections.is_none()), "known modules are not copied again");
    }

    #[test]
    fn libc_and_this_executable_are_start_up_objects_read_in_place() {
        let startup = startup_objects();
        let modules = loaded_modules_with_unwind_sections(&HashSet::new(), &startup);
        let me = executable_path();
        for wanted in [me.as_str(), "libc.so.6"] {
            let module = modules.iter().find(|m| m.path.ends_with(wanted)).expect("listed");
            assert!(startup.contains(&module.key()), "{wanted} is a start-up object");
            let sections = module.unwind_sections.as_ref().expect("has .eh_frame");
            assert!(matches!(sections.eh_frame, SectionBytes::InPlace(_)), "{wanted} is read in place");
            let copied = loaded_modules_with_unwind_sections(&HashSet::new(), &HashSet::new());
            let same = copied.iter().find(|m| m.key() == module.key()).and_then(|m| m.unwind_sections.as_ref()).expect("copied too");
            assert!(sections.eh_frame.starts_with(&same.eh_frame), "the same bytes, then the rest of the segment");
        }
    }
}
