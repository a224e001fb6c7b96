//! The frames of the Firefox Profiler export: each frame of the profile as a
//! `fxprof_processed_profile::Frame`, in its module's library when it has one.
//!
//! The crate names a frame in a library by looking its address up in the library's symbol
//! table; it has no way to give a library frame a name of its own, and one address has one
//! name (so the inline frames of an address could not share it). So every module gets a symbol
//! table of the frames seen in it at made-up addresses 0, 1, 2, … (a frame's row in that table,
//! not a code address), and the profile is marked symbolicated so that the Firefox Profiler
//! never looks these addresses up. Frames outside any module are labels.

use std::collections::HashMap;
use std::sync::Arc;

use fxprof_processed_profile::debugid::DebugId;
use fxprof_processed_profile::{Frame, LibraryInfo, Symbol, SymbolTable};

use crate::format_numbers::hex;
use crate::profile::{Mapping, Profile};

/// The `Frame` of every frame of a profile, by frame id.
pub fn frames_of(profile: &Profile, out: &mut fxprof_processed_profile::Profile) -> Vec<Frame> {
    // Frame id → (mapping, made-up address), from the first location that holds the frame.
    let mut placed: Vec<Option<(usize, u32)>> = vec![None; profile.frames.len()];
    let mut symbols: HashMap<usize, Vec<Symbol>> = HashMap::new();
    for location in &profile.locations {
        let Some(mapping) = location.mapping.map(|m| m as usize).filter(|&m| m < profile.mappings.len()) else { continue };
        for &frame in &location.frames {
            let Some(slot @ None) = placed.get_mut(frame as usize) else { continue };
            let table = symbols.entry(mapping).or_default();
            let Ok(address) = u32::try_from(table.len()) else { continue };
            table.push(Symbol { address, size: Some(1), name: profile.frames[frame as usize].function.clone() });
            *slot = Some((mapping, address));
        }
    }
    let mut libraries = HashMap::new();
    for (mapping, table) in symbols {
        let library = out.add_lib(library_info(&profile.mappings[mapping], SymbolTable::new(table)));
        libraries.insert(mapping, library);
    }
    profile
        .frames
        .iter()
        .zip(placed)
        .map(|(frame, place)| match place.and_then(|(mapping, address)| Some((*libraries.get(&mapping)?, address))) {
            Some((library, address)) => Frame::RelativeAddressFromInstructionPointer(library, address),
            None => Frame::Label(out.intern_string(&frame.function)),
        })
        .collect()
}

/// The library of `mapping`, naming its functions through `symbols`.
fn library_info(mapping: &Mapping, symbols: SymbolTable) -> LibraryInfo {
    let name = if mapping.file_name.is_empty() { mapping.path.clone() } else { mapping.file_name.clone() };
    LibraryInfo {
        debug_name: name.clone(),
        name,
        path: mapping.path.clone(),
        debug_path: mapping.path.clone(),
        debug_id: debug_id_of(&mapping.build_id),
        code_id: (!mapping.build_id.is_empty()).then(|| hex(&mapping.build_id)),
        arch: None,
        symbol_table: Some(Arc::new(symbols)),
    }
}

/// The debug id symbol servers know an ELF file by: its build id's first 16 bytes (zero-padded)
/// read as a little-endian GUID, age 0 — what the Firefox Profiler's own tools derive.
fn debug_id_of(build_id: &[u8]) -> DebugId {
    if build_id.is_empty() {
        return DebugId::nil();
    }
    let mut guid = [0u8; 16];
    let used = build_id.len().min(16);
    guid[..used].copy_from_slice(&build_id[..used]);
    DebugId::from_guid_age(&guid, 0).unwrap_or_default()
}
