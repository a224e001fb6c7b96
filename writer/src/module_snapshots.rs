//! The unwind snapshots the signal handlers read, published by the drain thread: the module list
//! re-read when the loader's counters moved (or at once after `dlopen`/`dlclose`,
//! `drain::refresh_modules_now`), the replaced snapshots kept until they are safe to free, the
//! handlers' DWARF caches, and the module table of the open generation.
//!
//! `sigprof` invariant 6: a replaced snapshot is freed only after an advance that began after
//! its replacement *completed* (every thread was since seen outside its critical section).

use format::Module;
use sigprof::Registry;
use unwind::{load_counters, loaded_modules, CachePool, LoadedModule, UnwindSnapshot, UnwindTables};

/// framehop caches (~33 KB each) per CPU: only threads inside the handler hold one, and at
/// most one thread runs per CPU (more may be preempted inside; they fall back and are counted).
const DWARF_CACHES_PER_CPU: usize = 4;

/// The drain thread's side of the unwind snapshots and the modules it has seen.
pub(crate) struct ModuleSnapshots {
    /// The loader's counters when the module list was last read.
    load_counters: (u64, u64),
    unwind_tables: UnwindTables,
    /// The modules loaded now (metadata only).
    current_modules: Vec<LoadedModule>,
    /// Every module loaded at some point of the open generation.
    modules_this_generation: Vec<LoadedModule>,
    /// Snapshots replaced but perhaps still in a handler's hands: kept (boxed, at the address
    /// handlers read) until an advance that began after their replacement completes.
    /// (clippy's `vec_box` would move them out of their boxes: exactly the use-after-free this
    /// field exists to prevent.)
    #[allow(clippy::vec_box)]
    retired_snapshots: Vec<Box<UnwindSnapshot>>,
}

impl ModuleSnapshots {
    /// Nothing read yet: the first refresh reads the module list and builds the unwind tables.
    pub(crate) fn new() -> ModuleSnapshots {
        ModuleSnapshots {
            load_counters: (u64::MAX, u64::MAX),
            unwind_tables: UnwindTables::new(),
            current_modules: Vec::new(),
            modules_this_generation: Vec::new(),
            retired_snapshots: Vec::new(),
        }
    }

    /// Re-reads the module list when the loader's counters moved, and publishes a new unwind
    /// snapshot for the handlers. Drain thread, or any thread under the drainer's lock.
    pub(crate) fn refresh(&mut self, registry: &Registry) {
        let counters = load_counters();
        if counters == self.load_counters {
            return;
        }
        self.load_counters = counters;
        let (modules, snapshot) = self.unwind_tables.refresh();
        if let Some(old) = registry.unwind.publish(snapshot) {
            // Kept boxed: handlers may hold a reference into this very allocation.
            self.retired_snapshots.push(old);
        }
        for module in &modules {
            if !self.modules_this_generation.iter().any(|seen| same_module(seen, module)) {
                self.modules_this_generation.push(module.clone());
            }
        }
        self.current_modules = modules;
    }

    /// A process that ends before the first drain round: its module table is needed, its unwind
    /// tables are not. Reads the module list when none was read yet.
    pub(crate) fn ensure_module_table(&mut self) {
        if self.current_modules.is_empty() {
            self.current_modules = loaded_modules();
            self.modules_this_generation = self.current_modules.clone();
        }
    }

    /// Frees the replaced snapshots after an advance that completed: every snapshot here was
    /// retired before that advance began, and every thread has since been seen outside its
    /// critical section, so no handler can still hold one (invariant 6).
    pub(crate) fn free_retired_after_completed_advance(&mut self) {
        self.retired_snapshots.clear();
    }

    /// Replaced snapshots whose release still waits for a completed advance.
    pub(crate) fn retired_count(&self) -> usize {
        self.retired_snapshots.len()
    }

    /// The open generation's module table: every module loaded at some point of it.
    /// A number that changes whenever the module list does (the loader's counters of objects
    /// added and removed, summed, as last read).
    pub(crate) fn version(&self) -> u64 {
        self.load_counters.0.wrapping_add(self.load_counters.1)
    }

    pub(crate) fn generation_modules(&self) -> Vec<Module> {
        self.modules_this_generation.iter().map(to_trace_module).collect()
    }

    /// Starts the next generation's module table with the modules loaded now: those of the
    /// closing one still loaded are kept (no copy: a forked child does this at its start), the
    /// others added.
    pub(crate) fn start_next_generation(&mut self) {
        let loaded_now = |module: &LoadedModule| self.current_modules.iter().any(|current| same_module(current, module));
        self.modules_this_generation.retain(loaded_now);
        for module in &self.current_modules {
            if !self.modules_this_generation.iter().any(|seen| same_module(seen, module)) {
                self.modules_this_generation.push(module.clone());
            }
        }
    }
}

/// Gives the handlers DWARF caches for the threads sampled now: one for a single-threaded
/// process (~33 KB; its handler never runs twice at once), else one more than its threads, up
/// to [`DWARF_CACHES_PER_CPU`] per CPU (at least 8). Called at every drain round.
pub(crate) fn ensure_dwarf_caches(registry: &Registry) {
    let threads = registry.slots_in_use();
    dwarf_caches_for(registry, if threads <= 1 { 1 } else { threads + 1 });
}

/// Grows the handlers' DWARF caches, once published, for a thread about to be created (before
/// it can be sampled): the interposed `pthread_create`. Only the drain publishes the pool.
/// Not for a signal handler (allocates).
pub fn dwarf_caches_for_new_thread(registry: &Registry) {
    // SAFETY: the pool, once published, is never replaced: nothing read here is released.
    let published = unsafe { unwind::CriticalSection::new_unchecked() };
    if let Some(pool) = registry.caches.current(&published) {
        pool.grow_to(registry.slots_in_use() + 2);
    }
}

/// The drain's side: publishes the pool once (only the drain does), then grows it.
fn dwarf_caches_for(registry: &Registry, wanted: usize) {
    // SAFETY: the publisher reads its own value and frees nothing here.
    let published = unsafe { unwind::CriticalSection::new_unchecked() };
    match registry.caches.current(&published) {
        Some(pool) => pool.grow_to(wanted),
        None => {
            let capacity = (usable_cpus() * DWARF_CACHES_PER_CPU).clamp(8, 256);
            let _ = registry.caches.publish(CachePool::new(wanted.clamp(1, capacity), capacity));
        }
    }
}

/// The CPUs this process may run on: one `sched_getaffinity` (std's `available_parallelism`
/// also reads the cgroup's files, a dozen system calls a process start would pay for).
fn usable_cpus() -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 2;
        }
        (libc::CPU_COUNT(&set) as usize).max(1)
    }
}

/// True when `a` and `b` are the same mapping of the same file.
fn same_module(a: &LoadedModule, b: &LoadedModule) -> bool {
    a.key() == b.key() && a.path == b.path
}

fn to_trace_module(module: &LoadedModule) -> Module {
    Module { path: module.path.clone(), base: module.base, start: module.start, end: module.end, build_id: module.build_id.clone() }
}
