//! The open generation as the drain thread builds it: samples, stacks (de-duplicated as they
//! arrive, with their walk codes), threads by index and annotation events, with the writer's
//! clock tick.

use crate::wall_sampler::{WallSample, WallStack};
use format::{walk, Event, EventKind, Sample, SampleState, StackTable};
use sigprof::SampleRecord;
use std::collections::HashMap;

/// The writer's clock tick (`Header::clock_hz`): 1 µs. Timestamps are taken in ns and stored
/// in µs, which makes a sample's time delta 2 bytes at 1 kHz instead of 3.
pub const CLOCK_HZ: u64 = 1_000_000;

/// A `CLOCK_MONOTONIC` reading in ns, in [`CLOCK_HZ`] ticks.
pub(crate) fn ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / CLOCK_HZ)
}

/// A fast hash for stack keys (FxHash's multiply-rotate): SipHash costs more than the rest of
/// draining a sample. Keys come from our own rings, not from an adversary.
#[derive(Default, Clone, Copy)]
struct StackHasher(u64);

impl std::hash::Hasher for StackHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

type StackMap = HashMap<Vec<u64>, u32, std::hash::BuildHasherDefault<StackHasher>>;

/// The samples, stacks and threads of the open generation, de-duplicated as they arrive.
#[derive(Default)]
pub(crate) struct GenerationBuilder {
    /// Frames followed by the walk code → stack id: the same frames walked differently are
    /// distinct stacks.
    stack_ids: StackMap,
    pub(crate) stacks: StackTable,
    pub(crate) stack_walks: Vec<u8>,
    pub(crate) samples: Vec<Sample>,
    thread_index: HashMap<u32, u32>,
    pub(crate) thread_tids: Vec<u32>,
    /// Each thread's (by index) stack of its last running sample: a runnable sample's stack.
    last_running_stack: Vec<Option<u32>>,
    /// Samples per walk end and per walk method (indexed by their codes).
    pub(crate) walk_ends: [u64; walk::END_COUNTERS.len()],
    pub(crate) walk_methods: [u64; walk::METHOD_COUNTERS.len()],
    pub(crate) events: Vec<Event>,
    /// The code objects the Python frames of its stacks name.
    pub(crate) python: crate::python_frames::PythonCodes,
}

impl GenerationBuilder {
    /// The index of thread `tid` in the thread table, added at the end when it is new.
    pub(crate) fn thread(&mut self, tid: u32) -> u32 {
        let next = self.thread_tids.len() as u32;
        *self.thread_index.entry(tid).or_insert_with(|| {
            self.thread_tids.push(tid);
            next
        })
    }

    /// Decodes an annotation event record: word 0 holds the byte lengths of its two strings,
    /// the following words their bytes.
    pub(crate) fn add_event(&mut self, tid: u32, record: SampleRecord) {
        let Some(kind) = EventKind::from_code(record.kind) else { return };
        let thread = self.thread(tid);
        let bytes: Vec<u8> = record.frames.iter().skip(1).flat_map(|word| word.to_le_bytes()).collect();
        let lengths = record.frames.first().copied().unwrap_or(0);
        let (first, second) = ((lengths & 0xffff_ffff) as usize, (lengths >> 32) as usize);
        let text = |range: std::ops::Range<usize>| bytes.get(range).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        self.events.push(Event { time: ticks(record.time_ns), thread, kind, category: text(0..first), text: text(first..first + second) });
    }

    /// Adds a sample of a running thread; `record.frames` is used as scratch space (the walk
    /// code is appended).
    pub(crate) fn add(&mut self, tid: u32, record: &mut SampleRecord, python: &mut pyframes::Resolver) {
        self.python.convert(&mut record.frames, python);
        record.frames.push(u64::from(record.walk));
        self.add_keyed(tid, &record.frames, record.time_ns, record.weight, SampleState::RUNNING);
    }

    /// Adds a runnable or blocked sample of the wall-clock sampler (a walked stack may hold
    /// raw Python frames, named here as in [`GenerationBuilder::add`]).
    pub(crate) fn add_wall(&mut self, sample: WallSample<'_>, key: &mut Vec<u64>, python: &mut pyframes::Resolver) {
        key.clear();
        match sample.stack {
            WallStack::Walked { frames, walk } => {
                key.extend_from_slice(frames);
                self.python.convert(key, python);
                key.push(u64::from(walk));
            }
            WallStack::LastRunning => {
                let thread = self.thread(sample.tid) as usize;
                match self.last_running_stack.get(thread).copied().flatten() {
                    Some(stack) => {
                        key.extend(self.stacks.get(stack as usize).into_iter().flatten());
                        key.push(u64::from(self.stack_walks[stack as usize]));
                    }
                    None => key.push(0),
                }
            }
        }
        self.add_keyed(sample.tid, key, sample.time_ns, sample.weight, sample.state);
    }

    /// Adds a sample whose stack is `key`: its frames followed by its walk code.
    fn add_keyed(&mut self, tid: u32, key: &[u64], time_ns: u64, weight: u32, state: SampleState) {
        let thread = self.thread(tid);
        let next = self.stacks.len() as u32;
        let walk = key.last().copied().unwrap_or(0) as u8;
        let stack = match self.stack_ids.get(key) {
            Some(&id) => id,
            None => {
                self.stacks.push(&key[..key.len().saturating_sub(1)]);
                self.stack_walks.push(walk);
                self.stack_ids.insert(key.to_vec(), next);
                next
            }
        };
        if let Some(count) = self.walk_ends.get_mut((walk & 0x0f) as usize) {
            *count += 1;
        }
        if let Some(count) = self.walk_methods.get_mut((walk >> 4) as usize) {
            *count += 1;
        }
        if state == SampleState::RUNNING {
            if self.last_running_stack.len() <= thread as usize {
                self.last_running_stack.resize(thread as usize + 1, None);
            }
            self.last_running_stack[thread as usize] = Some(stack);
        }
        self.samples.push(Sample { time: ticks(time_ns), thread, stack, weight, state });
    }
}
