//! What the handler unwinds with: the code ranges and the DWARF unwinder for one module set,
//! immutable once published (see `published`). The drain thread keeps an [`UnwindTables`]
//! master copy and publishes a fresh snapshot whenever the module set changes.

use crate::code_ranges::CodeRanges;
use crate::dwarf::{framehop_module, DwarfUnwinder};
use crate::modules::{code_ranges, loaded_modules_with_unwind_sections, LoadedModule};
use framehop::Unwinder;
use std::collections::HashSet;

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
}

impl UnwindTables {
    pub fn new() -> Self {
        UnwindTables { unwinder: DwarfUnwinder::new(), known: HashSet::new() }
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
        }
        for module in &mut modules {
            if let Some(sections) = module.unwind_sections.take() {
                self.unwinder.add_module(framehop_module(module, sections));
                self.known.insert(module.key());
            }
        }
        let snapshot = UnwindSnapshot { code: code_ranges(&modules), dwarf: self.unwinder.clone(), modules_with_cfi: self.known.len() };
        (modules, snapshot)
    }
}
