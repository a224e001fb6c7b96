//! pprof: a gzipped `perftools.profiles.Profile` (google/pprof's `profile.proto`), read by
//! `go tool pprof`, Pyroscope/Grafana and Parca.
//!
//! One pprof sample per [`StackTotal`] (the samples of one thread, stack and state, summed),
//! valued `samples/count` and `cpu/nanoseconds` (the default), labelled `pid`, `tid` (numbers)
//! and `thread` (its name), its locations leaf first. A profile with `wall` traces is valued
//! `samples/count` and `wall/nanoseconds` instead (its period type `wall/nanoseconds`: the
//! CPU time of running samples, the wall time of the others), and its samples are also
//! labelled `state` (`running`, `runnable`, `blocked`) and, when blocked, `call` (the call's
//! name, `format::call_name`); their stacks end in the frame naming the state
//! (`profile::state_frame`). Every id the message holds is 1-based and
//! refers to an entry that exists: location `l + 1` is `Profile::locations[l]`, functions are
//! numbered in order of first use, mappings are `Profile::mappings` with the executables of the
//! processes moved first (pprof takes mapping 1 for the main binary). A location's lines
//! are its frames innermost first (inlined functions, then the function holding the address),
//! as pprof wants them; a mapping claims functions, file names, line numbers or inline frames
//! only when one of its locations has them.

pub mod proto;

use std::collections::HashMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use crate::format_numbers::hex;
use crate::profile::{Location, Profile};
use crate::symbolize::FrameName;
use format::{call_name, ThreadState};

/// The strings of a profile, each stored once; index 0 is always `""`, as pprof requires.
struct StringTable {
    strings: Vec<String>,
    indices: HashMap<String, i64>,
}

impl StringTable {
    fn new() -> StringTable {
        StringTable { strings: vec![String::new()], indices: HashMap::from([(String::new(), 0)]) }
    }

    /// The index of `text`, added when new.
    fn index(&mut self, text: &str) -> i64 {
        if let Some(&index) = self.indices.get(text) {
            return index;
        }
        let index = self.strings.len() as i64;
        self.strings.push(text.to_string());
        self.indices.insert(text.to_string(), index);
        index
    }
}

/// pprof functions, one per distinct (name, system name, source file), ids from 1.
struct FunctionTable {
    functions: Vec<proto::Function>,
    ids: HashMap<(i64, i64, i64), u64>,
}

impl FunctionTable {
    /// The id of the function `frame` belongs to, added when new.
    fn id(&mut self, frame: &FrameName, strings: &mut StringTable) -> u64 {
        let name = strings.index(&frame.function);
        // The mangled name when the symbol table or DWARF gave one, else the name itself.
        let system_name = if frame.system_name.is_empty() { name } else { strings.index(&frame.system_name) };
        let filename = strings.index(&frame.file);
        *self.ids.entry((name, system_name, filename)).or_insert_with(|| {
            let id = self.functions.len() as u64 + 1;
            self.functions.push(proto::Function { id, name, system_name, filename, start_line: 0 });
            id
        })
    }
}

/// A count or a duration as pprof's `int64`, saturated (weights of a hostile trace can be huge).
fn int64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What the locations of one mapping say about the symbols of its module.
#[derive(Default, Clone, Copy)]
struct Resolution {
    functions: bool,
    filenames: bool,
    line_numbers: bool,
    inline_frames: bool,
    /// One past the highest address of its locations (0 when it has none).
    limit: u64,
}

impl Resolution {
    fn add(&mut self, location: &Location, frames: &[FrameName]) {
        let frames_of = || location.frames.iter().filter_map(|&frame| frames.get(frame as usize));
        self.functions |= frames_of().any(|frame| !frame.system_name.is_empty());
        self.filenames |= frames_of().any(|frame| !frame.file.is_empty());
        self.line_numbers |= frames_of().any(|frame| frame.line != 0);
        self.inline_frames |= location.frames.len() > 1;
        self.limit = self.limit.max(location.address.saturating_add(1));
    }
}

/// `profile` as a pprof message (not yet encoded).
pub fn to_message(profile: &Profile) -> proto::Profile {
    let mut strings = StringTable::new();
    let mut functions = FunctionTable { functions: Vec::new(), ids: HashMap::new() };

    let order = mapping_order(profile);
    let mut mapping_ids = vec![0u64; profile.mappings.len()];
    for (position, &mapping) in order.iter().enumerate() {
        mapping_ids[mapping] = position as u64 + 1;
    }
    let mut resolutions = vec![Resolution::default(); profile.mappings.len()];
    let location = profile
        .locations
        .iter()
        .enumerate()
        .map(|(index, location)| {
            let mapping = location.mapping.map(|m| m as usize).filter(|&m| m < profile.mappings.len());
            let mapping_id = match mapping {
                Some(m) => {
                    resolutions[m].add(location, &profile.frames);
                    mapping_ids[m]
                }
                None => 0,
            };
            let line = location
                .frames
                .iter()
                .filter_map(|&frame| profile.frames.get(frame as usize))
                .map(|frame| proto::Line { function_id: functions.id(frame, &mut strings), line: i64::from(frame.line), column: 0 })
                .collect();
            proto::Location { id: index as u64 + 1, mapping_id, address: location.address, line, is_folded: false }
        })
        .collect();

    let mapping = order
        .iter()
        .map(|&index| (&profile.mappings[index], resolutions[index], mapping_ids[index]))
        .map(|(mapping, resolution, id)| proto::Mapping {
            id,
            // Location addresses are module-relative (file virtual addresses).
            memory_start: 0,
            memory_limit: resolution.limit,
            file_offset: 0,
            filename: strings.index(&mapping.path),
            build_id: strings.index(&hex(&mapping.build_id)),
            has_functions: resolution.functions,
            has_filenames: resolution.filenames,
            has_line_numbers: resolution.line_numbers,
            has_inline_frames: resolution.inline_frames,
        })
        .collect();

    let wall = profile.has_wall();
    let [pid_key, tid_key, thread_key] = ["pid", "tid", "thread"].map(|key| strings.index(key));
    let [state_key, call_key] = if wall { ["state", "call"].map(|key| strings.index(key)) } else { [0, 0] };
    let sample = profile
        .totals
        .iter()
        .map(|total| {
            let location_id = profile
                .location_stacks
                .get(total.stack as usize)
                .map(|stack| stack.filter(|&location| (location as usize) < profile.locations.len()).map(|location| location + 1).collect())
                .unwrap_or_default();
            let mut label = match profile.threads.get(total.thread as usize) {
                Some(thread) => vec![
                    proto::Label { key: pid_key, num: i64::from(thread.pid), ..proto::Label::default() },
                    proto::Label { key: tid_key, num: i64::from(thread.tid), ..proto::Label::default() },
                    proto::Label { key: thread_key, str: strings.index(thread_label(&thread.name)), ..proto::Label::default() },
                ],
                None => Vec::new(),
            };
            if wall {
                label.push(proto::Label { key: state_key, str: strings.index(total.state.name()), ..proto::Label::default() });
                if total.state.state == ThreadState::Blocked {
                    label.push(proto::Label { key: call_key, str: strings.index(&call_name(total.state.call)), ..proto::Label::default() });
                }
            }
            proto::Sample { location_id, value: vec![int64(total.samples), int64(total.time_ns)], label }
        })
        .collect();

    let value_type = |strings: &mut StringTable, kind: &str, unit: &str| proto::ValueType { r#type: strings.index(kind), unit: strings.index(unit) };
    let time = if wall { "wall" } else { "cpu" };
    let sample_type = vec![value_type(&mut strings, "samples", "count"), value_type(&mut strings, time, "nanoseconds")];
    let period_type = Some(value_type(&mut strings, time, "nanoseconds"));
    let default_sample_type = strings.index(time);
    let start = profile.processes.iter().map(|process| process.start_unix_ns).min().unwrap_or(0);
    let end = profile.processes.iter().map(|process| process.end_unix_ns).max().unwrap_or(0);
    let comment = profile.processes.iter().map(|process| strings.index(&format!("pid {}: {}", process.pid, process.command_line()))).collect();

    proto::Profile {
        sample_type,
        sample,
        mapping,
        location,
        function: functions.functions,
        string_table: strings.strings,
        drop_frames: 0,
        keep_frames: 0,
        time_nanos: int64(start),
        duration_nanos: int64(end.saturating_sub(start)),
        period_type,
        period: profile.processes.first().map_or(0, |process| int64(process.period_ns)),
        comment,
        default_sample_type,
        doc_url: 0,
    }
}

/// Indices into `profile.mappings`, the processes' executables first (in the order of the
/// processes), then the others in their order.
fn mapping_order(profile: &Profile) -> Vec<usize> {
    let is_executable = |mapping: &crate::profile::Mapping| profile.processes.iter().position(|process| process.executable == mapping.path);
    let mut order: Vec<usize> = (0..profile.mappings.len()).collect();
    // Stable: executables by their process's position, every other mapping after them, in order.
    order.sort_by_key(|&index| is_executable(&profile.mappings[index]).unwrap_or(usize::MAX));
    order
}

/// The `thread` label of a thread named `name` (pprof drops empty string labels).
fn thread_label(name: &str) -> &str {
    if name.is_empty() {
        "[unnamed]"
    } else {
        name
    }
}

/// `profile` as a gzipped pprof file.
pub fn render(profile: &Profile) -> Vec<u8> {
    let encoded = to_message(profile).encode_to_vec();
    let mut gzip = GzEncoder::new(Vec::with_capacity(encoded.len() / 4), Compression::default());
    gzip.write_all(&encoded).expect("writing into a Vec cannot fail");
    gzip.finish().expect("writing into a Vec cannot fail")
}
