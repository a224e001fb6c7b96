//! A single-producer single-consumer ring of 64-bit words holding sample records.
//!
//! The producer is the slot's thread (its signal handler, or an annotation); the consumer is
//! the drain thread: the crate's invariant 3. The producer never nests with itself: the
//! sampling signal is masked while its handler runs (`sa_mask`), and annotations skip their
//! event when the thread is already inside its seqlock.
//!
//! Record layout (words): `[header, timestamp, weight, payload…]`, where
//! `header = total_words | walk << 32 | kind << 40`. Samples (kind 0) carry their frames as
//! payload and `walk`, the `method << 4 | end` code of their walk; annotation events (the
//! per-slot event rings) carry their kind and their strings packed into words.
//!
//! The buffer's words are atomics accessed `Relaxed` (a plain `mov` on x86_64): the producer's
//! `Release` store of `head` publishes them to the consumer's `Acquire` load, and the consumer's
//! `Release` store of `tail` hands their room back. `sigprof/tests/loom.rs` model-checks that.

use crate::sync::{AtomicPtr, AtomicU64, Ordering};

use format::ring_record::RecordHeader;
/// Words in a record before its frames (the record layout is `format::ring_record`'s).
pub use format::ring_record::RECORD_HEADER_WORDS;

/// Words per ring for `buffer_kb` KiB (`SIGTRACE_BUFFER_KB`), but room for at least four
/// records of `max_depth` frames.
pub fn ring_words(buffer_kb: usize, max_depth: usize) -> usize {
    (buffer_kb * 1024 / 8).max(4 * (max_depth + RECORD_HEADER_WORDS))
}

#[repr(align(64))]
struct CacheLine(AtomicU64);

/// One ring. Its buffer is mapped once (outside the handler) and reused for the slot's life.
pub struct SampleRing {
    buffer: AtomicPtr<AtomicU64>,
    /// Capacity in words, a power of two; 0 while unallocated.
    capacity: AtomicU64,
    /// Next word the producer writes (only the producer stores it).
    head: CacheLine,
    /// Next word the consumer reads (only the consumer stores it).
    tail: CacheLine,
}

/// A decoded record, as the drain thread sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRecord {
    pub time_ns: u64,
    pub weight: u32,
    /// How the stack was walked: `method << 4 | end` (see `unwind::WalkMethod::code`).
    pub walk: u8,
    /// 0 for a sample; the event kind code for an annotation event.
    pub kind: u8,
    pub frames: Vec<u64>,
}

impl SampleRing {
    pub fn new() -> Self {
        SampleRing {
            buffer: AtomicPtr::new(std::ptr::null_mut()),
            capacity: AtomicU64::new(0),
            head: CacheLine(AtomicU64::new(0)),
            tail: CacheLine(AtomicU64::new(0)),
        }
    }

    /// Maps the buffer if it is not mapped yet. Not for the handler (calls `mmap`). Only while
    /// no producer can use this ring (the slot is being claimed).
    pub fn ensure_allocated(&self, capacity_words: usize) -> bool {
        if !self.buffer.load(Ordering::Acquire).is_null() {
            return true;
        }
        let capacity_words = capacity_words.next_power_of_two();
        let Some(memory) = map_words(capacity_words) else { return false };
        self.capacity.store(capacity_words as u64, Ordering::Relaxed);
        self.buffer.store(memory, Ordering::Release);
        true
    }

    /// The producer's side. Async-signal-safe.
    ///
    /// # Safety
    /// Only the ring's one producer may use it (the slot's own thread, inside its seqlock:
    /// `sigprof` invariant 3); `ThreadSlot::ring_for` hands it out safely.
    pub unsafe fn producer(&self) -> RingProducer<'_> {
        RingProducer(self)
    }

    /// The consumer's side.
    ///
    /// # Safety
    /// Only the ring's one consumer may use it (the drain thread, or a forked child before its
    /// sampling restarts: `sigprof` invariant 3).
    pub unsafe fn consumer(&self) -> RingConsumer<'_> {
        RingConsumer(self)
    }

    /// True when nothing is waiting to be read. Any thread (a racy but harmless read).
    pub fn is_empty(&self) -> bool {
        self.head.0.load(Ordering::Acquire) == self.tail.0.load(Ordering::Relaxed)
    }

    fn begin_record(&self, max_frames: usize) -> Option<RecordWriter<'_>> {
        let buffer = self.buffer.load(Ordering::Acquire);
        let capacity = self.capacity.load(Ordering::Relaxed);
        if buffer.is_null() {
            return None;
        }
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        let free = capacity - (head - tail);
        if free < (RECORD_HEADER_WORDS + max_frames) as u64 {
            return None;
        }
        Some(RecordWriter { ring: self, buffer, mask: capacity - 1, start: head, words: RECORD_HEADER_WORDS as u64 })
    }

    fn discard(&self) {
        self.tail.0.store(self.head.0.load(Ordering::Acquire), Ordering::Release);
    }

    fn fill(&self) -> (u64, u64) {
        let used = self.head.0.load(Ordering::Acquire).wrapping_sub(self.tail.0.load(Ordering::Relaxed));
        (used, self.capacity.load(Ordering::Relaxed))
    }

    fn pop(&self) -> Option<SampleRecord> {
        let mut record = SampleRecord { time_ns: 0, weight: 0, walk: 0, kind: 0, frames: Vec::new() };
        self.pop_into(&mut record).then_some(record)
    }

    fn pop_into(&self, record: &mut SampleRecord) -> bool {
        let buffer = self.buffer.load(Ordering::Acquire);
        if buffer.is_null() {
            return false;
        }
        let mask = self.capacity.load(Ordering::Relaxed) - 1;
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Acquire);
        if head == tail {
            return false;
        }
        // SAFETY: indices are masked into the mapped buffer, which lives as long as the ring.
        // Words in [tail, head) were published by the producer's Release store of head, which
        // the Acquire load above synchronises with.
        let word = |at: u64| unsafe { &*buffer.add(((tail + at) & mask) as usize) }.load(Ordering::Relaxed);
        let header = RecordHeader::from_word(word(0));
        let total = header.total_words.clamp(RECORD_HEADER_WORDS as u64, head - tail);
        record.time_ns = word(1);
        record.weight = word(2) as u32;
        record.walk = header.walk;
        record.kind = header.kind;
        record.frames.clear();
        record.frames.extend((RECORD_HEADER_WORDS as u64..total).map(word));
        self.tail.0.store(tail + total, Ordering::Release);
        true
    }
}

/// `words` zeroed words for a ring buffer, never unmapped: an anonymous mapping (zeroed memory is
/// valid `AtomicU64`s, which have the layout of `u64`). Not for the handler.
#[cfg(not(sigtrace_loom))]
fn map_words(words: usize) -> Option<*mut AtomicU64> {
    // SAFETY: an anonymous private mapping; the result is checked against MAP_FAILED.
    let memory = unsafe { libc::mmap(std::ptr::null_mut(), words * 8, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    (memory != libc::MAP_FAILED).then_some(memory.cast())
}

/// Under the model checker: loom's atomics, leaked like the mapping.
#[cfg(sigtrace_loom)]
fn map_words(words: usize) -> Option<*mut AtomicU64> {
    Some(Box::leak((0..words).map(|_| AtomicU64::new(0)).collect::<Box<[AtomicU64]>>()).as_mut_ptr())
}

impl Default for SampleRing {
    fn default() -> Self {
        Self::new()
    }
}

/// A ring's producer side: the slot's own thread (its handler, or an annotation), inside its
/// seqlock.
#[derive(Clone, Copy)]
pub struct RingProducer<'ring>(&'ring SampleRing);

impl<'ring> RingProducer<'ring> {
    /// Starts a record of up to `max_frames` frames, or returns `None` when the ring lacks room
    /// for the largest such record (the caller counts a drop). Async-signal-safe.
    pub fn begin_record(self, max_frames: usize) -> Option<RecordWriter<'ring>> {
        self.0.begin_record(max_frames)
    }
}

/// A ring's consumer side: the drain thread.
#[derive(Clone, Copy)]
pub struct RingConsumer<'ring>(&'ring SampleRing);

impl RingConsumer<'_> {
    /// Removes the oldest record.
    pub fn pop(self) -> Option<SampleRecord> {
        self.0.pop()
    }

    /// Like [`RingConsumer::pop`], reusing `record` (and its frame buffer).
    pub fn pop_into(self, record: &mut SampleRecord) -> bool {
        self.0.pop_into(record)
    }

    /// Words waiting to be read, and the capacity (0 while unallocated).
    pub fn fill(self) -> (u64, u64) {
        self.0.fill()
    }

    /// True when nothing is waiting to be read.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    /// Drops every record not yet read; only while no producer can write (a forked child
    /// before its sampling restarts).
    pub fn discard(self) {
        self.0.discard()
    }
}

#[cfg(not(sigtrace_loom))]
impl<'ring> RingConsumer<'ring> {
    /// The committed records' bytes (words in memory order, little-endian on the targets
    /// sigtrace builds for) as at most two slices in ring order, and the head they end at.
    /// Async-signal-safe.
    ///
    /// # Safety
    /// Only while the producer cannot write into the ring (its own handler, which cannot nest
    /// with itself), until [`RingConsumer::release_to`] or the slices' last use.
    pub unsafe fn committed_bytes(self) -> (&'ring [u8], &'ring [u8], u64) {
        let ring = self.0;
        let buffer = ring.buffer.load(Ordering::Acquire);
        let capacity = ring.capacity.load(Ordering::Relaxed);
        let tail = ring.tail.0.load(Ordering::Relaxed);
        let head = ring.head.0.load(Ordering::Acquire);
        if buffer.is_null() || head == tail {
            return (&[], &[], head);
        }
        let start = (tail & (capacity - 1)) as usize;
        let used = (head - tail) as usize;
        let first = used.min(capacity as usize - start);
        // SAFETY: the buffer maps `capacity` words for the ring's life; [start, start + first)
        // and [0, used - first) lie within it and hold committed words (published by the
        // producer's Release store of head), which nobody writes while the caller's contract
        // holds. An AtomicU64 has the layout of a u64.
        unsafe {
            let bytes = buffer.cast::<u8>();
            (std::slice::from_raw_parts(bytes.add(start * 8), first * 8), std::slice::from_raw_parts(bytes, (used - first) * 8), head)
        }
    }

    /// The timestamp of the oldest record waiting, if any. Async-signal-safe.
    pub fn oldest_time_ns(self) -> Option<u64> {
        let ring = self.0;
        let buffer = ring.buffer.load(Ordering::Acquire);
        let tail = ring.tail.0.load(Ordering::Relaxed);
        if buffer.is_null() || ring.head.0.load(Ordering::Acquire) == tail {
            return None;
        }
        let mask = ring.capacity.load(Ordering::Relaxed) - 1;
        // SAFETY: the index is masked into the mapped buffer; the record at `tail` was
        // published by the producer's Release store of head (its time is its second word).
        Some(unsafe { &*buffer.add(((tail + 1) & mask) as usize) }.load(Ordering::Relaxed))
    }

    /// Hands every word before `head` back to the producer (the spill wrote them out).
    /// Async-signal-safe.
    pub fn release_to(self, head: u64) {
        self.0.tail.0.store(head, Ordering::Release);
    }
}

/// A record being written into a ring; it becomes visible to the consumer on `commit`.
pub struct RecordWriter<'ring> {
    ring: &'ring SampleRing,
    buffer: *const AtomicU64,
    mask: u64,
    start: u64,
    words: u64,
}

impl RecordWriter<'_> {
    /// Appends one frame. The caller never pushes more than the `max_frames` it reserved.
    /// Async-signal-safe.
    #[inline]
    pub fn push_frame(&mut self, frame: u64) {
        self.write_word(self.words, frame);
        self.words += 1;
    }

    #[inline]
    fn write_word(&mut self, offset: u64, value: u64) {
        // SAFETY: indices are masked into the mapped buffer, which lives as long as the ring.
        // `begin_record` checked there are free words for the header and max_frames frames
        // beyond `start`; only this thread's handler produces into this ring, and it cannot
        // nest with itself.
        unsafe { &*self.buffer.add(((self.start + offset) & self.mask) as usize) }.store(value, Ordering::Relaxed);
    }

    /// Fills in the header and publishes the record. Async-signal-safe.
    pub fn commit(self, time_ns: u64, weight: u32, walk: u8) {
        self.commit_kind(time_ns, weight, walk, 0);
    }

    /// Publishes the record with an event `kind` (0 = sample). Async-signal-safe.
    pub fn commit_kind(mut self, time_ns: u64, weight: u32, walk: u8, kind: u8) {
        let words = self.words;
        self.write_word(0, RecordHeader { total_words: words, walk, kind }.word());
        self.write_word(1, time_ns);
        self.write_word(2, u64::from(weight));
        self.ring.head.0.store(self.start + words, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_wrap() {
        let ring = SampleRing::new();
        assert!(ring.begin_record(1).is_none(), "unallocated rings refuse records");
        assert!(ring.ensure_allocated(64));
        for round in 0..100u64 {
            let mut writer = ring.begin_record(8).expect("room");
            for frame in 0..(round % 7) {
                writer.push_frame(round * 100 + frame);
            }
            writer.commit(round, 1 + round as u32, 2);
            let record = ring.pop().expect("a record");
            assert_eq!(record.time_ns, round);
            assert_eq!(record.weight, 1 + round as u32);
            assert_eq!(record.walk, 2);
            assert_eq!(record.frames, (0..(round % 7)).map(|f| round * 100 + f).collect::<Vec<_>>());
        }
        assert!(ring.pop().is_none());
        assert!(ring.is_empty());
    }

    #[test]
    fn a_full_ring_refuses_records() {
        let ring = SampleRing::new();
        assert!(ring.ensure_allocated(64));
        let mut written = 0;
        while let Some(writer) = ring.begin_record(10) {
            writer.commit(written, 1, 0);
            written += 1;
        }
        assert_eq!(written, 64 / 3 - 3, "records of 3 words until fewer than 13 are free");
        assert!(ring.begin_record(0).is_some(), "10 words are still free");
        assert!(ring.pop().is_some());
        assert!(ring.begin_record(11).is_none(), "13 free words are not enough for 14");
        assert!(ring.begin_record(10).is_some(), "13 free words are enough for 13");
    }

    #[test]
    fn producer_and_consumer_on_two_threads() {
        let ring = std::sync::Arc::new(SampleRing::new());
        assert!(ring.ensure_allocated(256));
        let producer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut sent = 0u64;
                while sent < 100_000 {
                    if let Some(mut writer) = ring.begin_record(4) {
                        writer.push_frame(sent);
                        writer.push_frame(!sent);
                        writer.commit(sent, 1, 0);
                        sent += 1;
                    }
                }
            })
        };
        let mut expected = 0u64;
        while expected < 100_000 {
            if let Some(record) = ring.pop() {
                assert_eq!(record.time_ns, expected);
                assert_eq!(record.frames, vec![expected, !expected]);
                expected += 1;
            }
        }
        producer.join().unwrap();
    }
}
