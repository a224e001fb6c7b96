//! Python frames in stacks, and the table of Python code objects a generation's stacks name
//! (docs/FORMAT.md, "Python frames").
//!
//! A Python frame is a word of a stack like a native frame: [`PYTHON_FRAME_TAG`] in its top
//! byte (no user-space address has it), then the entry bit, the index of its code object in the
//! generation's code table and its line. The table travels in a chunk of its own, tag `Y`,
//! written right before the generation chunk it belongs to (in the same `write`).

use crate::encode::encode_chunk;
use crate::varint::{put_str, put_uvarint, Cursor, DecodeError};

/// Chunk tag of a generation's Python code table.
pub const TAG_PYTHON_CODE: u8 = b'Y';
/// The top byte of every Python frame of a stack.
pub const PYTHON_FRAME_TAG: u64 = 0xfe << 56;
const ENTRY_BIT: u64 = 1 << 55;
const CODE_SHIFT: u32 = 24;
const CODE_MASK: u64 = (1 << 31) - 1;
const LINE_MASK: u64 = (1 << 24) - 1;

/// A Python code object: what a Python frame names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct PythonCode {
    /// `co_qualname` (`Class.method`, `<module>`, `<genexpr>`; 3.9, 3.10: `co_name`); `<unknown>` when the object
    /// could not be read.
    pub name: String,
    /// `co_filename`.
    pub file: String,
    /// `co_firstlineno`.
    pub first_line: u32,
}

/// One Python frame of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PythonFrame {
    /// Index into the generation's `python_code`.
    pub code: u32,
    /// The line it was running, 0 when unknown.
    pub line: u32,
    /// The frame a C call into the interpreter began with: the interpreter's evaluation frame
    /// in the native stack ran this frame and the ones it called, up to the next entry frame.
    pub entry: bool,
}

impl PythonFrame {
    /// The stack word of this frame (code indices and lines beyond their fields are cut).
    pub fn word(self) -> u64 {
        PYTHON_FRAME_TAG | if self.entry { ENTRY_BIT } else { 0 } | (u64::from(self.code) & CODE_MASK) << CODE_SHIFT | (u64::from(self.line) & LINE_MASK)
    }

    /// The Python frame a stack word holds, or `None` for a native frame.
    pub fn from_word(word: u64) -> Option<PythonFrame> {
        (word >> 56 == PYTHON_FRAME_TAG >> 56).then_some(PythonFrame {
            code: ((word >> CODE_SHIFT) & CODE_MASK) as u32,
            line: (word & LINE_MASK) as u32,
            entry: word & ENTRY_BIT != 0,
        })
    }
}

/// Appends the `Y` chunk of `codes` (nothing when there are none).
pub fn encode_python_codes(out: &mut Vec<u8>, codes: &[PythonCode]) {
    if codes.is_empty() {
        return;
    }
    let mut payload = Vec::with_capacity(codes.len() * 32);
    put_uvarint(&mut payload, codes.len() as u64);
    for code in codes {
        put_str(&mut payload, &code.name);
        put_str(&mut payload, &code.file);
        put_uvarint(&mut payload, code.first_line.into());
    }
    encode_chunk(out, TAG_PYTHON_CODE, &payload);
}

/// Decodes a `Y` chunk's payload.
pub fn decode_python_codes(payload: &[u8]) -> Result<Vec<PythonCode>, DecodeError> {
    let mut cursor = Cursor::new(payload);
    let count = cursor.count(3)?;
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        codes.push(PythonCode { name: cursor.string()?, file: cursor.string()?, first_line: cursor.u32_varint()? });
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_frames_round_trip_and_native_frames_are_not_python() {
        let frame = PythonFrame { code: 12345, line: 678, entry: true };
        assert_eq!(PythonFrame::from_word(frame.word()), Some(frame));
        assert_eq!(PythonFrame::from_word(0x7fff_1234_5678), None);
        let codes = vec![PythonCode { name: "fib".into(), file: "fib.py".into(), first_line: 2 }, PythonCode::default()];
        let mut chunk = Vec::new();
        encode_python_codes(&mut chunk, &codes);
        assert_eq!(chunk[0], TAG_PYTHON_CODE);
        assert_eq!(decode_python_codes(&chunk[5..chunk.len() - 4]).unwrap(), codes);
    }
}
