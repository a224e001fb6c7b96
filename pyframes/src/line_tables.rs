//! The line tables of CPython 3.9 (`co_lnotab`) and 3.10 (`co_linetable`), as
//! `Objects/lnotab_notes.txt` of each version describes them. (3.11's locations table is
//! [`crate::resolve::line_of`].)

/// Which table a code object carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineTableKind {
    /// 3.9: pairs (bytecode offset increment, signed line increment).
    Lnotab,
    /// 3.10: pairs (bytecode offset increment, signed line increment, -128 for "no line").
    Linetable310,
    /// 3.11 and later: the locations table.
    #[default]
    Locations,
}

/// The line of the instruction at byte offset `offset` in a 3.9 `co_lnotab`
/// (`PyCode_Addr2Line`).
pub fn lnotab_line(table: &[u8], first_line: u32, offset: u32) -> u32 {
    let mut line = i64::from(first_line);
    let mut address = 0u32;
    for pair in table.chunks_exact(2) {
        address += u32::from(pair[0]);
        if address > offset {
            break;
        }
        line += i64::from(pair[1] as i8);
    }
    u32::try_from(line).unwrap_or(0)
}

/// The line of the instruction at byte offset `offset` in a 3.10 `co_linetable`
/// (`_PyCode_CheckLineNumber`: the first non-empty range ending after `offset`), 0 when it
/// has none.
pub fn linetable_310_line(table: &[u8], first_line: u32, offset: u32) -> u32 {
    let mut line = i64::from(first_line);
    let mut end = 0u32;
    for pair in table.chunks_exact(2) {
        let start = end;
        end += u32::from(pair[0]);
        let delta = pair[1] as i8;
        let range_line = if delta == -128 {
            None
        } else {
            line += i64::from(delta);
            Some(line)
        };
        if end > start && end > offset {
            return range_line.and_then(|line| u32::try_from(line).ok()).unwrap_or(0);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables and the line of each instruction (`dis.findlinestarts`, carried forward),
    /// printed by pyenv's 3.9.18 and 3.10.13 for this function, at line 2 of its file:
    ///
    /// ```python
    /// def sample(n):
    ///     total = 0
    ///     for i in range(n):
    ///         if i % 3 == 0:
    ///             total += (i *
    ///                       2)
    ///         else:
    ///             total -= 1
    ///     return total
    /// ```
    #[test]
    #[rustfmt::skip]
    fn lines_follow_cpythons_own() {
        for (table, lines, decode) in [(LNOTAB_39, LINES_39, lnotab_line as fn(&[u8], u32, u32) -> u32), (LINETABLE_310, LINES_310, linetable_310_line)] {
            for (instr, &line) in lines.iter().enumerate() {
                assert_eq!(decode(table, 2, 2 * instr as u32), line, "instruction {instr}");
            }
        }
    }

    const LNOTAB_39: &[u8] = &[0, 1, 4, 1, 12, 1, 12, 1, 4, 1, 2, 255, 8, 3, 10, 1];
    const LINES_39: &[u32] = &[3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 6, 6, 7, 6, 6, 6, 6, 9, 9, 9, 9, 9, 10, 10];
    const LINETABLE_310: &[u8] = &[4, 1, 12, 1, 12, 1, 4, 1, 2, 1, 8, 255, 10, 3, 4, 1];
    const LINES_310: &[u32] = &[3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 6, 6, 7, 6, 6, 6, 6, 9, 9, 9, 9, 9, 10, 10];
}
