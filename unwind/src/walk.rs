//! The frame-pointer stack walk. Async-signal-safe.

use crate::code_ranges::{CodeRanges, ExecutableLookup};
use crate::first_frame::caller_of_frameless_function;
use crate::memory::StackMemory;
use crate::regs::Regs;

/// Why a walk stopped. Stored with each sample (as its `u8` value) and counted per generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WalkEnd {
    /// The frame chain ended with a null frame pointer or return address: a clean root.
    Root = 0,
    /// The next frame pointer or return address could not be read within the stack bounds.
    StackBounds = 1,
    /// A frame pointer did not move up the stack, or a return address is not in any code.
    BadFrame = 2,
    /// The configured maximum depth was reached.
    DepthLimit = 3,
}

impl WalkEnd {
    pub const ALL: [WalkEnd; 4] = [WalkEnd::Root, WalkEnd::StackBounds, WalkEnd::BadFrame, WalkEnd::DepthLimit];

    pub fn from_u8(value: u8) -> Option<WalkEnd> {
        WalkEnd::ALL.get(value as usize).copied()
    }
}

/// How a stack was walked. The values are those of the trace format's `walk` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WalkMethod {
    /// Frame pointers, by configuration.
    FramePointers = 0,
    /// DWARF CFI (frames without CFI follow frame pointers).
    Dwarf = 1,
    /// Frame pointers: every DWARF cache was in use.
    FramePointersNoCache = 2,
    /// Frame pointers: too little stack left for a DWARF walk.
    FramePointersNoStackRoom = 3,
    /// Frame pointers: the unwind tables are not built yet.
    FramePointersNotReady = 4,
    /// Only the PC: DWARF was forced but could not run.
    PcOnly = 5,
    /// Only the PC: the stack the handler runs on had too little room left for any walk.
    PcOnlyNoStackRoom = 6,
}

impl WalkMethod {
    /// The byte stored per stack: `method << 4 | end`.
    pub fn code(self, end: WalkEnd) -> u8 {
        (self as u8) << 4 | end as u8
    }
}

/// Walks the interrupted thread's stack, pushing at most `max_depth` frames (leaf first: the
/// PC, then return addresses) into `push`. Returns the number of frames pushed and why the
/// walk ended. Async-signal-safe: reads only through `stack` and `code`, never allocates.
///
/// `code`, when given, lets the walk name the caller of a frameless leaf and reject return
/// addresses that point outside every loaded module's code, unless they may be generated code
/// (a JIT's, outside every module).
pub fn walk_stack(regs: &Regs, stack: &StackMemory, code: Option<&CodeRanges>, max_depth: usize, push: &mut impl FnMut(u64)) -> (usize, WalkEnd) {
    if max_depth == 0 {
        return (0, WalkEnd::DepthLimit);
    }
    push(regs.pc);
    let mut depth = 1;
    if let Some(caller) = code.and_then(|code| caller_of_frameless_function(regs, stack, code)) {
        if depth == max_depth {
            return (depth, WalkEnd::DepthLimit);
        }
        push(caller);
        depth += 1;
    }
    let mut frame_pointer = regs.fp;
    let mut executable = code.map(ExecutableLookup::new);
    loop {
        if frame_pointer == 0 {
            return (depth, WalkEnd::Root);
        }
        let (Some(next_frame_pointer), Some(return_address)) =
            (stack.read_word(frame_pointer), frame_pointer.checked_add(8).and_then(|slot| stack.read_word(slot)))
        else {
            return (depth, WalkEnd::StackBounds);
        };
        if return_address == 0 {
            return (depth, WalkEnd::Root);
        }
        let outside_code = |lookup: &mut ExecutableLookup<'_>| !lookup.contains(return_address.saturating_sub(1), 1);
        if executable.as_mut().is_some_and(outside_code) && code.is_some_and(|code| !code.may_be_generated_code(return_address)) {
            return (depth, WalkEnd::BadFrame);
        }
        if depth == max_depth {
            return (depth, WalkEnd::DepthLimit);
        }
        push(return_address);
        depth += 1;
        if next_frame_pointer != 0 && next_frame_pointer <= frame_pointer {
            return (depth, WalkEnd::BadFrame);
        }
        frame_pointer = next_frame_pointer;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::StackBounds;

    /// A fake stack: frames at increasing addresses, each `[saved fp, return address]`.
    fn fake_stack() -> Vec<u64> {
        // index: 0 1    2    3    4    5 ..
        //        . fp1  ra1  fp2  ra2
        vec![0, 0, 0x1100, 0, 0x1200, 0, 0]
    }

    #[test]
    fn walks_a_chain_and_honours_the_depth_limit() {
        let mut words = fake_stack();
        let base = words.as_ptr() as u64;
        words[1] = base + 3 * 8; // frame 1 -> frame 2
        words[3] = 0; // frame 2 is the root
        let bounds = StackBounds { lo: base, hi: base + words.len() as u64 * 8 };
        let regs = Regs { pc: 0x1000, sp: base, fp: base + 8, lr: 0 };
        // SAFETY: `words` lives until the end of the test.
        let stack = unsafe { StackMemory::for_walk(bounds, regs.sp) };
        let mut frames = Vec::new();
        let (depth, end) = walk_stack(&regs, &stack, None, 64, &mut |frame| frames.push(frame));
        assert_eq!((depth, end), (3, WalkEnd::Root));
        assert_eq!(frames, vec![0x1000, 0x1100, 0x1200]);

        let mut frames = Vec::new();
        let (depth, end) = walk_stack(&regs, &stack, None, 2, &mut |frame| frames.push(frame));
        assert_eq!((depth, end), (2, WalkEnd::DepthLimit));
    }

    #[test]
    fn a_frame_pointer_that_moves_down_ends_the_walk() {
        let mut words = fake_stack();
        let base = words.as_ptr() as u64;
        words[1] = base; // points below itself
        let bounds = StackBounds { lo: base, hi: base + words.len() as u64 * 8 };
        let regs = Regs { pc: 0x1000, sp: base, fp: base + 8, lr: 0 };
        // SAFETY: `words` lives until the end of the test.
        let stack = unsafe { StackMemory::for_walk(bounds, regs.sp) };
        let (depth, end) = walk_stack(&regs, &stack, None, 64, &mut |_| {});
        assert_eq!((depth, end), (2, WalkEnd::BadFrame));
    }

    #[test]
    fn a_frame_pointer_off_the_stack_ends_the_walk() {
        let words = fake_stack();
        let base = words.as_ptr() as u64;
        let bounds = StackBounds { lo: base, hi: base + words.len() as u64 * 8 };
        let regs = Regs { pc: 0x1000, sp: base, fp: base + 4096, lr: 0 };
        // SAFETY: `words` lives until the end of the test.
        let stack = unsafe { StackMemory::for_walk(bounds, regs.sp) };
        let (depth, end) = walk_stack(&regs, &stack, None, 64, &mut |_| {});
        assert_eq!((depth, end), (1, WalkEnd::StackBounds));
    }
}
