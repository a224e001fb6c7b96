//! The loaded objects that can never be unloaded: those the loader mapped before the program
//! started — the executable, the objects of `LD_PRELOAD`, the `DT_NEEDED` closure of both, the
//! dynamic loader and the vDSO. glibc's `dlclose` unmaps only objects that `dlopen` loaded, so
//! the unwind sections of these are read where they are mapped instead of being copied
//! (copying them cost a short process ~70 page faults, a quarter of a millisecond here).
//!
//! A name in `DT_NEEDED` is matched with the *first* listed object of that soname (or file
//! name): start-up objects come first in the loader's list, before any object `dlopen` or
//! `dlmopen` added. When in doubt an object is left out, and then copied as before.

use crate::code_ranges::AddressRange;
use crate::modules::{program_headers, LoadedModule};
use std::collections::HashSet;

const DT_NULL: i64 = 0;
const DT_NEEDED: i64 = 1;
const DT_STRTAB: i64 = 5;
const DT_STRSZ: i64 = 10;
const DT_SONAME: i64 = 14;

/// What an object's dynamic section names: its soname and the objects it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DynamicNames {
    pub(crate) soname: Option<String>,
    pub(crate) needed: Vec<String>,
}

fn readable(ranges: &[AddressRange], start: u64, len: u64) -> bool {
    start.checked_add(len).is_some_and(|end| ranges.iter().any(|range| range.start <= start && end <= range.end))
}

/// Reads the soname and `DT_NEEDED` names of a loaded object from its mapped dynamic section.
/// `None` when it has none or it is not where its headers say.
///
/// # Safety
/// `info` must come from `dl_iterate_phdr` and be used within its callback, and `module` must
/// be the module made from it (its readable ranges bound every read).
pub(crate) unsafe fn dynamic_names(info: &libc::dl_phdr_info, module: &LoadedModule) -> Option<DynamicNames> {
    // SAFETY: forwarded from the caller.
    let headers = unsafe { program_headers(info) };
    let dynamic = headers.iter().find(|h| h.p_type == libc::PT_DYNAMIC)?;
    let dynamic_avma = info.dlpi_addr.wrapping_add(dynamic.p_vaddr);
    if dynamic_avma % 8 != 0 || !readable(&module.readable_ranges, dynamic_avma, dynamic.p_memsz) {
        return None;
    }
    // SAFETY: the dynamic section lies, aligned, inside a readable mapped segment (checked).
    let entries = unsafe { std::slice::from_raw_parts(dynamic_avma as *const [i64; 2], (dynamic.p_memsz / 16) as usize) };
    let (mut strtab, mut strsz, mut soname, mut needed) = (None, 0u64, None, Vec::new());
    for &[tag, value] in entries {
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(value as u64),
            DT_STRTAB => strtab = Some(value as u64),
            DT_STRSZ => strsz = value as u64,
            DT_SONAME => soname = Some(value as u64),
            _ => {}
        }
    }
    // The loader adjusts DT_STRTAB by the load bias in place, except where the section is
    // read-only (the vDSO): take whichever address lies in the object.
    let strtab = strtab?;
    let strtab = [strtab, strtab.wrapping_add(info.dlpi_addr)].into_iter().find(|&at| readable(&module.readable_ranges, at, strsz))?;
    // SAFETY: [strtab, strtab + strsz) lies inside a readable mapped segment (checked above).
    let strings = unsafe { std::slice::from_raw_parts(strtab as *const u8, strsz as usize) };
    let name = |offset: u64| -> Option<String> {
        let bytes = strings.get(usize::try_from(offset).ok()?..)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
    };
    Some(DynamicNames { soname: soname.and_then(name), needed: needed.into_iter().filter_map(name).collect() })
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The keys of the start-up objects among `modules` (in the loader's order, each with its
/// dynamic names). `preload` is the value of `LD_PRELOAD`; `loader_base` the dynamic loader's
/// base address (`AT_BASE`).
pub(crate) fn startup_object_keys(modules: &[(LoadedModule, Option<DynamicNames>)], executable: &str, preload: &str, loader_base: u64) -> HashSet<(u64, u64)> {
    let preloaded: Vec<&str> = preload.split([' ', ':']).filter(|entry| !entry.is_empty()).collect();
    let is_root = |module: &LoadedModule| {
        module.path == executable
            || module.path.starts_with("linux-vdso")
            || module.path.starts_with("linux-gate")
            || (loader_base != 0 && module.base == loader_base)
            || preloaded.iter().any(|entry| if entry.contains('/') { module.path == *entry } else { file_name(&module.path) == *entry })
    };
    let mut permanent: Vec<usize> = (0..modules.len()).filter(|&index| is_root(&modules[index].0)).collect();
    let mut next = 0;
    while next < permanent.len() {
        let needed = modules[permanent[next]].1.as_ref().map_or(&[][..], |names| &names.needed[..]);
        for name in needed {
            let by_soname = modules.iter().position(|(_, names)| names.as_ref().and_then(|n| n.soname.as_deref()) == Some(name.as_str()));
            let found = by_soname
                .or_else(|| modules.iter().position(|(module, _)| if name.contains('/') { module.path == *name } else { file_name(&module.path) == name }));
            if let Some(index) = found.filter(|index| !permanent.contains(index)) {
                permanent.push(index);
            }
        }
        next += 1;
    }
    permanent.into_iter().map(|index| modules[index].0.key()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str, base: u64, soname: Option<&str>, needed: &[&str]) -> (LoadedModule, Option<DynamicNames>) {
        let module = LoadedModule {
            path: path.into(),
            base,
            start: base,
            end: base + 0x1000,
            build_id: Vec::new(),
            executable_ranges: Vec::new(),
            readable_ranges: Vec::new(),
            unwind_sections: None,
        };
        (module, Some(DynamicNames { soname: soname.map(Into::into), needed: needed.iter().map(|n| n.to_string()).collect() }))
    }

    #[test]
    fn the_needed_closure_of_the_executable_and_preloads_is_permanent_and_plugins_are_not() {
        let modules = vec![
            module("/usr/bin/app", 0x1000, None, &["libfoo.so.1", "libc.so.6"]),
            module("linux-vdso.so.1", 0x2000, Some("linux-vdso.so.1"), &[]),
            module("/opt/libpre.so", 0x3000, None, &["libgcc_s.so.1"]),
            module("/usr/lib/libfoo.so.1.2", 0x4000, Some("libfoo.so.1"), &["libbar.so"]),
            module("/lib/libc.so.6", 0x5000, Some("libc.so.6"), &["ld-linux-x86-64.so.2"]),
            module("/lib/libgcc_s.so.1", 0x6000, Some("libgcc_s.so.1"), &[]),
            module("/lib/libbar.so", 0x7000, None, &[]),
            module("/lib64/ld-linux-x86-64.so.2", 0x8000, Some("ld-linux-x86-64.so.2"), &[]),
            module("/opt/plugin.so", 0x9000, Some("plugin.so"), &["libc.so.6"]),
            module("/other/ns/libc.so.6", 0xa000, Some("libc.so.6"), &[]),
        ];
        let keys = startup_object_keys(&modules, "/usr/bin/app", "/opt/libpre.so", 0x8000);
        let permanent: Vec<&str> = modules.iter().filter(|(m, _)| keys.contains(&m.key())).map(|(m, _)| m.path.as_str()).collect();
        assert_eq!(
            permanent.iter().copied().collect::<HashSet<_>>(),
            [
                "/usr/bin/app",
                "linux-vdso.so.1",
                "/opt/libpre.so",
                "/usr/lib/libfoo.so.1.2",
                "/lib/libc.so.6",
                "/lib/libgcc_s.so.1",
                "/lib/libbar.so",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .into_iter()
            .collect()
        );
        let none = startup_object_keys(&modules, "/not/running", "", 0);
        assert!(none.contains(&(0x2000, 0x2000)) && none.len() == 1, "only the vDSO without roots: {none:?}");
    }
}
