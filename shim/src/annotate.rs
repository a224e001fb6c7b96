//! The annotation C API (`include/sigtrace.h`): log messages and regions written as events into
//! the calling thread's per-generation event ring, under its seqlock. A call made while the
//! thread is already inside sigtrace (say from a signal handler that interrupted another
//! annotation) is skipped and counted. Async-signal-safe: no allocation, no lock.

use format::EventKind;
use sigprof::{monotonic_ns, Registry};
use std::ffi::{c_char, CStr};
use std::sync::atomic::Ordering;

/// Longest string kept per field, in bytes.
const MAX_TEXT: usize = 1024;
/// Words of an event ring (16 KiB).
const EVENT_RING_WORDS: usize = 2048;

/// The bytes of a C string, cut at `MAX_TEXT`; empty for NULL.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string.
unsafe fn text_bytes<'a>(text: *const c_char) -> &'a [u8] {
    if text.is_null() {
        return &[];
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    &bytes[..bytes.len().min(MAX_TEXT)]
}

/// Writes one event of the calling thread. Async-signal-safe.
pub(crate) fn emit(kind: EventKind, category: &[u8], text: &[u8]) {
    let Some(registry) = Registry::get() else { return };
    let Some(slot) = registry.current_slot() else { return };
    let Some(guard) = slot.seqlock.try_enter() else {
        slot.skipped_events.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if guard.generation() == 0 {
        return;
    }
    let payload_words = 1 + (category.len() + text.len()).div_ceil(8);
    let Some(ring) = slot.event_ring_for(&guard, EVENT_RING_WORDS) else { return };
    let Some(mut record) = ring.begin_record(payload_words) else {
        slot.count_drop(&guard, 1);
        return;
    };
    record.push_frame(category.len() as u64 | (text.len() as u64) << 32);
    let mut word = [0u8; 8];
    let mut filled = 0;
    for &byte in category.iter().chain(text) {
        word[filled] = byte;
        filled += 1;
        if filled == 8 {
            record.push_frame(u64::from_le_bytes(word));
            word = [0; 8];
            filled = 0;
        }
    }
    if filled > 0 {
        record.push_frame(u64::from_le_bytes(word));
    }
    record.commit_kind(monotonic_ns(), 0, 0, kind.code());
}

/// Records a log message of `category` on the calling thread.
///
/// # Safety
/// `category` and `message` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn sigtrace_log(category: *const c_char, message: *const c_char) {
    // SAFETY: forwarded from the caller.
    let (category, message) = unsafe { (text_bytes(category), text_bytes(message)) };
    emit(EventKind::Log, category, message);
}

/// Opens the region `name` on the calling thread (regions nest).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sigtrace_region_begin(name: *const c_char) {
    // SAFETY: forwarded from the caller.
    emit(EventKind::RegionBegin, &[], unsafe { text_bytes(name) });
}

/// Closes the calling thread's innermost open region.
#[no_mangle]
pub extern "C" fn sigtrace_region_end() {
    emit(EventKind::RegionEnd, &[], &[]);
}
