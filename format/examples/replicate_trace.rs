//! Makes a large trace from a small one, for benchmarks of the readers and exporters:
//! `replicate_trace IN OUT SAMPLES` writes IN's header, then IN's generations over and over,
//! each copy later in time than the last, until OUT holds at least SAMPLES sample records.
//! The copies keep every stack, thread and module of the original.

use format::{encode_end, encode_generation, encode_header, encode_preamble};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output, samples] = args.as_slice() else {
        eprintln!("usage: replicate_trace IN OUT SAMPLES");
        std::process::exit(2);
    };
    let wanted: u64 = samples.parse().expect("SAMPLES is a number");
    let trace = format::read_trace(&std::fs::read(input).expect("IN is readable"));
    let header = trace.header.expect("IN has a header");
    let per_copy: u64 = trace.generations.iter().map(|g| g.samples.len() as u64).sum();
    assert!(per_copy > 0, "IN has no samples");
    let span = trace.generations.iter().map(|g| g.end_time).max().unwrap_or(0) - trace.generations.iter().map(|g| g.start_time).min().unwrap_or(0) + 1;
    let cpu_span = trace.generations.last().map_or(0, |g| g.process_cpu_ns);

    let mut out = std::io::BufWriter::new(std::fs::File::create(output).expect("OUT can be created"));
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, &header);
    let mut written = 0u64;
    let mut sequence = 0u64;
    let mut copy = 0u64;
    while written < wanted {
        for generation in &trace.generations {
            let mut generation = generation.clone();
            let shift = copy * span;
            sequence += 1;
            generation.sequence = sequence;
            generation.start_time += shift;
            generation.end_time += shift;
            generation.process_cpu_ns += copy * cpu_span;
            for thread in &mut generation.threads {
                thread.cpu_ns += copy * cpu_span;
            }
            for sample in &mut generation.samples {
                sample.time += shift;
            }
            for event in &mut generation.events {
                event.time += shift;
            }
            written += generation.samples.len() as u64;
            encode_generation(&mut bytes, &generation);
            std::io::Write::write_all(&mut out, &bytes).expect("OUT is writable");
            bytes.clear();
        }
        copy += 1;
    }
    if let Some(end) = &trace.end {
        encode_end(&mut bytes, end);
    }
    std::io::Write::write_all(&mut out, &bytes).expect("OUT is writable");
    std::io::Write::flush(&mut out).expect("OUT is writable");
    eprintln!("{written} samples in {sequence} generations ({copy} copies of {input})");
}
