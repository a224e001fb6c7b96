//! The Python frames of spilled samples: a fixed, preallocated table of the raw frames
//! (code object address, check, instruction) that the handler's spills carried, for the drain
//! to name (docs/FORMAT.md, "Python frames of spills").
//!
//! A ring record's Python frames are raw pointers only the process can read. The drain names
//! them for the records it pops; records the handler spilled ([`crate::spill`]) never reach the
//! drain. So the spilling handler enters every raw frame of the records it writes here
//! ([`enter_python_frames`]), and the drain's next round, on the program's thread or the drain
//! thread, takes the entries ([`take`]), reads their code objects as it reads those of ring
//! records (`pyframes::resolve`), and writes what they name as a chunk of its own for the
//! reader to name the spilled frames with.
//!
//! Invariant: the table has one writer at a time and is taken only while that writer cannot
//! write. The handler enters frames only while it spills, that is while armed (one program
//! thread) and while no drain work holds the drainer ([`crate::spill::ConsumerBusy`]); the
//! drain takes the table while it holds the drainer. A slot is claimed with a `BUSY` address
//! and published with a Release store of its plain address, so a taker that ever met a slot in
//! the middle of its writing would skip it, never read half of it ([`slots`]: each set's first
//! page is probed first, so a short program maps one page of it).
//!
//! A full table (more distinct frames between two rounds than it holds) loses the frames that
//! did not fit: counted ([`take`] returns the count), and the reader shows those samples'
//! native frames only, as it would without the table.
//!
//! A pure-Python program may reach no drain round before its exit, and by then the interpreter
//! has freed its code objects. So on a code object's first entry the handler also copies what
//! naming it reads (`pyframes::snapshot`) into a preallocated arena, and the drain names the
//! object from those copies (reading the live object only for what the arena lacks): a spilled
//! frame is read as early as a drained one, at most a spill's 20 ms after its sample.

mod slots;

use pyframes::probe::Session;
use slots::{Claim, Slots, BUSY};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The entered frames: code object address and `check << 32 | instruction`, 4096 slots
/// (distinct frames between two drain rounds).
static TABLE: Slots<3840> = Slots::new();
/// Entries made since the last [`take`] (0: nothing to take, the drain skips the scan).
static ENTERED: AtomicU64 = AtomicU64::new(0);
/// Frames that found no free slot since the last [`take`].
static LOST: AtomicU64 = AtomicU64::new(0);

/// Code objects whose bytes are in the arena (address, and check as its detail), since the
/// last [`take`], 2048 slots (distinct code objects between two drain rounds). Keyed by the
/// check too: a module's code object is freed once the module ran, and its address soon holds
/// another function's.
static SNAPPED: Slots<1792> = Slots::new();
/// Bytes of the arena: snapshots, each a start record `code (u64) SNAPSHOT | check (u64)`
/// followed by its copied regions `address (u64) length (u64) bytes` padded to 8.
const ARENA_BYTES: usize = 1 << 20;
/// Set in the second word of a snapshot's start record.
const SNAPSHOT: u64 = 1 << 63;
/// Bytes of a region before its copy.
const REGION_HEADER: usize = 16;

/// The arena's bytes (written by the handler only, read by [`take`] only: the module's invariant).
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);
// SAFETY: one writer at a time, and the taker reads only while no writer can write (the
// module's invariant); the bytes a reader reads were published by `ARENA_USED`'s Release store.
unsafe impl Sync for Arena {}
static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));
/// Bytes of the arena in use.
static ARENA_USED: AtomicUsize = AtomicUsize::new(0);

/// Appends copies of the process's memory to the arena: by fault-recovering reads while a
/// probe session is open (`pyframes::probe`, nanoseconds a read), else by `process_vm_readv`.
struct ArenaWriter<'a> {
    session: Option<&'a Session>,
}

impl ArenaWriter<'_> {
    /// Appends a record of `len` bytes after its header `(first, second)`, filled by `fill`
    /// (false: nothing appended). Async-signal-safe.
    fn append(first: u64, second: u64, len: usize, fill: impl FnOnce(&mut [u8]) -> bool) -> Option<&'static [u8]> {
        let start = ARENA_USED.load(Ordering::Relaxed);
        let need = REGION_HEADER.checked_add(len.checked_next_multiple_of(8)?)?;
        if need > ARENA_BYTES.saturating_sub(start) {
            return None;
        }
        // SAFETY: [start, start + need) lies in the arena (checked above) past its used part,
        // which only this writer touches, and which the taker reads only while no writer runs
        // (the module's invariant): the bytes are not written again before the next take.
        let region = unsafe { std::slice::from_raw_parts_mut(ARENA.0.get().cast::<u8>().add(start), need) };
        let (header, bytes) = region.split_at_mut(REGION_HEADER);
        let bytes = &mut bytes[..len];
        if !fill(bytes) {
            return None;
        }
        header[..8].copy_from_slice(&first.to_le_bytes());
        header[8..].copy_from_slice(&second.to_le_bytes());
        ARENA_USED.store(start + need, Ordering::Release);
        Some(bytes)
    }
}

impl pyframes::snapshot::Regions for ArenaWriter<'_> {
    /// Async-signal-safe.
    fn copy(&mut self, address: u64, len: usize) -> Option<&[u8]> {
        if len as u64 >= SNAPSHOT {
            return None;
        }
        let session = self.session;
        ArenaWriter::append(address, len as u64, len, |bytes| match session {
            Some(session) => session.copy(address, bytes),
            None => pyframes::read::copy(address, bytes),
        })
    }
}

/// Copies what naming the code object at `code` reads into the arena, once per code object
/// between two takes (nothing when [`SNAPPED`] or the arena is full: the drain then reads the
/// live object). Async-signal-safe.
fn snapshot_once(code: u64, check: u32, layout: &pyframes::layout::Layout, session: Option<&Session>) {
    if SNAPPED.claim(code, check.into()) == Claim::Claimed && ArenaWriter::append(code, SNAPSHOT | u64::from(check), 0, |_| true).is_some() {
        pyframes::snapshot::snapshot_code(layout, code, &mut ArenaWriter { session });
    }
}

/// A raw Python frame as the handler recorded it (`pyframes::record`), less its entry bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpilledFrame {
    /// The code object's address.
    pub code: u64,
    /// The fold of its function object's address (`pyframes::record::check_of`).
    pub check: u32,
    /// The instruction it ran (code units from the first).
    pub instr: u32,
}

/// Enters one frame unless it is there already (and copies its code object on first sight);
/// counts it lost when its probes find no room. Async-signal-safe.
fn enter(frame: SpilledFrame, layout: Option<&pyframes::layout::Layout>, session: Option<&Session>) {
    let code = frame.code & !BUSY;
    if code == 0 {
        return;
    }
    match TABLE.claim(code, u64::from(frame.check) << 32 | u64::from(frame.instr)) {
        Claim::Present => {}
        Claim::Claimed => {
            ENTERED.fetch_add(1, Ordering::Relaxed);
            if let Some(layout) = layout {
                snapshot_once(code, frame.check, layout, session);
            }
        }
        Claim::Full => {
            LOST.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Enters the raw Python frames of a sample record as the handler walks them, while the
/// handler may spill: the code objects are copied while their frames run, so none can be gone.
pub(crate) struct RecordFrames {
    /// The interpreter's layout while entering, `None` when not.
    layout: Option<&'static pyframes::layout::Layout>,
    /// Whether the record's Python frames began (its marker was seen).
    python: bool,
    /// The first word of a frame whose second is next.
    first: Option<u64>,
}

impl RecordFrames {
    /// Enters frames only when the handler may spill now and the process runs a CPython whose
    /// frames are read. Async-signal-safe.
    pub(crate) fn new() -> RecordFrames {
        RecordFrames { layout: if crate::spill::may_spill() { pyframes::runtime::layout() } else { None }, python: false, first: None }
    }

    /// Takes the record's next word (its native frames are skipped); `session`, the walk's
    /// probe session while one is open, copies code objects by fault-recovering reads (else
    /// `process_vm_readv`). Async-signal-safe.
    #[inline]
    pub(crate) fn push(&mut self, word: u64, session: Option<&Session>) {
        if self.layout.is_none() {
            return;
        }
        if !self.python {
            self.python = word == pyframes::MARKER;
            return;
        }
        match self.first.take() {
            None => self.first = Some(word),
            Some(code) => {
                let frame = SpilledFrame { code: code & !pyframes::record::ENTRY, check: (word >> 32) as u32, instr: word as u32 };
                enter(frame, self.layout, session);
            }
        }
    }
}

/// Enters the raw Python frames of every sample record in `first` then `second` (a ring's
/// committed words as bytes, in order; a record may run from one into the other).
/// Async-signal-safe: no allocation, no lock, no panicking path.
pub(crate) fn enter_python_frames(first: &[u8], second: &[u8]) {
    if let Some(layout) = pyframes::runtime::layout() {
        enter_frames(first, second, Some(layout));
    }
}

/// [`enter_python_frames`], copying code objects when `layout` is given. Async-signal-safe.
fn enter_frames(first: &[u8], second: &[u8], layout: Option<&pyframes::layout::Layout>) {
    use format::ring_record::{RecordHeader, KIND_SAMPLE, PYTHON_MARKER, RECORD_HEADER_WORDS};
    let first_words = first.len() / 8;
    let words = first_words + second.len() / 8;
    let word = |at: usize| -> u64 {
        let (bytes, index) = if at < first_words { (first, at) } else { (second, at - first_words) };
        bytes.get(index * 8..index * 8 + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
    };
    let mut at = 0usize;
    while at < words {
        let header = RecordHeader::from_word(word(at));
        let total = header.total_words as usize;
        if total < RECORD_HEADER_WORDS || total > words - at {
            return;
        }
        if header.kind == KIND_SAMPLE {
            let end = at + total;
            let mut frame = at + RECORD_HEADER_WORDS;
            while frame < end && word(frame) != PYTHON_MARKER {
                frame += 1;
            }
            frame += 1;
            while frame + 1 < end {
                let (code, detail) = (word(frame), word(frame + 1));
                enter(SpilledFrame { code: code & !pyframes::record::ENTRY, check: (detail >> 32) as u32, instr: detail as u32 }, layout, None);
                frame += 2;
            }
        }
        at += total;
    }
}

/// What [`take`] took.
#[derive(Debug, Default)]
pub struct Taken {
    /// The frames entered.
    pub frames: Vec<SpilledFrame>,
    /// Frames that found the table full.
    pub lost: u64,
    /// The arena as taken (one copy): snapshots, each a start record then its regions.
    arena: Vec<u8>,
    /// Where the regions of each code object's copies lie in `arena`, by (code address, check).
    snapshots: HashMap<(u64, u32), std::ops::Range<usize>>,
}

impl Taken {
    /// The regions copied of the code object at `code` with `check`: (address, bytes), in the
    /// order they were copied; none when it has no snapshot.
    pub fn regions(&self, code: u64, check: u32) -> Regions<'_> {
        let bytes = self.snapshots.get(&(code, check)).and_then(|range| self.arena.get(range.clone())).unwrap_or(&[]);
        Regions { bytes }
    }
}

/// The regions of one snapshot (see [`Taken::regions`]).
pub struct Regions<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for Regions<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<(u64, &'a [u8])> {
        let (address, len) = region_header(self.bytes)?;
        let copied = self.bytes.get(REGION_HEADER..REGION_HEADER.checked_add(len)?)?;
        self.bytes = self.bytes.get(REGION_HEADER.saturating_add(len.next_multiple_of(8))..).unwrap_or(&[]);
        Some((address, copied))
    }
}

/// The two words of the record header at the start of `bytes`.
fn region_header(bytes: &[u8]) -> Option<(u64, usize)> {
    let header = bytes.get(..REGION_HEADER)?;
    let word = |at: usize| header.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
    Some((word(0), word(8) as usize))
}

/// Takes every frame entered since the last take and the copies of their code objects,
/// emptying the table and the arena, with the count of frames that found the table full. Not for
/// the handler (allocates); only by the drainer's holder (see the module's invariant).
pub fn take() -> Taken {
    let lost = LOST.swap(0, Ordering::Relaxed);
    if ENTERED.swap(0, Ordering::Acquire) == 0 {
        return Taken { lost, ..Taken::default() };
    }
    let used = ARENA_USED.load(Ordering::Acquire).min(ARENA_BYTES);
    // SAFETY: the first `used` bytes were published by the writer's Release store, and no
    // writer writes while the drainer's holder takes (the module's invariant).
    let arena = unsafe { std::slice::from_raw_parts(ARENA.0.get().cast::<u8>(), used) }.to_vec();
    // One pass over the record headers: each snapshot's regions run from after its start
    // record to the next start record.
    let mut snapshots = HashMap::new();
    let mut current: Option<((u64, u32), usize)> = None;
    let mut at = 0;
    while let Some((first, second)) = arena.get(at..).and_then(region_header) {
        if second as u64 & SNAPSHOT != 0 {
            if let Some((key, start)) = current.take() {
                snapshots.insert(key, start..at);
            }
            at += REGION_HEADER;
            current = Some(((first, second as u32), at));
            continue;
        }
        let next = at.saturating_add(REGION_HEADER).saturating_add(second.next_multiple_of(8));
        if next > arena.len() {
            break;
        }
        at = next;
    }
    if let Some((key, start)) = current {
        snapshots.insert(key, start..at);
    }
    ARENA_USED.store(0, Ordering::Release);
    SNAPPED.take(|_, _| {});
    let mut frames = Vec::new();
    TABLE.take(|code, detail| frames.push(SpilledFrame { code, check: (detail >> 32) as u32, instr: detail as u32 }));
    Taken { frames, lost, arena, snapshots }
}

#[cfg(test)]
mod tests {
    use super::*;
    use format::ring_record::{RecordHeader, KIND_SAMPLE, PYTHON_MARKER, RECORD_HEADER_WORDS};

    fn record(frames: &[u64]) -> Vec<u64> {
        let mut words = vec![RecordHeader { total_words: 3 + frames.len() as u64, walk: 0, kind: KIND_SAMPLE }.word(), 1, 1];
        words.extend_from_slice(frames);
        words
    }

    fn bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|word| word.to_le_bytes()).collect()
    }

    /// One test (the table is a process-wide static): entries across a wrapped ring, duplicates,
    /// event records, a damaged tail, and a full table.
    #[test]
    fn spilled_frames_are_entered_once_and_taken() {
        let _ = take();
        let entry = pyframes::record::ENTRY;
        let mut words = record(&[0x401000, PYTHON_MARKER, 0x7f00_0000_1000 | entry, 5 << 32 | 7, 0x7f00_0000_2000, 6 << 32 | 9]);
        words.extend(record(&[0x401000, PYTHON_MARKER, 0x7f00_0000_1000, 5 << 32 | 7]));
        words.extend([RecordHeader { total_words: 4, walk: 0, kind: 3 }.word(), 1, 1, 0x7f00_0000_3000]);
        words.extend(record(&[0x401000]));
        words.push(RecordHeader { total_words: 40, walk: 0, kind: KIND_SAMPLE }.word());
        let all = bytes(&words);
        let (first, second) = all.split_at(5 * 8 + 4 * 8); // inside the first record's Python frames
        enter_frames(first, second, None);
        let Taken { mut frames, lost, .. } = take();
        frames.sort_by_key(|frame| frame.code);
        assert_eq!(lost, 0);
        assert_eq!(frames, vec![SpilledFrame { code: 0x7f00_0000_1000, check: 5, instr: 7 }, SpilledFrame { code: 0x7f00_0000_2000, check: 6, instr: 9 }]);
        assert_eq!(take().frames, vec![], "taking empties the table");

        const SLOTS: usize = Slots::<3840>::capacity();
        let many: Vec<u64> = (0..SLOTS as u64 + 100).flat_map(|i| record(&[PYTHON_MARKER, 0x7f00_0000_0000 + i * 64, i])).collect();
        enter_frames(&bytes(&many), &[], None);
        let Taken { frames, lost, .. } = take();
        assert!(frames.len() <= SLOTS && frames.len() as u64 + lost == SLOTS as u64 + 100, "{} taken, {lost} lost", frames.len());
        assert!(lost >= 100);

        // Snapshots: a stand-in code object's header is copied on its first entry only (its
        // name pointers are null: the copy stops there), and the take hands back its regions.
        pyframes::read::set_pid();
        let layout = &pyframes::layout::PY_3_11;
        let objects: Vec<Vec<u8>> = (0..3u8).map(|i| (0..layout.code_adaptive as u8).map(|b| b.wrapping_mul(i + 1)).collect()).collect();
        for (i, object) in objects.iter().enumerate() {
            for instr in 0..2 {
                enter(SpilledFrame { code: object.as_ptr() as u64, check: i as u32, instr }, Some(layout), None);
            }
        }
        let taken = take();
        assert_eq!((taken.frames.len(), taken.lost), (6, 0));
        for (i, object) in objects.iter().enumerate() {
            let regions: Vec<(u64, &[u8])> = taken.regions(object.as_ptr() as u64, i as u32).collect();
            assert_eq!(regions, vec![(object.as_ptr() as u64, &object[..])], "object {i}");
        }
        assert_eq!(taken.regions(objects[0].as_ptr() as u64, 7).count(), 0, "another check has no snapshot");
        assert_eq!(take().regions(objects[0].as_ptr() as u64, 0).count(), 0, "taking empties the arena");
    }

    /// The handler's added cost per spilled sample, printed (run it with `--ignored
    /// --nocapture`; the machine's load makes it a figure, not a check): a sample's walk handing
    /// its words to [`RecordFrames`] and the spill's pass over the record, both for frames
    /// entered before (the steady state), and a code object's first sight (its copy by
    /// `process_vm_readv`, here of a 4 KiB buffer standing for the object).
    #[test]
    #[ignore]
    fn handler_cost_per_spilled_sample() {
        let _ = take();
        pyframes::read::set_pid();
        let layout = &pyframes::layout::PY_3_11;
        let (records, native, python) = (512usize, 24u64, 4u64);
        let mut words = Vec::new();
        for r in 0..records as u64 {
            let mut frames: Vec<u64> = (0..native).map(|i| 0x40_0000 + i * 16).collect();
            frames.push(PYTHON_MARKER);
            for f in 0..python {
                frames.extend([0x7f00_0000_0000 + f * 4096, (f << 32) | (r % 8)]);
            }
            words.extend(record(&frames));
        }
        let all = bytes(&words);
        enter_frames(&all, &[], Some(layout));
        let rounds = 2000;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            enter_frames(std::hint::black_box(&all), &[], Some(layout));
        }
        let spill_pass = started.elapsed().as_nanos() as f64 / (rounds * records) as f64;
        let per_record = RECORD_HEADER_WORDS + native as usize + 1 + 2 * python as usize;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            for r in 0..records {
                // The Python walk hands over the marker and the Python frames' words.
                let mut walk = RecordFrames { layout: Some(layout), python: false, first: None };
                for &word in &words[r * per_record + RECORD_HEADER_WORDS + native as usize..(r + 1) * per_record] {
                    walk.push(std::hint::black_box(word), None);
                }
            }
        }
        let sample_pass = started.elapsed().as_nanos() as f64 / (rounds * records) as f64;
        let object = vec![0u8; 4096];
        let _ = take();
        let copies = 200; // 4 KiB each: within the arena
        let started = std::time::Instant::now();
        for i in 0..copies {
            enter(SpilledFrame { code: object.as_ptr() as u64, check: i, instr: 0 }, Some(layout), None);
        }
        let first_sight = started.elapsed().as_nanos() as f64 / f64::from(copies);
        let Taken { frames, lost, .. } = take();
        assert_eq!((frames.len(), lost), (copies as usize, 0));
        println!(
            "{native} native + {python} Python frames per sample: walk hand-off {sample_pass:.0} ns, spill pass {spill_pass:.0} ns per sample; \
             a code object's first sight {first_sight:.0} ns"
        );
    }
}
