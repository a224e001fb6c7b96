//! Folded stacks: one `root;…;leaf COUNT` line per distinct stack of frame names, sorted; the
//! input of flame graphs (ours in `flamegraph.rs`, flamegraph.pl, inferno, speedscope).
//!
//! The lines come from one walk of a prefix tree of frame *names* (frames that differ only in
//! their module or source line fold into one name), so the work follows the tree's nodes and
//! the bytes written, never a stack's depth times its count of stacks.

use std::collections::HashMap;

use format::NO_NODE;

use crate::profile::{Profile, NO_FRAMES};

/// Synthetic root frames put above the stacks: one per process (`exe (pid)`), then one per
/// thread (`name (tid)`), each when asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grouping {
    pub per_process: bool,
    pub per_thread: bool,
}

/// What the samples folded into one line (or one subtree) add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sample records.
    pub samples: u64,
    /// Sampling periods the samples stand for.
    pub weight: u64,
    /// Time the samples stand for, ns (`StackTotal::time_ns`: CPU time of running samples,
    /// wall time of the others).
    pub time_ns: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.samples = self.samples.saturating_add(other.samples);
        self.weight = self.weight.saturating_add(other.weight);
        self.time_ns = self.time_ns.saturating_add(other.time_ns);
    }

    fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// One folded line: frame names root first, joined by `;`, and the counts of its samples.
/// No name in `stack` contains `;`, a line break, or is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedLine {
    pub stack: String,
    pub counts: Counts,
}

/// A frame name made safe for the folded format (`;` separates frames, a line is one stack;
/// inferno takes an empty name at the root for its own `all` frame).
fn folded_frame(name: &str) -> String {
    if name.is_empty() {
        return "?".into();
    }
    name.chars().map(|c| if matches!(c, ';' | '\n' | '\r') { '_' } else { c }).collect()
}

/// The root label of each process id: its executables' file names (an exec chain, oldest
/// first, joined by ` → `) and the pid.
fn process_labels(profile: &Profile) -> HashMap<u32, String> {
    let mut images: Vec<_> = profile.processes.iter().collect();
    images.sort_by_key(|process| (process.pid, process.start_unix_ns));
    let mut names: HashMap<u32, Vec<&str>> = HashMap::new();
    for process in images {
        let name = process.executable.rsplit('/').next().unwrap_or_default();
        let chain = names.entry(process.pid).or_default();
        if chain.last() != Some(&name) {
            chain.push(name);
        }
    }
    names.into_iter().map(|(pid, chain)| (pid, format!("{} ({pid})", chain.join(" → ")))).collect()
}

/// A prefix tree of labels (interned names): node `i`'s label, parent and the counts of the
/// samples whose stack ends there.
#[derive(Default)]
struct FoldTree {
    labels: Vec<String>,
    label_ids: HashMap<String, u32>,
    parents: Vec<u32>,
    node_labels: Vec<u32>,
    counts: Vec<Counts>,
    children: HashMap<(u32, u32), u32>,
}

impl FoldTree {
    fn label(&mut self, text: String) -> u32 {
        if let Some(&id) = self.label_ids.get(&text) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.labels.push(text.clone());
        self.label_ids.insert(text, id);
        id
    }

    /// The node for `label` under `parent` ([`NO_NODE`]: a root), made if it is new.
    fn child(&mut self, parent: u32, label: u32) -> u32 {
        *self.children.entry((parent, label)).or_insert_with(|| {
            self.parents.push(parent);
            self.node_labels.push(label);
            self.counts.push(Counts::default());
            (self.parents.len() - 1) as u32
        })
    }

    /// Every node with counts as a line, by one depth-first walk that keeps the current path
    /// in one buffer; lines sorted.
    fn lines(&self) -> Vec<FoldedLine> {
        let mut kids: Vec<Vec<u32>> = vec![Vec::new(); self.parents.len()];
        let mut roots = Vec::new();
        for (node, &parent) in self.parents.iter().enumerate() {
            match kids.get_mut(parent as usize) {
                Some(siblings) => siblings.push(node as u32),
                None => roots.push(node as u32),
            }
        }
        let mut lines = Vec::new();
        let mut path = String::new();
        // (node, path length before it): a node is entered once; its children restore the
        // path to its end before appending their own name.
        let mut pending: Vec<(u32, usize)> = roots.into_iter().rev().map(|root| (root, 0)).collect();
        while let Some((node, keep)) = pending.pop() {
            path.truncate(keep);
            if keep > 0 {
                path.push(';');
            }
            path.push_str(&self.labels[self.node_labels[node as usize] as usize]);
            let counts = self.counts[node as usize];
            if !counts.is_zero() {
                lines.push(FoldedLine { stack: path.clone(), counts });
            }
            let end = path.len();
            pending.extend(kids[node as usize].iter().rev().map(|&child| (child, end)));
        }
        lines.sort_unstable_by(|a, b| a.stack.cmp(&b.stack));
        lines
    }
}

/// The folded lines of `profile` (from `Profile::totals`), root first, with the synthetic roots
/// of `grouping`; stacks that fold to the same names are one line.
pub fn folded_lines(profile: &Profile, grouping: Grouping) -> Vec<FoldedLine> {
    let mut tree = FoldTree::default();
    let frame_labels: Vec<u32> = profile.frames.iter().map(|frame| tree.label(folded_frame(&frame.function))).collect();
    let no_frames = tree.label(NO_FRAMES.into());
    let process_labels = if grouping.per_process { process_labels(profile) } else { HashMap::new() };
    // The group root of each thread (NO_NODE: none), made on first use.
    let mut thread_roots: Vec<Option<u32>> = vec![None; profile.threads.len()];
    // (group root, node of `profile.stacks`) → fold node: each stack node is folded once per group.
    let mut folded: HashMap<(u32, u32), u32> = HashMap::new();
    let nodes = profile.stacks.nodes();
    let mut pending = Vec::new();
    for total in &profile.totals {
        let root = match thread_roots.get(total.thread as usize) {
            Some(Some(root)) => *root,
            Some(None) => {
                let thread = &profile.threads[total.thread as usize];
                let mut root = NO_NODE;
                if grouping.per_process {
                    let text = process_labels.get(&thread.pid).cloned().unwrap_or_else(|| format!("? ({})", thread.pid));
                    let label = tree.label(folded_frame(&text));
                    root = tree.child(root, label);
                }
                if grouping.per_thread {
                    let name = if thread.name.is_empty() { "?" } else { thread.name.as_str() };
                    let label = tree.label(folded_frame(&format!("{name} ({})", thread.tid)));
                    root = tree.child(root, label);
                }
                thread_roots[total.thread as usize] = Some(root);
                root
            }
            None => continue, // a thread the profile does not have: stay defensive
        };
        let leaf = match profile.stacks.leaf(total.stack as usize) {
            Some(leaf) if (leaf as usize) < nodes.len() => {
                // The nodes from the leaf up to the first one already folded, then down again.
                pending.clear();
                let mut node = leaf;
                while node != NO_NODE && !folded.contains_key(&(root, node)) {
                    pending.push(node);
                    node = nodes[node as usize].parent;
                }
                let mut parent = if node == NO_NODE { root } else { folded[&(root, node)] };
                for &node in pending.iter().rev() {
                    let frame = nodes[node as usize].frame;
                    let label = frame_labels.get(frame as usize).copied().unwrap_or(no_frames);
                    parent = tree.child(parent, label);
                    folded.insert((root, node), parent);
                }
                parent
            }
            // An empty stack (the profile gives those a frame of their own; stay defensive).
            _ => tree.child(root, no_frames),
        };
        tree.counts[leaf as usize].add(Counts { samples: total.samples, weight: total.weight, time_ns: total.time_ns });
    }
    tree.lines()
}

/// [`render_grouped`] without synthetic roots (what the tests compare).
#[cfg(test)]
pub fn render(profile: &Profile) -> String {
    render_grouped(profile, Grouping::default())
}

/// Renders `profile` as folded stacks, root first, each line's weight (sampling periods), under
/// the synthetic roots of `grouping`.
pub fn render_grouped(profile: &Profile, grouping: Grouping) -> String {
    let mut out = String::new();
    for line in folded_lines(profile, grouping) {
        if line.counts.weight == 0 {
            continue;
        }
        out.push_str(&line.stack);
        out.push(' ');
        out.push_str(&line.counts.weight.to_string());
        out.push('\n');
    }
    out
}
