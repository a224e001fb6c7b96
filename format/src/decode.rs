//! The decoder: a chunk's payload into a header, a generation or an end record, every
//! reference and count checked (docs/FORMAT.md, "Checks").

use crate::stack_tree::decode_stack_tree;
use crate::thread_state::SampleState;
use crate::types::{End, EndReason, Event, EventKind, Generation, Header, Module, Sample, Thread};
use crate::varint::{Cursor, DecodeError};

/// Decodes a header chunk's payload.
pub fn decode_header(payload: &[u8]) -> Result<Header, DecodeError> {
    let mut c = Cursor::new(payload);
    let pid = c.u32_varint()?;
    let parent_pid = c.u32_varint()?;
    let executable = c.string()?;
    let arg_count = c.count(1)?;
    let mut args = Vec::with_capacity(arg_count);
    for _ in 0..arg_count {
        args.push(c.string()?);
    }
    Ok(Header {
        pid,
        parent_pid,
        executable,
        args,
        clock: c.string()?,
        clock_hz: c.uvarint()?,
        start_clock_ns: c.uvarint()?,
        start_unix_ns: c.uvarint()?,
        hz: c.u32_varint()?,
        timer: c.string()?,
        mode: c.string()?,
        max_depth: c.u32_varint()?,
        generation_ms: c.u32_varint()?,
    })
}

/// Decodes a generation chunk's payload; every reference and count is checked (docs/FORMAT.md, "Checks").
pub fn decode_generation(payload: &[u8]) -> Result<Generation, DecodeError> {
    let mut c = Cursor::new(payload);
    let sequence = c.uvarint()?;
    let start_time = c.uvarint()?;
    let end_time = start_time.wrapping_add(c.svarint()? as u64);
    let process_cpu_ns = c.uvarint()?;
    let threads = decode_threads(&mut c)?;
    let modules = decode_modules(&mut c)?;
    let stacks = decode_stack_tree(&mut c, payload.len())?;
    let samples = decode_samples(&mut c, payload.len(), start_time, threads.len(), stacks.len())?;
    let counter_count = c.count(2)?;
    let mut counters = Vec::with_capacity(counter_count);
    for _ in 0..counter_count {
        counters.push((c.string()?, c.uvarint()?));
    }
    // The optional tail, in the order fields were appended to the format.
    let stack_walks = if c.remaining() > 0 { c.bytes()?.to_vec() } else { Vec::new() };
    if !stack_walks.is_empty() && stack_walks.len() != stacks.len() {
        return Err(DecodeError { offset: payload.len() - c.remaining(), what: "stack walk codes do not match the stacks" });
    }
    let events = if c.remaining() > 0 { decode_events(&mut c, payload.len(), start_time, threads.len())? } else { Vec::new() };
    let mut samples = samples;
    if c.remaining() > 0 {
        decode_sample_states(&mut c, payload.len(), &mut samples)?;
    }
    Ok(Generation { sequence, start_time, end_time, process_cpu_ns, threads, modules, stacks, samples, counters, stack_walks, events, python_code: Vec::new() })
}

/// The thread table of a generation.
fn decode_threads(c: &mut Cursor<'_>) -> Result<Vec<Thread>, DecodeError> {
    let thread_count = c.count(5)?;
    let mut threads = Vec::with_capacity(thread_count);
    for _ in 0..thread_count {
        threads.push(Thread { tid: c.u32_varint()?, name: c.string()?, cpu_ns: c.uvarint()?, dropped: c.uvarint()?, exited: c.uvarint()? != 0 });
    }
    Ok(threads)
}

/// The module table of a generation.
fn decode_modules(c: &mut Cursor<'_>) -> Result<Vec<Module>, DecodeError> {
    let module_count = c.count(5)?;
    let mut modules = Vec::with_capacity(module_count);
    for _ in 0..module_count {
        let path = c.string()?;
        let base = c.uvarint()?;
        let start = c.uvarint()?;
        let end = start.wrapping_add(c.uvarint()?);
        let build_id = c.bytes()?.to_vec();
        modules.push(Module { path, base, start, end, build_id });
    }
    Ok(modules)
}

/// The sample records of a generation (times delta-coded from `start_time`), each checked to
/// refer to one of `threads` threads and `stacks` stacks. `payload_len` places errors.
fn decode_samples(c: &mut Cursor<'_>, payload_len: usize, start_time: u64, threads: usize, stacks: usize) -> Result<Vec<Sample>, DecodeError> {
    let sample_count = c.count(3)?; // time delta, thread, stack: a byte each at least
    let mut samples = Vec::with_capacity(sample_count);
    let mut previous_time = start_time;
    for _ in 0..sample_count {
        previous_time = previous_time.wrapping_add(c.svarint()? as u64);
        let thread_and_flag = c.uvarint()?;
        let stack = c.u32_varint()?;
        let weight = if thread_and_flag & 1 == 1 { c.u32_varint()? } else { 1 };
        let sample =
            Sample { time: previous_time, thread: u32::try_from(thread_and_flag >> 1).unwrap_or(u32::MAX), stack, weight, state: SampleState::RUNNING };
        if sample.thread as usize >= threads || sample.stack as usize >= stacks {
            return Err(DecodeError { offset: payload_len - c.remaining(), what: "sample refers to a missing thread or stack" });
        }
        samples.push(sample);
    }
    Ok(samples)
}

/// The sample states of a generation, one per sample, into `samples`.
fn decode_sample_states(c: &mut Cursor<'_>, payload_len: usize, samples: &mut [Sample]) -> Result<(), DecodeError> {
    let count = c.count(1)?;
    if count != samples.len() {
        return Err(DecodeError { offset: payload_len - c.remaining(), what: "sample states do not match the samples" });
    }
    for sample in samples {
        sample.state = SampleState::from_code(c.uvarint()?).ok_or(DecodeError { offset: payload_len - c.remaining(), what: "unknown thread state" })?;
    }
    Ok(())
}

/// The events of a generation (times delta-coded from `start_time`), each checked to refer to
/// one of `threads` threads. `payload_len` places errors.
fn decode_events(c: &mut Cursor<'_>, payload_len: usize, start_time: u64, threads: usize) -> Result<Vec<Event>, DecodeError> {
    let event_count = c.count(5)?;
    let mut events = Vec::with_capacity(event_count);
    let mut previous_time = start_time;
    for _ in 0..event_count {
        previous_time = previous_time.wrapping_add(c.svarint()? as u64);
        let thread = c.u32_varint()?;
        let kind = u8::try_from(c.uvarint()?).ok().and_then(EventKind::from_code);
        let (category, text) = (c.string()?, c.string()?);
        let kind = kind.ok_or(DecodeError { offset: payload_len - c.remaining(), what: "unknown event kind" })?;
        if thread as usize >= threads {
            return Err(DecodeError { offset: payload_len - c.remaining(), what: "event refers to a missing thread" });
        }
        events.push(Event { time: previous_time, thread, kind, category, text });
    }
    Ok(events)
}

/// Decodes an end record's payload.
pub fn decode_end(payload: &[u8]) -> Result<End, DecodeError> {
    let mut c = Cursor::new(payload);
    let reason = EndReason::from_code(c.uvarint()?).ok_or(DecodeError { offset: 0, what: "unknown end reason" })?;
    let (signal, time) = (c.u32_varint()?, c.uvarint()?);
    // Appended fields: who wrote it (1: the parent) and the exit code it saw.
    let seen_by_parent = if c.remaining() > 0 && c.uvarint()? == 1 { Some(u8::try_from(c.uvarint()?).unwrap_or(u8::MAX)) } else { None };
    Ok(End { reason, signal, time, seen_by_parent })
}
