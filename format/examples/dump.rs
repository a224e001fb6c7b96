//! Prints the raw contents of a trace file (a debugging aid; `sigtrace info` is the tool).
fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        let trace = format::read_trace(&bytes);
        println!("{path}: {:?}", trace.header);
        println!("ignored {} bytes ({:?})", trace.ignored_bytes, trace.stopped_because);
        for generation in &trace.generations {
            let weight: u64 = generation.samples.iter().map(|s| u64::from(s.weight)).sum();
            println!(
                "gen {} {}..{} cpu {} ns: {} samples (weight {weight}), {} stacks, {} threads {:?}, {} modules, counters {:?}",
                generation.sequence,
                generation.start_time,
                generation.end_time,
                generation.process_cpu_ns,
                generation.samples.len(),
                generation.stacks.len(),
                generation.threads.len(),
                generation.threads,
                generation.modules.len(),
                generation.counters
            );
        }
    }
}
