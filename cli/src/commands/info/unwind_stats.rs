//! How completely a trace's stacks were unwound: samples that reached the root, by which
//! unwinding method, and why the others ended early (for `sigtrace info`).
//!
//! A sample reached the root when its stack's walk code says so (`END_ROOT`), or when the
//! outermost frame of its stack (the last; stacks are leaf first) symbolises to a function
//! that starts a process or thread (`_start`, `main`, `start_thread`, …): a frame-pointer walk
//! often stops one frame short of a null return address without having missed anything.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use format::walk;
use serde_json::{json, Map, Value};

use super::frame_kinds::FrameKinds;
use crate::format_numbers::{percent, thousands};
use crate::profile::LoadedTrace;
use crate::symbolize::{ModuleMap, Symbolizer};

/// Functions a complete stack ends in: process entry and thread start, in libc and the
/// executable (`__libc_start_main_impl` is glibc ≥ 2.34's name for `__libc_start_main`), and
/// Go's: a goroutine's stack ends in `runtime.goexit`, a thread's in `runtime.mstart`, the
/// process's first one in `runtime.rt0_go`.
pub const ROOT_FUNCTIONS: [&str; 11] = [
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_call_main",
    "main",
    "clone",
    "clone3",
    "start_thread",
    "runtime.goexit",
    "runtime.mstart",
    "runtime.rt0_go",
];

/// True when `function` (a demangled outermost function name) starts a process or a thread.
/// Go's assembly functions may carry their ABI suffix (`runtime.goexit.abi0`).
pub fn is_root_function(function: &str) -> bool {
    ROOT_FUNCTIONS.contains(&function.strip_suffix(".abi0").unwrap_or(function))
}

/// The method name given to samples of generations written without walk codes.
pub const UNKNOWN: &str = "unknown";

/// A number of samples and the sum of their weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub samples: u64,
    pub weight: u64,
}

impl Tally {
    fn add(&mut self, weight: u64) {
        self.samples += 1;
        self.weight = self.weight.saturating_add(weight);
    }
}

/// The unwinding statistics of one trace file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnwindStats {
    /// Every sample.
    pub total: Tally,
    /// Samples whose stack reached the root (see the module comment).
    pub to_root: Tally,
    /// Samples by unwinding method name (`walk::method_name`, or `unknown`).
    pub methods: BTreeMap<&'static str, Tally>,
    /// Samples by the walk's end code name (`walk::end_name`, or `unknown`), root included.
    pub ends: BTreeMap<&'static str, Tally>,
    /// Samples that did not reach the root, by the walk's end code name.
    pub early_ends: BTreeMap<&'static str, Tally>,
    /// The frames of the sampled stacks by kind (native, Go, JIT).
    pub frame_kinds: FrameKinds,
}

/// How one stack was walked: (method name, end name, reached the root).
type StackVerdict = (&'static str, &'static str, bool);

impl UnwindStats {
    /// Classifies every sample of `loaded`. Stacks whose walk did not end at the root have their
    /// outermost frame symbolised with `symbolizer`.
    pub fn of(loaded: &LoadedTrace, symbolizer: &mut Symbolizer) -> UnwindStats {
        let mut stats = UnwindStats::default();
        for generation in &loaded.trace.generations {
            stats.add_generation(generation, symbolizer);
        }
        stats
    }

    /// Classifies the samples of one more generation.
    pub fn add_generation(&mut self, generation: &format::Generation, symbolizer: &mut Symbolizer) {
        self.frame_kinds.add_generation(generation);
        let modules = ModuleMap::new(&generation.modules);
        // By the stacks samples use (a map: a node of 4 bytes can end 256 stacks).
        let mut verdicts: HashMap<u32, StackVerdict> = HashMap::new();
        // Each node's outermost frame (parents come first: one pass).
        let nodes = generation.stacks.nodes();
        let mut outermost: Vec<u64> = Vec::with_capacity(nodes.len());
        for node in nodes {
            let root = outermost.get(node.parent as usize).copied().unwrap_or(node.frame);
            outermost.push(root);
        }
        for sample in &generation.samples {
            let index = sample.stack as usize;
            let Some(leaf) = generation.stacks.leaf(index) else { continue };
            let depth = nodes.get(leaf as usize).map_or(0, |node| node.depth);
            let (method, end, reached_root) = *verdicts.entry(sample.stack).or_insert_with(|| {
                let code = generation.stack_walks.get(index).copied();
                let (method, end) = code.map_or((UNKNOWN, UNKNOWN), |code| (walk::method_name(code), walk::end_name(code)));
                let walked_to_root = code.is_some_and(|code| code & 0x0f == walk::END_ROOT);
                let reached_root = walked_to_root
                    || outermost.get(leaf as usize).is_some_and(|&outermost| {
                        let frames = symbolizer.symbolize(&modules, outermost, depth > 1);
                        frames.last().is_some_and(|frame| is_root_function(&frame.function))
                    });
                (method, end, reached_root)
            });
            let weight = u64::from(sample.weight);
            self.total.add(weight);
            self.methods.entry(method).or_default().add(weight);
            self.ends.entry(end).or_default().add(weight);
            if reached_root {
                self.to_root.add(weight);
            } else {
                self.early_ends.entry(end).or_default().add(weight);
            }
        }
    }

    /// The share of samples that reached the root; None without samples.
    pub fn to_root_ratio(&self) -> Option<f64> {
        (self.total.samples > 0).then(|| self.to_root.samples as f64 / self.total.samples as f64)
    }

    /// The rows `info` prints: (key, value). `max_depth` is the trace's `SIGTRACE_DEPTH`, named
    /// in the depth-limit end (`depth limit (SIGTRACE_DEPTH=4)`).
    pub fn text_rows(&self, max_depth: u32) -> Vec<(String, String)> {
        let percent = percent(self.to_root_ratio());
        let mut to_root = format!("{} of {} samples ({percent})", thousands(self.to_root.samples), thousands(self.total.samples));
        if self.total.weight != self.total.samples {
            let _ = write!(to_root, ", weight {} of {}", thousands(self.to_root.weight), thousands(self.total.weight));
        }
        let early_ends = self.early_ends.iter().map(|(name, tally)| (end_label(name, max_depth), *tally)).collect();
        vec![
            ("unwound to root".into(), to_root),
            ("methods".into(), tally_list(&self.methods)),
            ("early ends".into(), tally_list(&early_ends)),
            self.frame_kinds.text_row(),
        ]
    }

    /// The keys `info --json` adds: `unwound_to_root`, `unwound_to_root_weight`,
    /// `unwound_to_root_ratio`, `unwind_methods`, `unwind_ends`, `unwind_early_ends`
    /// (those three: name → samples), `frame_kinds` (`native`, `go`, `jit` → frames).
    pub fn json_fields(&self) -> Map<String, Value> {
        let samples_by_name = |tallies: &BTreeMap<&'static str, Tally>| -> Value {
            Value::Object(tallies.iter().map(|(name, tally)| ((*name).to_string(), json!(tally.samples))).collect())
        };
        let mut fields = Map::new();
        fields.insert("unwound_to_root".into(), json!(self.to_root.samples));
        fields.insert("unwound_to_root_weight".into(), json!(self.to_root.weight));
        fields.insert("unwound_to_root_ratio".into(), json!(self.to_root_ratio()));
        fields.insert("unwind_methods".into(), samples_by_name(&self.methods));
        fields.insert("unwind_ends".into(), samples_by_name(&self.ends));
        fields.insert("unwind_early_ends".into(), samples_by_name(&self.early_ends));
        fields.insert("frame_kinds".into(), self.frame_kinds.json());
        fields
    }
}

/// How `info`'s text names a walk's end: the depth limit with the setting that set it.
fn end_label(name: &str, max_depth: u32) -> String {
    if name == walk::end_name(walk::END_DEPTH_LIMIT) {
        format!("{name} (SIGTRACE_DEPTH={max_depth})")
    } else {
        name.to_string()
    }
}

/// `dwarf 9,990, fp (no free DWARF cache) 10`: most samples first, `none` when empty.
fn tally_list<K: AsRef<str> + Ord>(tallies: &BTreeMap<K, Tally>) -> String {
    let mut entries: Vec<(&str, Tally)> = tallies.iter().map(|(name, tally)| (name.as_ref(), *tally)).collect();
    entries.sort_by(|a, b| b.1.samples.cmp(&a.1.samples).then(a.0.cmp(b.0)));
    if entries.is_empty() {
        return "none".into();
    }
    entries.iter().map(|(name, tally)| format!("{name} {}", thousands(tally.samples))).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_functions() {
        for name in ["_start", "main", "clone3", "start_thread", "__libc_start_call_main", "runtime.goexit", "runtime.mstart.abi0", "runtime.rt0_go"] {
            assert!(is_root_function(name), "{name}");
        }
        for name in ["mainloop", "thread_start", "0x10", "libc.so.6+0x29d90", "", "runtime.goexit1", "runtime.mstart1"] {
            assert!(!is_root_function(name), "{name}");
        }
    }
}
