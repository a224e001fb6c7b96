//! What the raw Python frames of spill chunks name: the `Q` chunk (docs/FORMAT.md, "Python
//! frames of spills").
//!
//! A spilled record keeps its Python frames raw (code object address, check, instruction:
//! [`RawPythonFrame`]), which only the process could read. The writer's next drain round reads
//! the code objects the spills named and writes a `Q` chunk; a reader keeps every `Q` it read
//! ([`SpillPythonNames`]) and names a spill's raw frames with them when it hands the spill
//! over (at the next chunk with a module list, or the end; the writer writes a round's `Q`
//! before that round's other chunks). A raw frame whose code object no `Q` named leaves its
//! sample with its native frames only, as a reader that does not know `Q` shows every spill.
//!
//! ```text
//! spill_python := lost (uvarint) count (≥ 5 bytes each) × code
//! code         := address (uvarint) check (uvarint) name (string) file (string)
//!                 first_line (uvarint) lines (count, ≥ 2 bytes each) × (instr (uvarint) line (uvarint))
//! ```

use crate::encode::encode_chunk;
use crate::python::PythonCode;
use crate::varint::{put_str, put_uvarint, Cursor, DecodeError};
use std::collections::HashMap;

/// Chunk tag of the code objects spilled samples named.
pub const TAG_SPILL_PYTHON: u8 = b'Q';
/// Counter of a spill's generation: its samples whose Python frames no `Q` chunk named (they
/// show their native frames only).
pub const SPILLED_UNNAMED: &str = "python.spilled_samples_unnamed";
/// Counter of a spill's generation: raw frames the writer's table had no room for since the
/// `Q` chunk before (their samples are among the unnamed).
pub const SPILL_TABLE_FULL: &str = "python.spill_table_full";

/// A raw Python frame of a spilled record (`pyframes::record`: first word `code | entry << 63`,
/// second word `check << 32 | instr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawPythonFrame {
    /// The code object's address.
    pub code: u64,
    /// A fold of its function object's address.
    pub check: u32,
    /// The instruction it ran, code units from the first.
    pub instr: u32,
    /// The frame a C call into the interpreter began.
    pub entry: bool,
}

impl RawPythonFrame {
    /// The frame of a record's two words.
    pub fn from_words(first: u64, second: u64) -> RawPythonFrame {
        RawPythonFrame { code: first & !(1 << 63), entry: first >> 63 == 1, check: (second >> 32) as u32, instr: second as u32 }
    }
}

/// One code object spilled frames named, and the lines of the instructions they ran.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpilledCode {
    /// The code object's address in the process.
    pub address: u64,
    /// The check the frames recorded with it.
    pub check: u32,
    /// What it names.
    pub code: PythonCode,
    /// (instruction, line) pairs, line 0 when unknown.
    pub lines: Vec<(u32, u32)>,
}

/// A decoded `Q` chunk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpillPython {
    /// Raw frames the writer's table had no room for since the chunk before.
    pub lost: u64,
    /// The code objects.
    pub codes: Vec<SpilledCode>,
}

/// Appends the `Q` chunk of `chunk` (nothing when it is empty).
pub fn encode_spill_python(out: &mut Vec<u8>, chunk: &SpillPython) {
    if chunk.codes.is_empty() && chunk.lost == 0 {
        return;
    }
    let mut payload = Vec::with_capacity(16 + chunk.codes.len() * 48);
    put_uvarint(&mut payload, chunk.lost);
    put_uvarint(&mut payload, chunk.codes.len() as u64);
    for code in &chunk.codes {
        put_uvarint(&mut payload, code.address);
        put_uvarint(&mut payload, code.check.into());
        put_str(&mut payload, &code.code.name);
        put_str(&mut payload, &code.code.file);
        put_uvarint(&mut payload, code.code.first_line.into());
        put_uvarint(&mut payload, code.lines.len() as u64);
        for &(instr, line) in &code.lines {
            put_uvarint(&mut payload, instr.into());
            put_uvarint(&mut payload, line.into());
        }
    }
    encode_chunk(out, TAG_SPILL_PYTHON, &payload);
}

/// Decodes a `Q` chunk's payload.
pub fn decode_spill_python(payload: &[u8]) -> Result<SpillPython, DecodeError> {
    let mut cursor = Cursor::new(payload);
    let lost = cursor.uvarint()?;
    let count = cursor.count(5)?;
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        let address = cursor.uvarint()?;
        let check = cursor.u32_varint()?;
        let code = PythonCode { name: cursor.string()?, file: cursor.string()?, first_line: cursor.u32_varint()? };
        let line_count = cursor.count(2)?;
        let mut lines = Vec::with_capacity(line_count);
        for _ in 0..line_count {
            lines.push((cursor.u32_varint()?, cursor.u32_varint()?));
        }
        codes.push(SpilledCode { address, check, code, lines });
    }
    Ok(SpillPython { lost, codes })
}

/// Everything the `Q` chunks read so far name (a later entry for the same code object and
/// check replaces the earlier one's name and adds its lines).
#[derive(Debug, Default)]
pub struct SpillPythonNames {
    codes: HashMap<(u64, u32), (PythonCode, HashMap<u32, u32>)>,
    /// Frames lost to a full table, not yet put on a spill's counters.
    lost: u64,
}

impl SpillPythonNames {
    /// Adds a `Q` chunk's entries.
    pub fn add(&mut self, chunk: SpillPython) {
        self.lost = self.lost.saturating_add(chunk.lost);
        for spilled in chunk.codes {
            let entry = self.codes.entry((spilled.address, spilled.check)).or_default();
            entry.0 = spilled.code;
            entry.1.extend(spilled.lines);
        }
    }

    /// The code object and line a raw frame names, if a `Q` chunk named its code object (line 0
    /// when its instruction was not among those listed).
    pub fn name(&self, frame: RawPythonFrame) -> Option<(&PythonCode, u32)> {
        let (code, lines) = self.codes.get(&(frame.code, frame.check))?;
        Some((code, lines.get(&frame.instr).copied().unwrap_or(0)))
    }

    /// The frames lost to a full table since the last call, counted once.
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spill_python_round_trips_and_names_frames() {
        let chunk = SpillPython {
            lost: 3,
            codes: vec![SpilledCode {
                address: 0x7f00_1234_5670,
                check: 0xdead_beef,
                code: PythonCode { name: "spin".into(), file: "/t/x.py".into(), first_line: 4 },
                lines: vec![(10, 6), (12, 7)],
            }],
        };
        let mut bytes = Vec::new();
        encode_spill_python(&mut bytes, &chunk);
        assert_eq!(bytes[0], TAG_SPILL_PYTHON);
        let decoded = decode_spill_python(&bytes[5..bytes.len() - 4]).unwrap();
        assert_eq!(decoded, chunk);
        let mut names = SpillPythonNames::default();
        names.add(decoded);
        let frame = RawPythonFrame::from_words(0x7f00_1234_5670 | 1 << 63, 0xdead_beef << 32 | 12);
        assert!(frame.entry);
        assert_eq!(names.name(frame).map(|(code, line)| (code.name.as_str(), line)), Some(("spin", 7)));
        assert_eq!(names.name(RawPythonFrame { instr: 99, ..frame }).map(|(_, line)| line), Some(0));
        assert_eq!(names.name(RawPythonFrame { check: 1, ..frame }), None, "another function at the same address");
        assert_eq!((names.take_lost(), names.take_lost()), (3, 0));
        let mut empty = Vec::new();
        encode_spill_python(&mut empty, &SpillPython::default());
        assert!(empty.is_empty());
        assert!(decode_spill_python(&bytes[5..bytes.len() - 6]).is_err());
    }
}
