//! JIT symbol chunks (`J`): names of code a runtime generated, copied by the writer from the
//! runtime's perf map (`/tmp/perf-PID.map`) as it grows, each with the time it was read, so a
//! trace names JIT frames later and elsewhere (docs/FORMAT.md, "JIT symbols").

use crate::encode::encode_chunk;
use crate::types::TAG_JIT_SYMBOLS;
use crate::varint::{put_str, put_uvarint, Cursor, DecodeError};

/// One named range of generated code: `[start, start + size)` is `name` from `time` on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JitSymbol {
    /// When the writer read it, in header clock ticks (the code existed by then).
    pub time: u64,
    /// The first address of the code.
    pub start: u64,
    /// Its length in bytes.
    pub size: u64,
    /// The name the runtime gave it.
    pub name: String,
}

/// The longest perf map line read (longer ones are skipped whole).
pub const PERF_MAP_LINE_BYTES: usize = 4096;

/// One map line, `START SIZE name` (hex numbers, an optional `0x`); `None` when malformed or
/// longer than [`PERF_MAP_LINE_BYTES`].
pub fn parse_perf_map_line(line: &[u8], time: u64) -> Option<JitSymbol> {
    if line.len() > PERF_MAP_LINE_BYTES {
        return None;
    }
    let text = String::from_utf8_lossy(line);
    let mut fields = text.trim_end_matches('\r').splitn(3, ' ');
    let hex = |field: &str| u64::from_str_radix(field.trim_start_matches("0x"), 16).ok();
    let start = hex(fields.next()?)?;
    let size = hex(fields.next()?)?;
    let name = fields.next()?.trim();
    if size == 0 || name.is_empty() || start.checked_add(size).is_none() {
        return None;
    }
    Some(JitSymbol { time, start, size, name: name.to_string() })
}

/// Appends a JIT symbol chunk.
pub fn encode_jit_symbols(out: &mut Vec<u8>, symbols: &[JitSymbol]) {
    let mut payload = Vec::with_capacity(8 + symbols.len() * 32);
    put_uvarint(&mut payload, symbols.len() as u64);
    for symbol in symbols {
        put_uvarint(&mut payload, symbol.time);
        put_uvarint(&mut payload, symbol.start);
        put_uvarint(&mut payload, symbol.size);
        put_str(&mut payload, &symbol.name);
    }
    encode_chunk(out, TAG_JIT_SYMBOLS, &payload);
}

/// Decodes a JIT symbol chunk's payload; the count is checked against the bytes left.
pub fn decode_jit_symbols(payload: &[u8]) -> Result<Vec<JitSymbol>, DecodeError> {
    let mut c = Cursor::new(payload);
    let count = c.count(4)?;
    let mut symbols = Vec::with_capacity(count);
    for _ in 0..count {
        symbols.push(JitSymbol { time: c.uvarint()?, start: c.uvarint()?, size: c.uvarint()?, name: c.string()? });
    }
    Ok(symbols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_parsed_and_bad_ones_skipped() {
        let symbol = parse_perf_map_line(b"7f3c5e0a1240 5c LazyCompile:*fib /tmp/fib.js:1:13", 7).unwrap();
        assert_eq!((symbol.start, symbol.size, symbol.name.as_str(), symbol.time), (0x7f3c_5e0a_1240, 0x5c, "LazyCompile:*fib /tmp/fib.js:1:13", 7));
        assert_eq!(parse_perf_map_line(b"0x1000 0x10 py::f:x.py", 0).unwrap().start, 0x1000);
        for bad in [&b""[..], b"zz 10 f", b"1000 0 f", b"1000 10", b"1000 10 ", b"ffffffffffffffff 10 f", b"\xff\xfe 1 2"] {
            assert!(parse_perf_map_line(bad, 0).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn round_trip_and_damaged_payloads() {
        let symbols = vec![
            JitSymbol { time: 5, start: 0x7f00_0000_1000, size: 0x40, name: "LazyCompile:*fib /tmp/fib.js:1".into() },
            JitSymbol { time: 9, start: 0x7f00_0000_1000, size: 0x80, name: "py::fib:/tmp/fib.py".into() },
        ];
        let mut bytes = Vec::new();
        encode_jit_symbols(&mut bytes, &symbols);
        let payload = &bytes[5..bytes.len() - 4];
        assert_eq!(decode_jit_symbols(payload).unwrap(), symbols);
        for cut in 0..payload.len() {
            assert!(decode_jit_symbols(&payload[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_jit_symbols(&[0xff, 0xff, 0xff, 0x0f]).is_err(), "a count the bytes cannot hold");
    }
}
