//! What the handler unwinds with: the code ranges and the DWARF unwinder for one module set,
//! immutable once published (see `published`). The drain thread keeps an [`UnwindTables`]
//! master copy and publishes a fresh snapshot whenever the module set changes.

use crate::cfi_coverage::ModuleCfi;
use crate::code_ranges::{AddressRange, CodeRanges};
use crate::dwarf::{framehop_module, DwarfUnwinder};
use crate::modules::{code_ranges, loaded_modules_with_unwind_sections, startup_objects, LoadedModule};
use framehop::Unwinder;
use std::collections::{HashMap, HashSet};

pub struct UnwindSnapshot {
    pub code: CodeRanges,
    pub dwarf: DwarfUnwinder,
    /// Modules that carry CFI (the rest unwind by frame pointers).
    pub modules_with_cfi: usize,
}

/// The drain thread's master state: which modules the unwinder knows.
#[derive(Default)]
pub struct UnwindTables {
    unwinder: DwarfUnwinder,
    /// Keys (bias, start) of the modules added to `unwinder`.
    known: HashSet<(u64, u64)>,
    /// Each known module's extent and how the handler asks which of its code CFI covers, by key.
    cfi: HashMap<(u64, u64), (AddressRange, ModuleCfi)>,
    /// Keys of the objects mapped for the life of the process, found at the first refresh:
    /// their sections are read in place.
    startup_objects: Option<HashSet<(u64, u64)>>,
}

impl UnwindTables {
    pub fn new() -> Self {
        UnwindTables { unwinder: DwarfUnwinder::new(), known: HashSet::new(), cfi: HashMap::new(), startup_objects: None }
    }

    /// Re-lists the loaded modules, adds the new ones (copying their CFI) and removes those
    /// gone. Returns the module list (without section data) and the snapshot to publish.
    /// Drain thread only: calls `dl_iterate_phdr` and allocates.
    pub fn refresh(&mut self) -> (Vec<LoadedModule>, UnwindSnapshot) {
        let startup = self.startup_objects.get_or_insert_with(startup_objects);
        let mut modules = loaded_modules_with_unwind_sections(&self.known, startup);
        let present: HashSet<(u64, u64)> = modules.iter().map(LoadedModule::key).collect();
        for gone in self.known.difference(&present).copied().collect::<Vec<_>>() {
            self.unwinder.remove_module(gone.1);
            self.known.remove(&gone);
            self.cfi.remove(&gone);
        }
        for module in &mut modules {
            if let Some(sections) = module.unwind_sections.take() {
                let eh_frame_avma = sections.eh_frame_svma.start.wrapping_add(module.base);
                let hdr = sections.eh_frame_hdr.as_ref().map(|(hdr_svma, hdr)| (hdr, hdr_svma.start.wrapping_add(module.base)));
                let cfi = ModuleCfi::for_sections(&sections.eh_frame, eh_frame_avma, hdr);
                self.cfi.insert(module.key(), (AddressRange { start: module.start, end: module.end }, cfi));
                self.unwinder.add_module(framehop_module(module, sections));
                self.known.insert(module.key());
            }
        }
        let cfi = self.cfi.values().cloned().collect();
        let snapshot = UnwindSnapshot { code: code_ranges(&modules).with_cfi(cfi), dwarf: self.unwinder.clone(), modules_with_cfi: self.known.len() };
        (modules, snapshot)
    }
}
