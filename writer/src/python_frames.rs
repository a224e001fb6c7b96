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

/// The `Q` chunk that names the Python frames the sampling handler spilled since the last
/// round (`sigprof::spill_code_table`; empty when it spilled none): each code object named from
/// the handler's copies of it, the live object read only for what they lack.
pub(crate) fn spilled_python_chunk(resolver: &mut Resolver) -> Vec<u8> {
    use format::spill_python::{encode_spill_python, SpillPython, SpilledCode};
    let taken = sigprof::spill_code_table::take();
    let mut bytes = Vec::new();
    if taken.frames.is_empty() && taken.lost == 0 {
        return bytes;
    }
    let mut index: HashMap<(u64, u32), usize> = HashMap::new();
    let mut codes: Vec<SpilledCode> = Vec::new();
    for &frame in &taken.frames {
        let mut read = |address: u64, out: &mut [u8]| -> bool {
            let copied = taken.regions(frame.code, frame.check).find_map(|(start, copied)| {
                let offset = usize::try_from(address.checked_sub(start)?).ok()?;
                copied.get(offset..offset.checked_add(out.len())?)
            });
            match copied {
                Some(copied) => {
                    out.copy_from_slice(copied);
                    true
                }
                None => pyframes::read::copy(address, out),
            }
        };
        let raw = pyframes::RawFrame { code: frame.code, check: frame.check, instr: frame.instr, entry: false };
        let info = resolver.code_with(raw, &mut read);
        let at = *index.entry((frame.code, frame.check)).or_insert_with(|| {
            codes.push(SpilledCode {
                address: frame.code,
                check: frame.check,
                code: PythonCode { name: info.name.clone(), file: info.file.clone(), first_line: info.first_line },
                lines: Vec::new(),
            });
            codes.len() - 1
        });
        codes[at].lines.push((frame.instr, info.line(frame.instr)));
    }
    encode_spill_python(&mut bytes, &SpillPython { lost: taken.lost, codes });
    bytes
}
