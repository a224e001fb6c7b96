//! Writes a synthetic trace for reader and exporter throughput benchmarks:
//! `synthetic_trace OUT SAMPLES` — SAMPLES samples over 1 000 distinct 24-frame stacks in 4
//! threads, in generations of 1 million samples, with this executable as the only module (so
//! the frames symbolise). Prints the encode time.

use format::{encode_end, encode_generation, encode_header, encode_preamble, walk, End, EndReason, Generation, Header, Module, Sample, Thread};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("usage: synthetic_trace OUT SAMPLES");
    let total: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000_000);
    let executable = std::fs::read_link("/proc/self/exe").unwrap().to_string_lossy().into_owned();
    let text_start = main as *const () as u64 & !0xfff;
    let module = Module { path: executable.clone(), base: 0, start: 0, end: u64::MAX / 2, build_id: Vec::new() };
    let stacks: Vec<Vec<u64>> = (0..1000u64).map(|s| (0..24u64).map(|d| text_start + ((s * 7919 + d * 104_729) % 65_536)).collect()).collect();
    let header = Header {
        pid: 1,
        executable,
        clock: "CLOCK_MONOTONIC".into(),
        clock_hz: 1_000_000_000,
        hz: 999,
        timer: "perf".into(),
        mode: "cpu".into(),
        max_depth: 256,
        generation_ms: 1000,
        ..Default::default()
    };
    let started = Instant::now();
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, &header);
    let mut written = 0u64;
    let mut sequence = 0;
    while written < total {
        let count = (total - written).min(1_000_000);
        sequence += 1;
        let start_time = written * 1_000_000;
        let samples: Vec<Sample> = (0..count)
            .map(|i| Sample {
                time: start_time + i * 250_000,
                thread: (i % 4) as u32,
                stack: ((i * 2_654_435_761) % 1000) as u32,
                weight: 1,
                state: Default::default(),
            })
            .collect();
        let generation = Generation {
            sequence,
            start_time,
            end_time: start_time + count * 250_000,
            process_cpu_ns: (written + count) * 1_000_000,
            threads: (0..4).map(|t| Thread { tid: 100 + t, name: format!("worker-{t}"), ..Default::default() }).collect(),
            modules: vec![module.clone()],
            stacks: stacks.clone().into(),
            samples,
            counters: Vec::new(),
            stack_walks: vec![walk::METHOD_DWARF << 4 | walk::END_ROOT; stacks.len()],
            events: Vec::new(),
            python_code: Vec::new(),
        };
        encode_generation(&mut bytes, &generation);
        written += count;
    }
    encode_end(&mut bytes, &End { reason: EndReason::Exit, signal: 0, time: written * 250_000, seen_by_parent: None });
    let encode = started.elapsed();
    std::fs::write(&out, &bytes).unwrap();
    let read_started = Instant::now();
    let trace = format::read_trace(&bytes);
    let decoded: usize = trace.generations.iter().map(|g| g.samples.len()).sum();
    let read = read_started.elapsed();
    println!(
        "{total} samples, {} bytes ({:.2} bytes/sample); encode {:.0} M samples/s; decode {:.0} M samples/s ({decoded} decoded)",
        bytes.len(),
        bytes.len() as f64 / total as f64,
        total as f64 / encode.as_secs_f64() / 1e6,
        decoded as f64 / read.as_secs_f64() / 1e6
    );
}
