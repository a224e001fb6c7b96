//! OTLP profiles: an `ExportProfilesServiceRequest` (the body of `POST /v1development/profiles`
//! with `Content-Type: application/x-protobuf`), from the vendored opentelemetry-proto v1.11.0.
//!
//! One `ResourceProfiles` per traced process image (a trace file), its resource attributes
//! `service.name` (`OTEL_SERVICE_NAME`, else the executable's file name), `process.pid`,
//! `process.parent_pid`, `process.executable.name`, `process.executable.path`,
//! `process.command_args` and `host.name` (the host `sigtrace export` runs on: traces do not
//! record it); one `Profile` in it, `sample_type` `cpu/nanoseconds` (`wall/nanoseconds` for a
//! `wall` trace) with the same `period_type` and the period of one sample. A sample is one
//! (thread, stack, state) with every record of it as one observation: its time in `values`,
//! its Unix time in `timestamps_unix_nano`, so the record count (`samples/count`) is the number
//! of timestamps. Sample attributes: `thread.id`, `thread.name`, and in wall traces
//! `sigtrace.thread.state` and `sigtrace.blocked_call`. The shared dictionary holds every
//! mapping (`process.executable.build_id.gnu` as an attribute), location (module-relative
//! address; inline frames as several lines, innermost first; `profile.frame.type`: `cpython`
//! for a Python frame, for a JIT-compiled one the runtime's value (`v8js` for node, `jvm` for
//! java, `dotnet`, `beam`; the custom value `jit` when the executable names no runtime the
//! convention knows), `native` for the others),
//! function, string and stack once, entry 0 of each table the null value the schema requires.

pub mod proto;

use std::collections::HashMap;

use prost::Message;

use crate::format_numbers::hex;
use crate::profile::{Profile, ProfileSample};
use crate::symbolize::FrameName;
use format::{call_name, ThreadState};
use proto::opentelemetry::proto::collector::profiles::v1development::ExportProfilesServiceRequest;
use proto::opentelemetry::proto::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use proto::opentelemetry::proto::profiles::v1development as otlp;
use proto::opentelemetry::proto::resource::v1::Resource;

/// The frame type semantic convention's key, and its values for the frames sigtrace names: a
/// machine-code frame of a module, a Python frame (`profile_python`), a frame of code a runtime
/// compiled (named from its perf map; the convention has no value for JIT code as such).
const FRAME_TYPE_KEY: &str = "profile.frame.type";
const NATIVE_FRAME: &str = "native";
const PYTHON_FRAME: &str = "cpython";
const UNKNOWN_JIT_FRAME: &str = "jit";

/// The convention's value for the JIT frames of a profile whose processes ran `executables`:
/// the runtime's, when the executable's name says which; else the custom `jit`.
fn jit_frame_type<'a>(executables: impl Iterator<Item = &'a str>) -> &'static str {
    let mut found = None;
    for executable in executables {
        let name = executable.rsplit('/').next().unwrap_or(executable);
        let runtime = match name {
            "node" | "nodejs" | "deno" | "d8" => "v8js",
            "java" => "jvm",
            "dotnet" => "dotnet",
            "beam.smp" | "erl" => "beam",
            _ => continue,
        };
        match found {
            None => found = Some(runtime),
            Some(other) if other != runtime => return UNKNOWN_JIT_FRAME,
            Some(_) => {}
        }
    }
    found.unwrap_or(UNKNOWN_JIT_FRAME)
}

/// The strings of the dictionary, each once; index 0 is `""`.
struct Strings {
    table: Vec<String>,
    indices: HashMap<String, i32>,
}

impl Strings {
    fn index(&mut self, text: &str) -> i32 {
        if let Some(&index) = self.indices.get(text) {
            return index;
        }
        let index = self.table.len() as i32;
        self.table.push(text.to_string());
        self.indices.insert(text.to_string(), index);
        index
    }
}

/// The dictionary being built: strings, attributes and functions are de-duplicated by value.
struct Dictionary {
    strings: Strings,
    attributes: Vec<otlp::KeyValueAndUnit>,
    attribute_ids: HashMap<(i32, AttributeValue), i32>,
    functions: Vec<otlp::Function>,
    function_ids: HashMap<(i32, i32, i32), i32>,
}

/// An attribute's value, as a key for de-duplication.
#[derive(Clone, PartialEq, Eq, Hash)]
enum AttributeValue {
    Int(i64),
    Str(String),
}

impl Dictionary {
    fn new() -> Dictionary {
        Dictionary {
            strings: Strings { table: vec![String::new()], indices: HashMap::from([(String::new(), 0)]) },
            attributes: vec![otlp::KeyValueAndUnit::default()],
            attribute_ids: HashMap::new(),
            functions: vec![otlp::Function::default()],
            function_ids: HashMap::new(),
        }
    }

    fn attribute(&mut self, key: &str, value: AttributeValue) -> i32 {
        let key = self.strings.index(key);
        let attributes = &mut self.attributes;
        *self.attribute_ids.entry((key, value.clone())).or_insert_with(|| {
            let value = match value {
                AttributeValue::Int(n) => any_value::Value::IntValue(n),
                AttributeValue::Str(s) => any_value::Value::StringValue(s),
            };
            attributes.push(otlp::KeyValueAndUnit { key_strindex: key, value: Some(AnyValue { value: Some(value) }), unit_strindex: 0 });
            attributes.len() as i32 - 1
        })
    }

    fn function(&mut self, frame: &FrameName) -> i32 {
        let name = self.strings.index(&frame.function);
        let system_name = self.strings.index(&frame.system_name);
        let filename = self.strings.index(&frame.file);
        let functions = &mut self.functions;
        *self.function_ids.entry((name, system_name, filename)).or_insert_with(|| {
            functions.push(otlp::Function { name_strindex: name, system_name_strindex: system_name, filename_strindex: filename, start_line: 0 });
            functions.len() as i32 - 1
        })
    }
}

/// A count or a time as the schema's `int64`, saturated (weights of a hostile trace can be huge).
fn int64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A resource attribute.
fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

/// The host's name, as `uname -n` gives it (empty when it cannot be read).
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is passed; gethostname writes at
    // most that many bytes and nothing else.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return String::new();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// The file name of a path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The samples of one profile being built: one OTLP sample per (thread, stack, state).
#[derive(Default)]
struct ProfileSamples {
    samples: Vec<otlp::Sample>,
    ids: HashMap<(u32, u32, format::SampleState), usize>,
}

/// `profile` (built with its samples kept) as an OTLP export request.
pub fn to_message(profile: &Profile) -> ExportProfilesServiceRequest {
    let mut dictionary = Dictionary::new();

    // Mappings: entry 0 is the null mapping; `Profile::mappings[m]` is entry m + 1.
    let mut limits = vec![0u64; profile.mappings.len()];
    for location in &profile.locations {
        if let Some(limit) = location.mapping.and_then(|m| limits.get_mut(m as usize)) {
            *limit = (*limit).max(location.address.saturating_add(1));
        }
    }
    let mut mapping_table = vec![otlp::Mapping::default()];
    for (mapping, &limit) in profile.mappings.iter().zip(&limits) {
        let mut attribute_indices = Vec::new();
        if !mapping.build_id.is_empty() {
            attribute_indices.push(dictionary.attribute("process.executable.build_id.gnu", AttributeValue::Str(hex(&mapping.build_id))));
        }
        // Location addresses are module-relative (file virtual addresses).
        mapping_table.push(otlp::Mapping {
            memory_start: 0,
            memory_limit: limit,
            file_offset: 0,
            filename_strindex: dictionary.strings.index(&mapping.path),
            attribute_indices,
        });
    }

    // Locations: `Profile::locations[l]` is entry l + 1.
    let native = dictionary.attribute(FRAME_TYPE_KEY, AttributeValue::Str(NATIVE_FRAME.to_string()));
    let python = dictionary.attribute(FRAME_TYPE_KEY, AttributeValue::Str(PYTHON_FRAME.to_string()));
    let jit_type = jit_frame_type(profile.processes.iter().map(|process| process.executable.as_str()));
    let jit = dictionary.attribute(FRAME_TYPE_KEY, AttributeValue::Str(jit_type.to_string()));
    let mut location_table = vec![otlp::Location::default()];
    for location in &profile.locations {
        let module = location.frames.first().and_then(|&frame| profile.frames.get(frame as usize)).map(|frame| frame.module.as_str());
        let frame_type = match module {
            Some(crate::profile::PYTHON_MODULE) if location.mapping.is_none() => python,
            Some(crate::symbolize::JIT_MODULE) if location.mapping.is_none() => jit,
            _ => native,
        };
        let lines = location
            .frames
            .iter()
            .filter_map(|&frame| profile.frames.get(frame as usize))
            .map(|frame| otlp::Line { function_index: dictionary.function(frame), line: i64::from(frame.line), column: 0 })
            .collect();
        let mapping_index = location.mapping.filter(|&m| (m as usize) < profile.mappings.len()).map_or(0, |m| m as i32 + 1);
        location_table.push(otlp::Location { mapping_index, address: location.address, lines, attribute_indices: vec![frame_type] });
    }

    // Stacks: stack id s is entry s + 1, leaf first.
    let mut stack_table = vec![otlp::Stack::default()];
    for stack in 0..profile.location_stacks.len() {
        let location_indices = profile
            .location_stacks
            .get(stack)
            .map(|locations| locations.filter(|&l| (l as usize) < profile.locations.len()).map(|l| l as i32 + 1).collect())
            .unwrap_or_default();
        stack_table.push(otlp::Stack { location_indices });
    }

    // Samples, per process image: the image of a pid whose start is the latest at or before the sample.
    let mut images: HashMap<u32, Vec<usize>> = HashMap::new();
    for (index, process) in profile.processes.iter().enumerate() {
        images.entry(process.pid).or_default().push(index);
    }
    for list in images.values_mut() {
        list.sort_by_key(|&index| profile.processes[index].start_unix_ns);
    }
    let mut per_process: Vec<ProfileSamples> = profile.processes.iter().map(|_| ProfileSamples::default()).collect();
    let mut thread_attributes: HashMap<u32, [i32; 2]> = HashMap::new();
    for sample in &profile.samples {
        let Some(thread) = profile.threads.get(sample.thread as usize) else { continue };
        let Some(list) = images.get(&thread.pid) else { continue };
        let image = list.iter().rev().find(|&&index| profile.processes[index].start_unix_ns <= sample.unix_ns).or(list.first()).copied();
        let Some(image) = image else { continue };
        let attributes = *thread_attributes.entry(sample.thread).or_insert_with(|| {
            [
                dictionary.attribute("thread.id", AttributeValue::Int(i64::from(thread.tid))),
                dictionary.attribute("thread.name", AttributeValue::Str(thread.name.clone())),
            ]
        });
        let wall = profile.processes[image].is_wall();
        add_sample(&mut per_process[image], &mut dictionary, sample, attributes, wall);
    }

    let host = host_name();
    let service_override = std::env::var("OTEL_SERVICE_NAME").ok().filter(|name| !name.is_empty());
    let scope = InstrumentationScope { name: "sigtrace".into(), version: env!("CARGO_PKG_VERSION").into(), ..InstrumentationScope::default() };
    let resource_profiles = profile
        .processes
        .iter()
        .zip(per_process)
        .map(|(process, samples)| {
            let executable = file_name(&process.executable).to_string();
            let service = service_override.clone().unwrap_or_else(|| executable.clone());
            let mut attributes = vec![
                key_value("service.name", any_value::Value::StringValue(service)),
                key_value("process.pid", any_value::Value::IntValue(i64::from(process.pid))),
                key_value("process.parent_pid", any_value::Value::IntValue(i64::from(process.parent_pid))),
                key_value("process.executable.name", any_value::Value::StringValue(executable)),
                key_value("process.executable.path", any_value::Value::StringValue(process.executable.clone())),
            ];
            if !process.args.is_empty() {
                let args = process.args.iter().map(|arg| AnyValue { value: Some(any_value::Value::StringValue(arg.clone())) }).collect();
                attributes.push(key_value("process.command_args", any_value::Value::ArrayValue(ArrayValue { values: args })));
            }
            if !host.is_empty() {
                attributes.push(key_value("host.name", any_value::Value::StringValue(host.clone())));
            }
            let time = if process.is_wall() { "wall" } else { "cpu" };
            let value_type = |dictionary: &mut Dictionary| otlp::ValueType {
                type_strindex: dictionary.strings.index(time),
                unit_strindex: dictionary.strings.index("nanoseconds"),
            };
            let profile = otlp::Profile {
                sample_type: Some(value_type(&mut dictionary)),
                samples: samples.samples,
                time_unix_nano: process.start_unix_ns,
                duration_nano: process.end_unix_ns.saturating_sub(process.start_unix_ns),
                period_type: Some(value_type(&mut dictionary)),
                period: int64(process.period_ns),
                ..otlp::Profile::default()
            };
            otlp::ResourceProfiles {
                resource: Some(Resource { attributes, ..Resource::default() }),
                scope_profiles: vec![otlp::ScopeProfiles { scope: Some(scope.clone()), profiles: vec![profile], schema_url: String::new() }],
                schema_url: String::new(),
            }
        })
        .collect();

    ExportProfilesServiceRequest {
        resource_profiles,
        dictionary: Some(otlp::ProfilesDictionary {
            mapping_table,
            location_table,
            function_table: dictionary.functions,
            link_table: vec![otlp::Link::default()],
            string_table: dictionary.strings.table,
            attribute_table: dictionary.attributes,
            stack_table,
        }),
    }
}

/// Adds one sample record to its (thread, stack, state) sample of `samples`.
fn add_sample(samples: &mut ProfileSamples, dictionary: &mut Dictionary, sample: &ProfileSample, thread: [i32; 2], wall: bool) {
    let key = (sample.thread, sample.stack, sample.state);
    let index = match samples.ids.get(&key) {
        Some(&index) => index,
        None => {
            let mut attribute_indices = thread.to_vec();
            if wall {
                attribute_indices.push(dictionary.attribute("sigtrace.thread.state", AttributeValue::Str(sample.state.name().to_string())));
                if sample.state.state == ThreadState::Blocked {
                    attribute_indices.push(dictionary.attribute("sigtrace.blocked_call", AttributeValue::Str(call_name(sample.state.call))));
                }
            }
            samples.samples.push(otlp::Sample { stack_index: sample.stack as i32 + 1, attribute_indices, ..otlp::Sample::default() });
            samples.ids.insert(key, samples.samples.len() - 1);
            samples.samples.len() - 1
        }
    };
    let target = &mut samples.samples[index];
    target.values.push(int64(sample.time_ns));
    target.timestamps_unix_nano.push(sample.unix_ns);
}

/// `profile` as the encoded request.
pub fn render(profile: &Profile) -> Vec<u8> {
    to_message(profile).encode_to_vec()
}

/// Writes `profile` as the encoded request to `out`, freeing the profile (its samples) before encoding.
pub fn write(profile: Profile, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let message = to_message(&profile);
    drop(profile);
    out.write_all(&message.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jit_frames_take_the_runtime_the_executables_name() {
        assert_eq!(jit_frame_type(["/usr/bin/node"].into_iter()), "v8js");
        assert_eq!(jit_frame_type(["/usr/lib/jvm/bin/java", "/bin/sh"].into_iter()), "jvm");
        assert_eq!(jit_frame_type(["/usr/bin/luajit"].into_iter()), "jit");
        assert_eq!(jit_frame_type(["node", "java"].into_iter()), "jit");
        assert_eq!(jit_frame_type(std::iter::empty()), "jit");
    }
}
