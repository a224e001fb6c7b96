//! `read_trace` on any bytes, as they are and with valid framing: it must not panic, and what
//! it returns must be consistent and no larger than the input allows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    let trace = format::read_trace(bytes);
    assert!(trace.ignored_bytes as usize <= bytes.len());
    for generation in &trace.generations {
        let stacks = &generation.stacks;
        // Bounded by the input: a node takes 2 bytes at least, a node ends 256 stacks at most.
        assert!(stacks.nodes().len() <= bytes.len() / 2);
        assert!(stacks.len() <= bytes.len() * 256);
        assert!(generation.samples.len() <= bytes.len() / 3);
        assert!(generation.stack_walks.is_empty() || generation.stack_walks.len() == stacks.len());
        for (index, node) in stacks.nodes().iter().enumerate() {
            assert!(node.parent == format::NO_NODE || (node.parent as usize) < index);
        }
        for sample in &generation.samples {
            assert!((sample.thread as usize) < generation.threads.len());
            let frames = stacks.get(sample.stack as usize).expect("a sample's stack exists");
            assert!(frames.len() <= stacks.nodes().len());
        }
        for event in &generation.events {
            assert!((event.thread as usize) < generation.threads.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&format::crafted::with_valid_framing(data));
});
