//! LEB128 varints, zigzag signed deltas and the bounds-checked cursor the decoder reads with.

/// Appends `value` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a signed value as a zigzag-encoded varint (small magnitudes stay short).
pub fn put_svarint(out: &mut Vec<u8>, value: i64) {
    put_uvarint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a length-prefixed UTF-8 string.
pub fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

/// What went wrong while decoding, and at which byte offset of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Where, in bytes from the payload's start.
    pub offset: usize,
    /// What is wrong there.
    pub what: &'static str,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at payload byte {}", self.what, self.offset)
    }
}

/// A read position in a byte slice. Every read is checked; no read can panic.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn error(&self, what: &'static str) -> DecodeError {
        DecodeError { offset: self.pos, what }
    }

    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(|| self.error("varint runs past the end"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    pub fn u32_varint(&mut self) -> Result<u32, DecodeError> {
        let value = self.uvarint()?;
        u32::try_from(value).map_err(|_| self.error("value does not fit in 32 bits"))
    }

    pub fn svarint(&mut self) -> Result<i64, DecodeError> {
        let raw = self.uvarint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.uvarint()?;
        if len > self.remaining() as u64 {
            return Err(self.error("byte string runs past the end"));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.bytes[start..self.pos])
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    /// Reads an element count and checks it against the bytes left (each element takes at
    /// least `min_element_bytes`), so a damaged count cannot trigger a huge allocation.
    pub fn count(&mut self, min_element_bytes: usize) -> Result<usize, DecodeError> {
        let count = self.uvarint()?;
        let limit = (self.remaining() / min_element_bytes.max(1)) as u64;
        if count > limit {
            return Err(self.error("element count larger than the bytes left"));
        }
        Ok(count as usize)
    }
}

/// CRC-32 (IEEE 802.3, the zlib polynomial), table-driven at 256 entries.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.finish()
}

/// A CRC-32 computed over bytes given in pieces: `update` each in order, then `finish`.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

impl Crc32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut index = 0;
        while index < 256 {
            let mut crc = index as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
                bit += 1;
            }
            table[index] = crc;
            index += 1;
        }
        table
    };

    /// The checksum of no bytes.
    pub const fn new() -> Crc32 {
        Crc32(!0)
    }

    /// Adds `bytes` after those already added.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = Self::TABLE[((self.0 ^ u32::from(byte)) & 0xff) as usize] ^ (self.0 >> 8);
        }
    }

    /// The checksum of every byte added.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let values = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let mut out = Vec::new();
        for &value in &values {
            put_uvarint(&mut out, value);
        }
        for &value in &[0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            put_svarint(&mut out, value);
        }
        let mut cursor = Cursor::new(&out);
        for &value in &values {
            assert_eq!(cursor.uvarint().unwrap(), value);
        }
        for &value in &[0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            assert_eq!(cursor.svarint().unwrap(), value);
        }
        assert_eq!(cursor.remaining(), 0);
        assert!(cursor.uvarint().is_err());
    }

    #[test]
    fn crc32_matches_the_zlib_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn damaged_counts_are_refused() {
        let mut out = Vec::new();
        put_uvarint(&mut out, 1 << 40);
        assert!(Cursor::new(&out).count(1).is_err());
    }
}
