//! How the handler hands Python frames to the drain thread: words appended to a sample record
//! after its native frames. A native frame is a user-space address (below 2⁴⁷), so the marker
//! can never be one.
//!
//! ```text
//! MARKER, then per Python frame, innermost first:
//!   code | ENTRY?        the code object's address; bit 63 set on the frame a C call into the
//!                        interpreter started (its evaluation frame in the native stack ends there)
//!   check << 32 | instr  a 32-bit check of the frame's function object, and the index of the
//!                        instruction it was running (code units from the first)
//! ```

/// The word that separates native frames from Python frames in a record.
pub const MARKER: u64 = 0xfeed_0000_0000_0000;
/// Bit of the first word marking an entry frame.
pub const ENTRY: u64 = 1 << 63;

/// One Python frame as the handler recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawFrame {
    pub code: u64,
    pub check: u32,
    pub instr: u32,
    pub entry: bool,
}

impl RawFrame {
    /// The record's two words.
    #[inline]
    pub fn words(self) -> [u64; 2] {
        [self.code | if self.entry { ENTRY } else { 0 }, u64::from(self.check) << 32 | u64::from(self.instr)]
    }

    /// The frame of two record words.
    pub fn from_words(first: u64, second: u64) -> RawFrame {
        RawFrame { code: first & !ENTRY, entry: first & ENTRY != 0, check: (second >> 32) as u32, instr: second as u32 }
    }
}

/// Splits a record's words into its native frames and its Python frames (innermost first).
pub fn split(words: &[u64]) -> (&[u64], impl Iterator<Item = RawFrame> + '_) {
    let at = words.iter().position(|&word| word == MARKER).unwrap_or(words.len());
    let python = words.get(at + 1..).unwrap_or(&[]);
    (&words[..at], python.chunks_exact(2).map(|pair| RawFrame::from_words(pair[0], pair[1])))
}

/// Folds a function object's address into the 32-bit check.
#[inline]
pub fn check_of(function: u64) -> u32 {
    ((function >> 4) ^ (function >> 36)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_record_words() {
        let frame = RawFrame { code: 0x7f12_3456_7890, check: 0xdead_beef, instr: 77, entry: true };
        let mut words = vec![0x401000, 0x401234, MARKER];
        words.extend(frame.words());
        words.extend(RawFrame { entry: false, ..frame }.words());
        let (native, python) = split(&words);
        assert_eq!(native, &[0x401000, 0x401234]);
        assert_eq!(python.collect::<Vec<_>>(), vec![frame, RawFrame { entry: false, ..frame }]);
        let (native, python) = split(&[1, 2, 3]);
        assert_eq!((native.len(), python.count()), (3, 0));
    }
}
