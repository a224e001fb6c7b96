//! The Python frames of a generation: the handler's raw frames (code object address, check,
//! instruction) become stack words naming an entry of the generation's code table, with the
//! line the instruction is on (`format::python`).

use format::{PythonCode, PythonFrame};
use pyframes::{record::split, Resolver};
use std::collections::HashMap;

/// The generation's Python code table, built as samples arrive.
#[derive(Default)]
pub(crate) struct PythonCodes {
    /// (code address, check) → index into `codes`.
    index: HashMap<(u64, u32), u32>,
    pub(crate) codes: Vec<PythonCode>,
}

impl PythonCodes {
    /// Rewrites a record's words in place: native frames stay, the marker and the raw Python
    /// frames after it become one stack word per Python frame (innermost first).
    pub(crate) fn convert(&mut self, words: &mut Vec<u64>, resolver: &mut Resolver) {
        if !words.contains(&pyframes::MARKER) {
            return;
        }
        let (native, raw) = split(words);
        let native_len = native.len();
        let frames: Vec<u64> = raw
            .map(|raw| {
                let info = resolver.code(raw);
                let next = self.codes.len() as u32;
                let code = *self.index.entry((raw.code, raw.check)).or_insert_with(|| {
                    self.codes.push(PythonCode { name: info.name.clone(), file: info.file.clone(), first_line: info.first_line });
                    next
                });
                PythonFrame { code, line: info.line(raw.instr), entry: raw.entry }.word()
            })
            .collect();
        words.truncate(native_len);
        words.extend(frames);
    }
}
