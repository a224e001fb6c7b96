//! Mixed Python and native stacks: each evaluation frame of the interpreter in a native stack
//! (`_PyEval_EvalFrameDefault`) is replaced by the Python frames it was running, innermost
//! first, up to the entry frame that began its C call (docs/FORMAT.md, "Python frames").
//! Python frames are named `qualname` in their file at their line, in module `cpython`.

use super::{Builder, Location, PlacedNode};
use crate::symbolize::{FrameName, ModuleMap, Symbolizer};
use format::{Generation, PythonFrame};

/// The interpreter's evaluation function, in every CPython 3.x.
const EVAL_FRAME: &str = "_PyEval_EvalFrameDefault";
/// The module shown for Python frames (their kind).
pub const PYTHON_MODULE: &str = "cpython";

impl Builder {
    /// Places stack `stack` of `generation` when it holds Python frames (`None` when it holds
    /// none): native frames symbolised, evaluation frames replaced by their Python frames (or
    /// kept, and the Python frames dropped, when `raw_native`). Returns the leaf placed.
    pub(super) fn place_python_stack(
        &mut self,
        generation: &Generation,
        stack: u32,
        modules: &ModuleMap<'_>,
        symbolizer: &mut Symbolizer,
        raw_native: bool,
    ) -> Option<Option<PlacedNode>> {
        let words: Vec<u64> = generation.stacks.get(stack as usize)?.collect();
        let split = words.iter().position(|&word| PythonFrame::from_word(word).is_some())?;
        let (native, python) = words.split_at(split);
        let mut python = python.iter().filter_map(|&word| PythonFrame::from_word(word)).peekable();
        let mut locations = Vec::with_capacity(words.len());
        for (index, &avma) in native.iter().enumerate() {
            let is_return = index > 0;
            // As for native stacks: a return address that is not code (in no module, named by
            // no JIT symbol) ends the stack.
            if is_return && !modules.is_code(avma.saturating_sub(1)) {
                break;
            }
            let location = self.location(modules, symbolizer, avma, is_return);
            if !raw_native && python.peek().is_some() && self.is_eval_frame(location) {
                for frame in python.by_ref() {
                    locations.push(self.python_location(generation, frame));
                    if frame.entry {
                        break;
                    }
                }
                continue;
            }
            locations.push(location);
        }
        if !raw_native {
            // Python frames no evaluation frame was found for (a native walk cut short) stay
            // outermost.
            for frame in python {
                locations.push(self.python_location(generation, frame));
            }
        }
        let mut parent = None;
        for &location in locations.iter().rev() {
            parent = Some(self.place(parent, location));
        }
        Some(parent)
    }

    fn is_eval_frame(&self, location: u32) -> bool {
        self.profile.locations[location as usize].frames.iter().any(|&frame| self.profile.frames[frame as usize].function == EVAL_FRAME)
    }

    /// The location of a Python frame: no mapping, a synthetic address (the frame's tag, an id
    /// of its code object across the profile, its line), one frame.
    fn python_location(&mut self, generation: &Generation, frame: PythonFrame) -> u32 {
        let code = generation.python_code.get(frame.code as usize).cloned().unwrap_or_default();
        let next = self.python_code_ids.len() as u64;
        let code_id = *self.python_code_ids.entry(code.clone()).or_insert(next);
        let address = format::python::PYTHON_FRAME_TAG | (code_id & 0x7fff_ffff) << 24 | u64::from(frame.line & 0xff_ffff);
        if let Some(&id) = self.location_ids.get(&(None, address, 0)) {
            return id;
        }
        let name = if code.name.is_empty() { "<unknown>".to_string() } else { code.name.clone() };
        let frame_name = FrameName { function: name.clone(), module: PYTHON_MODULE.to_string(), file: code.file.clone(), line: frame.line, system_name: name };
        let frame_id = self.frame_id(frame_name);
        let id = self.profile.locations.len() as u32;
        self.profile.locations.push(Location { mapping: None, address, frames: vec![frame_id] });
        self.location_ids.insert((None, address, 0), id);
        id
    }
}
