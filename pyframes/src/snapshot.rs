//! A code object's bytes copied ahead of time, in the signal handler: exactly the reads
//! [`crate::resolve::read_code_with`] makes (the object's header, its qualified name and file
//! name `str` objects, its line table), so that it can later be named from the copies
//! although the object may be gone by then (the handler's spill, `sigprof::spill_code_table`:
//! a single-threaded program may reach no drain round before the interpreter frees its code
//! objects at exit).

use crate::layout::{Layout, BYTES_DATA, OB_TYPE, VAR_SIZE};
use crate::read::u64_at;
use crate::resolve::{str_data, MAX_LINE_TABLE};

/// Where the copies go.
pub trait Regions {
    /// Copies `len` bytes of the process's memory at `address` and keeps them; returns the copy,
    /// or `None` when they could not be read or kept. Async-signal-safe.
    fn copy(&mut self, address: u64, len: usize) -> Option<&[u8]>;
}

/// Copies what naming the code object at `address` reads (stops at the first read that fails,
/// as the naming would). Async-signal-safe: fault-proof copies into `regions` only.
pub fn snapshot_code(layout: &Layout, address: u64, regions: &mut impl Regions) {
    let Some(header) = regions.copy(address, layout.code_adaptive) else { return };
    let code_type = crate::runtime::code_type();
    if code_type != 0 && u64_at(header, OB_TYPE) != code_type {
        return;
    }
    let (qualname, filename, linetable) = (u64_at(header, layout.code_qualname), u64_at(header, layout.code_filename), u64_at(header, layout.code_linetable));
    snapshot_str(layout, qualname, regions);
    snapshot_str(layout, filename, regions);
    let Some(size) = regions.copy(linetable.wrapping_add(VAR_SIZE as u64), 8).map(|size| u64_at(size, 0)) else { return };
    if size <= MAX_LINE_TABLE {
        regions.copy(linetable.wrapping_add(BYTES_DATA as u64), size as usize);
    }
}

/// Copies a compact `str` object's header and text. Async-signal-safe.
fn snapshot_str(layout: &Layout, address: u64, regions: &mut impl Regions) {
    let Some((start, bytes, _)) = regions.copy(address, layout.unicode_compact_size).and_then(|header| str_data(layout, header)) else { return };
    regions.copy(address.wrapping_add(start as u64), bytes);
}
