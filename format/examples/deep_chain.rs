//! Writes the crafted trace of the decoder's regression test: a chain of N stack-tree nodes
//! with a stack (and a sample) ending at each, N²/2 frames when stacks are copied out.
//!
//!   cargo run --release -p sigtrace-format --example deep_chain -- N OUT [STACKS_PER_NODE]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(nodes), Some(out)) = (args.get(1).and_then(|n| n.parse().ok()), args.get(2)) else {
        eprintln!("usage: deep_chain NODES OUT [STACKS_PER_NODE]");
        std::process::exit(2);
    };
    let per_node = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
    std::fs::write(out, format::crafted::stack_tree_trace(nodes, per_node, true)).expect("writable output");
}
