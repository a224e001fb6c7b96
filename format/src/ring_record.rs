//! The records of the sampling rings, and the spill chunk (`R`) that carries them raw.
//!
//! One definition of a ring record, used by the producer (the signal handler, `sigprof::ring`),
//! the consumer (the drain, through `sigprof::ring`) and the reader of spill chunks: a record is
//! 64-bit words `[header, time_ns, weight, payload…]` with
//! `header = total_words | walk << 32 | kind << 40`.
//!
//! A spill chunk is written by the sampling handler itself, in a single-threaded program with
//! no drain thread, when its ring passes half full (docs/FORMAT.md, "Spill"): its payload is
//!
//! ```text
//! spill := sequence (u64 LE) tid (u32 LE) reserved (u32 LE, 0) word (u64 LE)*
//! ```
//!
//! the words being the ring's records as they were. Only fixed-width fields: the handler writes
//! it without encoding anything. Decoding it never panics and never allocates beyond the
//! payload's size.

use crate::python::{PythonCode, PythonFrame};
use crate::spill_python::{RawPythonFrame, SpillPythonNames, SPILLED_UNNAMED, SPILL_TABLE_FULL};
use crate::stack_table::StackTable;
use crate::types::{Generation, Module, Sample, Thread};
use crate::varint::DecodeError;
use crate::walk;

/// The tag of a spill chunk: samples of one thread's ring, raw.
pub const TAG_SPILL: u8 = b'R';
/// Words in a ring record before its payload (frames).
pub const RECORD_HEADER_WORDS: usize = 3;
/// Bytes of a spill payload before its words.
pub const SPILL_PREAMBLE_BYTES: usize = 16;
/// The record kind of a sample (other kinds are annotation events).
pub const KIND_SAMPLE: u8 = 0;
/// The word a ring record puts before its raw Python frames (`pyframes::MARKER`): they can be
/// read only inside the process, so a spill's reader names them from the `Q` chunks
/// (`spill_python`), or keeps the native frames before it.
pub const PYTHON_MARKER: u64 = 0xfeed_0000_0000_0000;

/// A record's header word, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Words of the whole record, header included.
    pub total_words: u64,
    /// How its stack was walked: `method << 4 | end` (see [`walk`]).
    pub walk: u8,
    /// [`KIND_SAMPLE`], or an annotation event's kind code.
    pub kind: u8,
}

impl RecordHeader {
    /// The header word of a record. Async-signal-safe.
    #[inline]
    pub const fn word(self) -> u64 {
        self.total_words | (self.walk as u64) << 32 | (self.kind as u64) << 40
    }

    /// Splits a header word. Async-signal-safe.
    #[inline]
    pub const fn from_word(word: u64) -> RecordHeader {
        RecordHeader { total_words: word & 0xffff_ffff, walk: (word >> 32) as u8, kind: (word >> 40) as u8 }
    }
}

/// The fixed start of a spill payload. Async-signal-safe.
pub fn spill_preamble(sequence: u64, tid: u32) -> [u8; SPILL_PREAMBLE_BYTES] {
    let mut bytes = [0u8; SPILL_PREAMBLE_BYTES];
    bytes[..8].copy_from_slice(&sequence.to_le_bytes());
    bytes[8..12].copy_from_slice(&tid.to_le_bytes());
    bytes
}

/// One sample of a spill, as the ring held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpilledSample {
    /// `CLOCK_MONOTONIC`, ns.
    pub time_ns: u64,
    /// Sampling periods it stands for.
    pub weight: u32,
    /// Its walk code.
    pub walk: u8,
    /// Its native frames, leaf first.
    pub frames: Vec<u64>,
    /// Its raw Python frames, innermost first.
    pub python: Vec<RawPythonFrame>,
}

/// A decoded spill chunk: the samples one thread's ring held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spill {
    /// The generation the samples belong to.
    pub sequence: u64,
    /// The thread whose ring it was.
    pub tid: u32,
    /// Its samples, in time order.
    pub samples: Vec<SpilledSample>,
}

/// Decodes a spill payload. A record that runs past the payload, is shorter than its header
/// or is not a sample is an error.
pub fn decode_spill(payload: &[u8]) -> Result<Spill, DecodeError> {
    let error = |at: usize, why: &'static str| DecodeError { offset: at, what: why };
    if payload.len() < SPILL_PREAMBLE_BYTES || !(payload.len() - SPILL_PREAMBLE_BYTES).is_multiple_of(8) {
        return Err(error(0, "a spill is not its preamble and whole words"));
    }
    let sequence = u64::from_le_bytes(payload[..8].try_into().unwrap_or_default());
    let tid = u32::from_le_bytes(payload[8..12].try_into().unwrap_or_default());
    let words: Vec<u64> = payload[SPILL_PREAMBLE_BYTES..].chunks_exact(8).map(|word| u64::from_le_bytes(word.try_into().unwrap_or_default())).collect();
    let mut samples = Vec::new();
    let mut at = 0usize;
    while at < words.len() {
        let offset = SPILL_PREAMBLE_BYTES + at * 8;
        let header = RecordHeader::from_word(words[at]);
        let total = header.total_words as usize;
        if total < RECORD_HEADER_WORDS || total > words.len() - at {
            return Err(error(offset, "a spilled record's length is impossible"));
        }
        if header.kind != KIND_SAMPLE {
            return Err(error(offset, "a spilled record is not a sample"));
        }
        let payload = &words[at + RECORD_HEADER_WORDS..at + total];
        let native = payload.iter().position(|&word| word == PYTHON_MARKER).unwrap_or(payload.len());
        let python = payload.get(native + 1..).unwrap_or(&[]).chunks_exact(2).map(|pair| RawPythonFrame::from_words(pair[0], pair[1])).collect();
        samples.push(SpilledSample { time_ns: words[at + 1], weight: words[at + 2] as u32, walk: header.walk, frames: payload[..native].to_vec(), python });
        at += total;
    }
    Ok(Spill { sequence, tid, samples })
}

impl Spill {
    /// The spill as a generation of one thread, times in ticks of `clock_hz`, its addresses
    /// named by `modules`, its thread by `thread_name` and its Python frames by `python` (a
    /// sample with a frame it does not name keeps its native frames only). Its counters are
    /// its walk ends and methods, and the samples left unnamed; its span runs from its first
    /// sample to its last.
    pub fn into_generation(self, clock_hz: u64, modules: &[Module], thread_name: &str, python: &mut SpillPythonNames) -> Generation {
        let ns_per_tick = (1_000_000_000 / clock_hz.clamp(1, 1_000_000_000)).max(1);
        let mut generation = Generation {
            sequence: self.sequence,
            threads: vec![Thread { tid: self.tid, name: thread_name.to_string(), ..Thread::default() }],
            modules: modules.to_vec(),
            stacks: StackTable::new(),
            ..Generation::default()
        };
        let mut ends = [0u64; walk::END_COUNTERS.len()];
        let mut methods = [0u64; walk::METHOD_COUNTERS.len()];
        let mut stack_ids: std::collections::HashMap<(Vec<u64>, u8), u32> = std::collections::HashMap::new();
        let mut code_ids: std::collections::HashMap<&PythonCode, u32> = std::collections::HashMap::new();
        let mut unnamed = 0u64;
        for mut sample in self.samples {
            if !sample.python.is_empty() {
                let named: Option<Vec<u64>> = sample
                    .python
                    .iter()
                    .map(|&raw| {
                        let (code, line) = python.name(raw)?;
                        let next = code_ids.len() as u32;
                        let index = *code_ids.entry(code).or_insert(next);
                        Some(PythonFrame { code: index, line, entry: raw.entry }.word())
                    })
                    .collect();
                match named {
                    Some(words) => sample.frames.extend(words),
                    None => unnamed += 1,
                }
            }
            if let Some(count) = ends.get_mut(usize::from(sample.walk & 0x0f)) {
                *count += 1;
            }
            if let Some(count) = methods.get_mut(usize::from(sample.walk >> 4)) {
                *count += 1;
            }
            let time = sample.time_ns / ns_per_tick;
            let next = generation.stacks.len() as u32;
            let key = (sample.frames, sample.walk);
            let stack = match stack_ids.get(&key) {
                Some(&id) => id,
                None => {
                    generation.stacks.push(&key.0);
                    generation.stack_walks.push(key.1);
                    stack_ids.insert(key, next);
                    next
                }
            };
            generation.samples.push(Sample { time, thread: 0, stack, weight: sample.weight.max(1), ..Sample::default() });
        }
        generation.samples.sort_by_key(|sample| sample.time);
        generation.start_time = generation.samples.first().map_or(0, |sample| sample.time);
        generation.end_time = generation.samples.last().map_or(0, |sample| sample.time);
        let named = |names: &[&str], counts: &[u64]| {
            names.iter().zip(counts).filter(|(_, &count)| count > 0).map(|(name, &count)| (name.to_string(), count)).collect::<Vec<_>>()
        };
        generation.counters = named(&walk::END_COUNTERS, &ends);
        generation.counters.extend(named(&walk::METHOD_COUNTERS, &methods));
        let mut codes: Vec<(&PythonCode, u32)> = code_ids.into_iter().collect();
        codes.sort_by_key(|&(_, index)| index);
        generation.python_code = codes.into_iter().map(|(code, _)| code.clone()).collect();
        generation.counters.extend(named(&[SPILLED_UNNAMED, SPILL_TABLE_FULL], &[unnamed, python.take_lost()]));
        generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: u64, weight: u64, walk: u8, frames: &[u64]) -> Vec<u64> {
        let total = (RECORD_HEADER_WORDS + frames.len()) as u64;
        let mut words = vec![RecordHeader { total_words: total, walk, kind: KIND_SAMPLE }.word(), time, weight];
        words.extend_from_slice(frames);
        words
    }

    fn payload(words: &[u64]) -> Vec<u8> {
        let mut bytes = spill_preamble(7, 4242).to_vec();
        bytes.extend(words.iter().flat_map(|word| word.to_le_bytes()));
        bytes
    }

    #[test]
    fn a_spill_becomes_a_generation_of_its_thread() {
        let mut words = record(5_000, 1, 0x10, &[0x1000, 0x2000]);
        words.extend(record(7_000, 2, 0x10, &[0x1000, 0x2000]));
        words.extend(record(6_000, 1, 0x03, &[0x3000, PYTHON_MARKER, 99, 98]));
        let spill = decode_spill(&payload(&words)).unwrap();
        assert_eq!((spill.sequence, spill.tid, spill.samples.len()), (7, 4242, 3));
        assert_eq!(spill.samples[2].frames, vec![0x3000], "raw Python frames are apart");
        assert_eq!(spill.samples[2].python, vec![RawPythonFrame { code: 99, check: 0, instr: 98, entry: false }]);
        let generation = spill.into_generation(1_000_000, &[], "main", &mut SpillPythonNames::default());
        assert_eq!(generation.threads[0].tid, 4242);
        assert_eq!(generation.stacks.len(), 2);
        assert_eq!(generation.stack_walks, vec![0x10, 0x03]);
        assert_eq!(generation.samples.iter().map(|s| (s.time, s.weight)).collect::<Vec<_>>(), vec![(5, 1), (6, 1), (7, 2)]);
        assert_eq!((generation.start_time, generation.end_time), (5, 7));
        assert!(generation.counters.contains(&("unwind.method.dwarf".to_string(), 2)));
        assert!(generation.counters.contains(&(SPILLED_UNNAMED.to_string(), 1)), "Python frames no Q named: native frames only");
        assert!(generation.python_code.is_empty());
        assert_eq!(generation.stacks.get(generation.samples[0].stack as usize).unwrap().collect::<Vec<_>>(), vec![0x1000, 0x2000]);
    }

    #[test]
    fn spilled_python_frames_are_named_by_the_q_chunks() {
        use crate::spill_python::{SpillPython, SpilledCode};
        let entry = 1u64 << 63;
        let mut words = record(5_000, 1, 0x10, &[0x1000, 0x2000, PYTHON_MARKER, 0x7000, 3 << 32 | 4, 0x8000 | entry, 5 << 32 | 6]);
        words.extend(record(6_000, 1, 0x10, &[0x1000, PYTHON_MARKER, 0x9000, 1 << 32 | 1]));
        let code = |name: &str| PythonCode { name: name.into(), file: "x.py".into(), first_line: 1 };
        let mut names = SpillPythonNames::default();
        names.add(SpillPython {
            lost: 2,
            codes: vec![
                SpilledCode { address: 0x7000, check: 3, code: code("inner"), lines: vec![(4, 40)] },
                SpilledCode { address: 0x8000, check: 5, code: code("outer"), lines: vec![(6, 60)] },
            ],
        });
        let generation = decode_spill(&payload(&words)).unwrap().into_generation(1_000_000, &[], "main", &mut names);
        assert_eq!(generation.python_code, vec![code("inner"), code("outer")]);
        let first: Vec<u64> = generation.stacks.get(generation.samples[0].stack as usize).unwrap().collect();
        assert_eq!(first[..2], [0x1000, 0x2000]);
        assert_eq!(
            first[2..].iter().map(|&w| PythonFrame::from_word(w).unwrap()).collect::<Vec<_>>(),
            vec![PythonFrame { code: 0, line: 40, entry: false }, PythonFrame { code: 1, line: 60, entry: true }]
        );
        let second: Vec<u64> = generation.stacks.get(generation.samples[1].stack as usize).unwrap().collect();
        assert_eq!(second, vec![0x1000], "0x9000 was never named");
        assert!(generation.counters.contains(&(SPILLED_UNNAMED.to_string(), 1)));
        assert!(generation.counters.contains(&(SPILL_TABLE_FULL.to_string(), 2)));
    }

    #[test]
    fn damaged_spills_are_errors() {
        assert!(decode_spill(&[0; 15]).is_err());
        assert!(decode_spill(&payload(&[1])[..17]).is_err());
        assert!(decode_spill(&payload(&[RecordHeader { total_words: 2, walk: 0, kind: 0 }.word(), 0])).is_err());
        assert!(decode_spill(&payload(&[RecordHeader { total_words: 9, walk: 0, kind: 0 }.word(), 0, 1])).is_err());
        assert!(decode_spill(&payload(&[RecordHeader { total_words: 3, walk: 0, kind: 2 }.word(), 0, 1])).is_err());
        assert_eq!(decode_spill(&payload(&[])).unwrap().samples, vec![]);
    }
}
