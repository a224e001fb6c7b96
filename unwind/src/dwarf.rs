//! DWARF CFI unwinding with framehop: building the unwinder's modules (drain thread) and the
//! walk (async-signal-safe, `MustNotAllocateDuringUnwind`: no allocation, lock or syscall
//! inside framehop; stack reads go through our checked [`StackMemory`]).

use crate::code_ranges::{CodeRanges, ExecutableLookup};
use crate::memory::StackMemory;
use crate::modules::{LoadedModule, UnwindSections};
use crate::regs::Regs;
use crate::walk::WalkEnd;
use framehop::{Error, ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder};

/// The unwinder over copied section data. Shared by all handlers through `&self`.
pub type DwarfUnwinder = framehop::UnwinderNative<Box<[u8]>, MustNotAllocateDuringUnwind>;
/// framehop's rule cache (~33 KB); each concurrent walk needs its own.
pub type DwarfCache = framehop::CacheNative<MustNotAllocateDuringUnwind>;

/// Builds framehop's module for `module` from its copied sections (drain thread; allocates).
pub fn framehop_module(module: &LoadedModule, sections: UnwindSections) -> Module<Box<[u8]>> {
    let (eh_frame_hdr_svma, eh_frame_hdr) = match sections.eh_frame_hdr {
        Some((svma, data)) => (Some(svma), Some(data)),
        None => (None, None),
    };
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: sections.text_svma,
        eh_frame_svma: Some(sections.eh_frame_svma),
        eh_frame: Some(sections.eh_frame),
        eh_frame_hdr_svma,
        eh_frame_hdr,
        ..Default::default()
    };
    Module::new(module.path.clone(), module.start..module.end, module.base, info)
}

/// The registers framehop starts from.
fn unwind_regs(regs: &Regs) -> framehop::UnwindRegsNative {
    #[cfg(target_arch = "x86_64")]
    return framehop::UnwindRegsNative::new(regs.pc, regs.sp, regs.fp);
    #[cfg(target_arch = "aarch64")]
    return framehop::UnwindRegsNative::new(regs.lr, regs.sp, regs.fp);
}

/// Walks the interrupted stack with CFI (framehop falls back to frame pointers for frames
/// without CFI), pushing at most `max_depth` frames leaf first. Async-signal-safe.
///
/// The caller must have checked that enough stack is left for framehop (~20 KB).
pub fn walk_stack_dwarf(
    regs: &Regs,
    stack: &StackMemory,
    unwinder: &DwarfUnwinder,
    cache: &mut DwarfCache,
    code: &CodeRanges,
    max_depth: usize,
    push: &mut impl FnMut(u64),
) -> (usize, WalkEnd) {
    walk_dwarf_with_reads(regs, &mut |address| stack.read_word(address), unwinder, cache, code, max_depth, push)
}

/// Walks a stack with CFI as [`walk_stack_dwarf`] does, reading its words through `read`
/// (`None`: not readable), as framehop does: the caller decides what memory is. Used by the
/// wall-clock sampler on a copy of another thread's stack. Async-signal-safe when `read` is.
pub fn walk_dwarf_with_reads(
    regs: &Regs,
    read: &mut impl FnMut(u64) -> Option<u64>,
    unwinder: &DwarfUnwinder,
    cache: &mut DwarfCache,
    code: &CodeRanges,
    max_depth: usize,
    push: &mut impl FnMut(u64),
) -> (usize, WalkEnd) {
    let mut read_stack = |address: u64| read(address).ok_or(());
    let mut frames = unwinder.iter_frames(regs.pc, unwind_regs(regs), cache, &mut read_stack);
    let mut executable = ExecutableLookup::new(code);
    let mut depth = 0;
    loop {
        let address = match frames.next() {
            Ok(Some(FrameAddress::InstructionPointer(pc))) => pc,
            Ok(Some(FrameAddress::ReturnAddress(return_address))) => {
                let return_address = return_address.get();
                if !executable.contains(return_address - 1, 1) {
                    return (depth, WalkEnd::BadFrame);
                }
                return_address
            }
            Ok(None) | Err(Error::ReturnAddressIsNull) => return (depth, WalkEnd::Root),
            Err(Error::CouldNotReadStack(_)) => return (depth, WalkEnd::StackBounds),
            Err(_) => return (depth, WalkEnd::BadFrame),
        };
        if depth == max_depth {
            return (depth, WalkEnd::DepthLimit);
        }
        push(address);
        depth += 1;
    }
}
