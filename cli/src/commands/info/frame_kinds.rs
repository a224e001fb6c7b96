//! The frames of a trace's sampled stacks by kind, as OpenTelemetry's `profile.frame.type`
//! separates them: native code of a module, Go code (a module built by Go: it has a
//! `.go.buildinfo` or `.gopclntab` section), and JIT-generated code (outside every module).
//! Counted per sample: a stack of 10 frames sampled twice counts 20.

use std::collections::HashMap;
use std::path::Path;

use object::{Object, ObjectSection};
use serde_json::{json, Value};

use crate::format_numbers::thousands;
use crate::symbolize::ModuleMap;

/// Frame counts by kind, and which module files are Go's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameKinds {
    pub native: u64,
    pub go: u64,
    pub jit: u64,
    /// Module path → built by Go (false when the file cannot be read).
    go_modules: HashMap<String, bool>,
}

/// Kinds, as indices into the per-node counts.
const NATIVE: usize = 0;
const GO: usize = 1;
const JIT: usize = 2;

impl FrameKinds {
    /// Counts the frames of every sample of one more generation.
    pub fn add_generation(&mut self, generation: &format::Generation) {
        let modules = ModuleMap::new(&generation.modules);
        // Per node (parents first): the kinds of the frames from the root down to it.
        let mut counts: Vec<[u64; 3]> = Vec::with_capacity(generation.stacks.nodes().len());
        for node in generation.stacks.nodes() {
            let mut total = counts.get(node.parent as usize).copied().unwrap_or_default();
            let kind = match modules.find(node.frame.saturating_sub(1)).or_else(|| modules.find(node.frame)) {
                Some(module) if self.is_go(&module.path) => GO,
                Some(_) => NATIVE,
                None => JIT,
            };
            total[kind] += 1;
            counts.push(total);
        }
        for sample in &generation.samples {
            let Some(leaf) = generation.stacks.leaf(sample.stack as usize) else { continue };
            if let Some(total) = counts.get(leaf as usize) {
                self.native += total[NATIVE];
                self.go += total[GO];
                self.jit += total[JIT];
            }
        }
    }

    fn is_go(&mut self, path: &str) -> bool {
        *self.go_modules.entry(path.to_string()).or_insert_with(|| built_by_go(Path::new(path)))
    }

    /// `frame kinds: native 1,234, Go 5,678, JIT 90` (kinds without frames left out).
    pub fn text_row(&self) -> (String, String) {
        let kinds = [("native", self.native), ("Go", self.go), ("JIT", self.jit)];
        let listed: Vec<String> = kinds.iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {}", thousands(*n))).collect();
        ("frame kinds".into(), if listed.is_empty() { "none".into() } else { listed.join(", ") })
    }

    /// `{"native": N, "go": N, "jit": N}`.
    pub fn json(&self) -> Value {
        json!({ "native": self.native, "go": self.go, "jit": self.jit })
    }
}

/// True when the file at `path` (read under the reader's rules for files a trace names) has
/// Go's build-info or line-table section.
fn built_by_go(path: &Path) -> bool {
    let Ok(file) = crate::symbolize::map_module_file(path) else { return false };
    object::File::parse(&*file)
        .is_ok_and(|elf| elf.section_by_name(".go.buildinfo").or_else(|| elf.section_by_name(".gopclntab")).is_some_and(|s| s.size() > 0))
}
