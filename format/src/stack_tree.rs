//! A generation's stack table in the file: a prefix tree of root-first frames in depth-first
//! order, each node's address stored as a distance from its sibling's (docs/FORMAT.md, "Stacks").

use crate::stack_table::{StackTable, NO_NODE};
use crate::varint::{put_svarint, put_uvarint, Cursor, DecodeError};

/// Writes stacks as a prefix tree of root-first frames, in depth-first order with siblings
/// sorted by address: stacks of one program share most of their outer frames, so each
/// distinct stack costs a node or two instead of all its frames, and a node's address is
/// stored as the (small) distance from its previous sibling's.
///
/// ```text
/// tree   := EMPTY_STACKS node_count node*
/// node   := (up * 3 + ends) frame_delta    up: frames to leave from the previous node's path
///           [count if ends = 2]            before this node is appended (0: it is a child of
///                                          the previous node); ends: 0 = no stack ends here,
///                                          1 = one, 2 = `count` stacks (frames walked differently)
///           frame_delta = frame - reference (zigzag): reference = the previous sibling's frame
///           when up > 0, else the parent's (0 for a root)
/// ```
/// Stack ids are assigned in that order: the empty stacks first, then each node's stacks.
/// Returns the new id of each stack of `stacks` and the walk codes in the new order.
pub(crate) fn encode_stack_tree(out: &mut Vec<u8>, stacks: &[Vec<u64>], walks: &[u8]) -> (Vec<u32>, Vec<u8>) {
    let walk_of = |stack: usize| walks.get(stack).copied().unwrap_or(0);
    let mut order: Vec<usize> = (0..stacks.len()).collect();
    order.sort_by(|&a, &b| stacks[a].iter().rev().cmp(stacks[b].iter().rev()).then(walk_of(a).cmp(&walk_of(b))));
    let mut new_ids = vec![0u32; stacks.len()];
    let mut sorted_walks = Vec::with_capacity(if walks.is_empty() { 0 } else { stacks.len() });
    let mut nodes: Vec<(u64, u64, u64)> = Vec::new(); // (up, frame delta as zigzag-able u64, stacks ending)
    let mut empty_stacks = 0u64;
    let mut path: Vec<u64> = Vec::new();
    for (new_id, &stack) in order.iter().enumerate() {
        new_ids[stack] = new_id as u32;
        if !walks.is_empty() {
            sorted_walks.push(walk_of(stack));
        }
        let frames: Vec<u64> = stacks[stack].iter().rev().copied().collect();
        if frames.is_empty() {
            empty_stacks += 1;
            continue;
        }
        let common = path.iter().zip(&frames).take_while(|(a, b)| a == b).count();
        if common == frames.len() && common == path.len() {
            if let Some(last) = nodes.last_mut() {
                last.2 += 1; // the same frames as the previous stack, walked differently
            }
            continue;
        }
        // Sorted order: a stack is never a prefix of the one before it, so it adds a node.
        for depth in common..frames.len() {
            let (up, reference) = if depth == common && path.len() > common {
                ((path.len() - common) as u64, path[common])
            } else {
                (0, if depth == 0 { 0 } else { frames[depth - 1] })
            };
            nodes.push((up, frames[depth].wrapping_sub(reference), 0));
        }
        if let Some(last) = nodes.last_mut() {
            last.2 = 1;
        }
        path = frames;
    }
    put_uvarint(out, empty_stacks);
    put_uvarint(out, nodes.len() as u64);
    for &(up, delta, ends) in &nodes {
        put_uvarint(out, up * 3 + ends.min(2));
        put_svarint(out, delta as i64);
        if ends >= 2 {
            put_uvarint(out, ends);
        }
    }
    (new_ids, sorted_walks)
}

/// The most stacks one tree node may end (they differ only in their walk code, a byte).
const MAX_STACKS_PER_NODE: u64 = 256;

/// Reads the stacks written by [`encode_stack_tree`] into a [`StackTable`] of the same shape:
/// a node per node of the file, a stack per stack, so memory is proportional to the payload
/// (at most `MAX_STACKS_PER_NODE` stacks per node of 3 bytes). Every reference is checked.
pub(crate) fn decode_stack_tree(c: &mut Cursor<'_>, payload_len: usize) -> Result<StackTable, DecodeError> {
    let broken = |c: &Cursor<'_>, what| DecodeError { offset: payload_len - c.remaining(), what };
    let mut table = StackTable::new();
    let empty_stacks = c.count(1)?;
    for _ in 0..empty_stacks {
        table.push_leaf(NO_NODE);
    }
    let node_count = c.count(2)?;
    // The nodes from the root to the previous node.
    let mut path: Vec<u32> = Vec::new();
    for _ in 0..node_count {
        let head = c.uvarint()?;
        let (up, ends) = (head / 3, head % 3);
        if up > path.len() as u64 {
            return Err(broken(c, "stack node leaves more frames than its path has"));
        }
        let up = up as usize;
        let frame_of = |node: u32| table.nodes()[node as usize].frame;
        let reference = if up > 0 { frame_of(path[path.len() - up]) } else { path.last().map_or(0, |&node| frame_of(node)) };
        path.truncate(path.len() - up);
        let frame = reference.wrapping_add(c.svarint()? as u64);
        let node = table.add_node(path.last().copied().unwrap_or(NO_NODE), frame);
        path.push(node);
        let ends = if ends == 2 { c.uvarint()? } else { ends };
        if ends > MAX_STACKS_PER_NODE {
            return Err(broken(c, "too many stacks end at one node"));
        }
        if table.len() as u64 + ends > u64::from(u32::MAX) {
            return Err(broken(c, "more stacks than 32-bit ids can name"));
        }
        for _ in 0..ends {
            table.push_leaf(node);
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_sharing_outer_frames_share_tree_nodes() {
        let root = [0x4000_0000u64, 0x4000_1000, 0x4000_2000, 0x4000_3000, 0x4000_4000, 0x4000_5000];
        let stacks: Vec<Vec<u64>> = (0..100u64).map(|leaf| std::iter::once(0x5000_0000 + leaf * 16).chain(root.iter().rev().copied()).collect()).collect();
        let mut bytes = Vec::new();
        let (ids, _) = encode_stack_tree(&mut bytes, &stacks, &[]);
        // Flat, the 100 stacks of 7 frames would take ~3 600 bytes; shared, each leaf costs its
        // position change and its distance from the previous leaf: 2 bytes.
        assert!(bytes.len() < 100 * 2 + 6 * 8, "{} bytes for 100 stacks of 7 frames", bytes.len());
        let decoded = decode_stack_tree(&mut Cursor::new(&bytes), bytes.len()).unwrap();
        assert_eq!(decoded, StackTable::from(stacks));
        assert_eq!(ids, (0..100).collect::<Vec<u32>>());
    }
}
