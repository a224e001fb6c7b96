//! What the handler unwinds with: the code ranges and the DWARF unwinder for one module set,
//! immutable once published (see `published`). The drain thread keeps an [`UnwindTables`]
//! master copy and publishes a fresh snapshot whenever the module set changes.

use crate::cfi_coverage::{covered_ranges, merge};
use crate::code_ranges::{AddressRange, CodeRanges};
use crate::dwarf::{framehop_module, DwarfUnwinder};
use crate::modules::{code_ranges, loaded_modules_with_unwind_sections, LoadedModule};
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
    /// The code each known module's CFI covers, by key.
    cfi_covered: HashMap<(u64, u64), Vec<AddressRange>>,
}

impl UnwindTables {
    pub fn new() -> Self {
        UnwindTables { unwinder: DwarfUnwinder::new(), known: HashSet::new(), cfi_covered: HashMap::new() }
    }

    /// Re-lists the loaded modules, adds the new ones (copying their CFI) and removes those
    /// gone. Returns the module list (without section data) and the snapshot to publish.
    /// Drain thread only: calls `dl_iterate_phdr` and allocates.
    pub fn refresh(&mut self) -> (Vec<LoadedModule>, UnwindSnapshot) {
        let mut modules = loaded_modules_with_unwind_sections(&self.known);
        let present: HashSet<(u64, u64)> = modules.iter().map(LoadedModule::key).collect();
        for gone in self.known.difference(&present).copied().collect::<Vec<_>>() {
            self.unwinder.remove_module(gone.1);
            self.known.remove(&gone);
            self.cfi_covered.remove(&gone);
        }
        for module in &mut modules {
            if let Some(sections) = module.unwind_sections.take() {
                let eh_frame_avma = sections.eh_frame_svma.start.wrapping_add(module.base);
                // An encoding we cannot read: the whole module counts as covered (framehop decides).
                let covered = covered_ranges(&sections.eh_frame, eh_frame_avma).unwrap_or_else(|| module.executable_ranges.clone());
                self.cfi_covered.insert(module.key(), covered);
                self.unwinder.add_module(framehop_module(module, sections));
                self.known.insert(module.key());
            }
        }
        let covered = merge(self.cfi_covered.values().flatten().copied().collect());
        let snapshot =
            UnwindSnapshot { code: code_ranges(&modules).with_cfi_coverage(covered), dwarf: self.unwinder.clone(), modules_with_cfi: self.known.len() };
        (modules, snapshot)
    }
}
