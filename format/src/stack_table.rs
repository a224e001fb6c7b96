//! The stacks of a generation as a shared prefix tree: each distinct (parent, frame) is one
//! node, and a stack is the node of its leaf frame. A trace stores its stacks as such a tree,
//! and the decoder keeps them in that shape: memory is proportional to the nodes and stacks
//! of the file, never to the frames of every stack copied out (a chain of N nodes with a
//! stack ending at each is N nodes here, N²/2 frames as copies).
//!
//! Invariants: a node's parent precedes it (`parent < index`, or [`NO_NODE`] for a root), so
//! one forward pass over [`StackTable::nodes`] sees every parent before its children; a node's
//! `depth` is its parent's plus one (1 for a root) and is the length of every stack ending there.
//! Consecutive stacks ending at one node (the same frames walked differently) are one run, so
//! the table's memory follows its nodes even when a node ends hundreds of stacks.

use std::collections::HashMap;

/// "No node": the parent of a root, the leaf of an empty stack.
pub const NO_NODE: u32 = u32::MAX;

/// One frame of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackNode {
    /// The caller's node, or [`NO_NODE`] for an outermost frame.
    pub parent: u32,
    /// Frames from this one to the root, this one included.
    pub depth: u32,
    /// The address: the interrupted PC for a stack's leaf, a return address above it.
    pub frame: u64,
}

/// A table of stacks sharing their outer frames. Stack ids are indices in push order.
#[derive(Debug, Clone, Default)]
pub struct StackTable {
    nodes: Vec<StackNode>,
    /// (first stack id, leaf node): the stacks from `first` to the next run's first end at
    /// `leaf` ([`NO_NODE`]: empty stacks). `first` is strictly increasing; the first run's is 0.
    runs: Vec<(u32, u32)>,
    /// Number of stacks.
    len: u32,
    /// (parent, frame) → node, for the nodes made by [`StackTable::push`] and
    /// [`StackTable::child`] (the decoder adds nodes without it: the file's tree is already shared).
    children: HashMap<(u32, u64), u32>,
}

impl StackTable {
    /// An empty table.
    pub fn new() -> StackTable {
        StackTable::default()
    }

    /// Number of stacks.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the table holds no stack.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every node, parents before children.
    pub fn nodes(&self) -> &[StackNode] {
        &self.nodes
    }

    /// The leaf node of stack `stack`: `None` when there is no such stack, `Some(NO_NODE)` when it is empty.
    pub fn leaf(&self, stack: usize) -> Option<u32> {
        if stack >= self.len() {
            return None;
        }
        let run = self.runs.partition_point(|&(first, _)| first as usize <= stack);
        self.runs.get(run.checked_sub(1)?).map(|&(_, leaf)| leaf)
    }

    /// The frames of stack `stack`, leaf first.
    pub fn get(&self, stack: usize) -> Option<Frames<'_>> {
        self.leaf(stack).map(|leaf| self.frames_from(leaf))
    }

    /// The frames from `node` to the root, `node`'s first ([`NO_NODE`]: none).
    pub fn frames_from(&self, node: u32) -> Frames<'_> {
        let remaining = self.nodes.get(node as usize).map_or(0, |n| n.depth as usize);
        Frames { nodes: &self.nodes, node, remaining }
    }

    /// Every stack's frames, by stack id.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Frames<'_>> + '_ {
        let ends = self.runs.iter().skip(1).map(|&(first, _)| first).chain(std::iter::once(self.len));
        let leaves = self.runs.iter().zip(ends).flat_map(|(&(first, leaf), end)| std::iter::repeat_n(leaf, (end - first) as usize));
        ExactLen { inner: leaves.map(|leaf| self.frames_from(leaf)), remaining: self.len() }
    }

    /// The node for `frame` called from `parent` ([`NO_NODE`]: a root), made if it is new.
    pub fn child(&mut self, parent: u32, frame: u64) -> u32 {
        if let Some(&node) = self.children.get(&(parent, frame)) {
            return node;
        }
        let node = self.add_node(parent, frame);
        self.children.insert((parent, frame), node);
        node
    }

    /// Appends a node without looking for an equal one. `parent` must be [`NO_NODE`] or an
    /// existing node (the decoder checks its references before).
    pub(crate) fn add_node(&mut self, parent: u32, frame: u64) -> u32 {
        let depth = self.nodes.get(parent as usize).map_or(1, |p| p.depth + 1);
        self.nodes.push(StackNode { parent, depth, frame });
        (self.nodes.len() - 1) as u32
    }

    /// Adds a stack ending at `leaf` ([`NO_NODE`]: empty); returns its id.
    pub fn push_leaf(&mut self, leaf: u32) -> u32 {
        if self.runs.last().is_none_or(|&(_, last)| last != leaf) {
            self.runs.push((self.len, leaf));
        }
        self.len += 1;
        self.len - 1
    }

    /// Adds a stack given leaf first, sharing its outer frames with the stacks pushed before;
    /// returns its id.
    pub fn push(&mut self, frames: &[u64]) -> u32 {
        let leaf = frames.iter().rev().fold(NO_NODE, |parent, &frame| self.child(parent, frame));
        self.push_leaf(leaf)
    }
}

/// Tables are equal when they hold the same stacks (same frames under the same ids), however
/// their nodes are laid out.
impl PartialEq for StackTable {
    fn eq(&self, other: &StackTable) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a.eq(b))
    }
}

impl Eq for StackTable {}

impl From<Vec<Vec<u64>>> for StackTable {
    /// Stacks given leaf first, in id order.
    fn from(stacks: Vec<Vec<u64>>) -> StackTable {
        let mut table = StackTable::new();
        for stack in &stacks {
            table.push(stack);
        }
        table
    }
}

impl<'a> IntoIterator for &'a StackTable {
    type Item = Frames<'a>;
    type IntoIter = Box<dyn ExactSizeIterator<Item = Frames<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// An iterator of known length (what `flat_map` cannot tell).
struct ExactLen<I> {
    inner: I,
    remaining: usize,
}

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.remaining = self.remaining.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

/// The frames of one stack, leaf first (following parent links: nothing is copied).
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    nodes: &'a [StackNode],
    node: u32,
    remaining: usize,
}

impl Iterator for Frames<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let node = self.nodes.get(self.node as usize)?;
        self.node = node.parent;
        self.remaining = self.remaining.saturating_sub(1);
        Some(node.frame)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Frames<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_ending_at_one_node_are_one_run() {
        let mut table = StackTable::new();
        let node = table.child(NO_NODE, 7);
        for _ in 0..1000 {
            table.push_leaf(node);
        }
        table.push_leaf(NO_NODE);
        table.push_leaf(node);
        assert_eq!(table.runs.len(), 3);
        assert_eq!(table.len(), 1002);
        assert_eq!(table.leaf(999), Some(node));
        assert_eq!(table.leaf(1000), Some(NO_NODE));
        assert_eq!(table.leaf(1001), Some(node));
        assert_eq!(table.leaf(1002), None);
        assert_eq!(table.iter().filter(|frames| frames.len() == 1).count(), 1001);
    }

    #[test]
    fn pushed_stacks_share_their_outer_frames() {
        let stacks = vec![vec![3, 2, 1], vec![4, 2, 1], vec![], vec![2, 1], vec![3, 2, 1]];
        let table = StackTable::from(stacks.clone());
        assert_eq!(table.nodes().len(), 4);
        assert_eq!(table.iter().map(|f| f.collect::<Vec<_>>()).collect::<Vec<_>>(), stacks);
        assert_eq!(table.get(0).unwrap().len(), 3);
        assert_eq!(table.get(2).unwrap().len(), 0);
        assert!(table.get(5).is_none());
        assert_eq!(table.leaf(0), table.leaf(4));
        assert_eq!(table.iter().len(), 5);
        assert!(table.nodes().iter().enumerate().all(|(index, node)| node.parent == NO_NODE || (node.parent as usize) < index));
    }
}
