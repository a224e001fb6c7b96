//! The decoder's memory is bounded by its input: a crafted stack tree whose stacks, copied
//! out, would take the square of the file's size decodes into a table of the file's size.
//! Measured with a counting global allocator; the tests take turns (a lock), so that nothing
//! else allocates meanwhile.

mod support {
    pub mod counting_allocator;
}
use support::counting_allocator::{one_at_a_time, with_peak};

#[test]
fn a_deep_chain_of_stacks_decodes_in_memory_proportional_to_the_file() {
    let _one = one_at_a_time();
    for with_samples in [false, true] {
        let nodes = 10_000;
        let bytes = format::crafted::deep_chain_trace(nodes, with_samples);
        let (trace, peak) = with_peak(|| format::read_trace(&bytes));
        assert!(trace.stopped_because.is_none(), "{:?}", trace.stopped_because);
        let stacks = &trace.generations[0].stacks;
        assert_eq!(stacks.len(), nodes);
        assert_eq!(stacks.get(nodes - 1).map(|frames| frames.len()), Some(nodes));
        // Copied out, the stacks would hold nodes²/2 frames (400 MB); shared they are a few
        // dozen bytes a node, and the file is 2 to 5 bytes a node.
        assert!(peak <= 64 * bytes.len(), "decoding {} bytes allocated {peak} bytes at the peak", bytes.len());
        drop(trace);
    }
}

#[test]
fn a_node_ending_the_most_stacks_costs_no_more_than_a_node() {
    let _one = one_at_a_time();
    // 256 stacks for 4 bytes: each stack's own leaf entry would be 256 bytes per input byte.
    let bytes = format::crafted::stack_tree_trace(5_000, 256, false);
    let (trace, peak) = with_peak(|| format::read_trace(&bytes));
    assert!(trace.stopped_because.is_none(), "{:?}", trace.stopped_because);
    assert_eq!(trace.generations[0].stacks.len(), 5_000 * 256);
    assert!(peak <= 64 * bytes.len(), "decoding {} bytes allocated {peak} bytes at the peak", bytes.len());
}
