//! Where a trace's bytes go: re-encodes each generation without one part at a time and
//! prints the bytes per sample of the stack tree, the sample records and the rest.
/// Bytes of `generation` encoded as one chunk.
fn size(generation: &format::Generation) -> usize {
    let mut out = Vec::new();
    format::encode_generation(&mut out, generation);
    out.len()
}

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        let trace = format::read_trace(&bytes);
        let (mut total, mut stacks, mut samples, mut count, mut distinct) = (0usize, 0usize, 0usize, 0usize, 0usize);
        for generation in &trace.generations {
            let whole = size(generation);
            let mut without_samples = generation.clone();
            without_samples.samples.clear();
            let mut without_stacks = without_samples.clone();
            without_stacks.stacks = format::StackTable::new();
            without_stacks.stack_walks.clear();
            total += whole;
            samples += whole - size(&without_samples);
            stacks += size(&without_samples) - size(&without_stacks);
            count += generation.samples.len();
            distinct += generation.stacks.len();
        }
        let per = |n: usize| n as f64 / count.max(1) as f64;
        println!(
            "{path}: {} bytes, {count} samples, {distinct} stacks over {} generations; per sample: file {:.2}, generations {:.2} (stack tree {:.2}, sample records {:.2}, rest {:.2})",
            bytes.len(),
            trace.generations.len(),
            per(bytes.len()),
            per(total),
            per(stacks),
            per(samples),
            per(total - stacks - samples)
        );
    }
}
