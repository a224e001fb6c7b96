//! DWARF CFI unwinding with framehop: building the unwinder's modules (drain thread) and the
//! walk (async-signal-safe, `MustNotAllocateDuringUnwind`: no allocation, lock or syscall
//! inside framehop; stack reads go through our checked [`StackMemory`]).

use crate::code_ranges::{CodeRanges, ExecutableLookup};
use crate::first_frame::caller_of_frameless_function_with_reads;
use crate::memory::read_word_via_kernel;
use crate::memory::StackMemory;
use crate::modules::{LoadedModule, SectionBytes, UnwindSections};
use crate::regs::Regs;
use crate::walk::WalkEnd;
use framehop::{Error, ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder};

/// The unwinder over the modules' section data (copied, or in place for start-up objects).
/// Shared by all handlers through `&self`.
pub type DwarfUnwinder = framehop::UnwinderNative<SectionBytes, MustNotAllocateDuringUnwind>;
/// framehop's rule cache (~33 KB); each concurrent walk needs its own.
pub type DwarfCache = framehop::CacheNative<MustNotAllocateDuringUnwind>;

/// Builds framehop's module for `module` from its sections (drain thread; allocates).
pub fn framehop_module(module: &LoadedModule, sections: UnwindSections) -> Module<SectionBytes> {
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
///
/// Code without CFI (Go's functions, a JIT's code cache) is walked by frame pointer: the first
/// frame by [`first_step_without_cfi`], the others by framehop's fallback rule, which follows
/// the frame pointer and checks that the stack pointer moves up. A return address is accepted
/// in a module's code, or outside every module when it may be generated code.
pub fn walk_dwarf_with_reads(
    regs: &Regs,
    read: &mut impl FnMut(u64) -> Option<u64>,
    unwinder: &DwarfUnwinder,
    cache: &mut DwarfCache,
    code: &CodeRanges,
    max_depth: usize,
    push: &mut impl FnMut(u64),
) -> (usize, WalkEnd) {
    if max_depth == 0 {
        return (0, WalkEnd::DepthLimit);
    }
    push(regs.pc);
    let mut depth = 1;
    let mut unwind_regs = unwind_regs(regs);
    let mut address = FrameAddress::InstructionPointer(regs.pc);
    if cfg!(target_arch = "x86_64") && !code.has_cfi(regs.pc) {
        match first_step_without_cfi(regs, read, code) {
            Ok((return_address, sp, fp)) => {
                #[cfg(target_arch = "x86_64")]
                {
                    unwind_regs = framehop::UnwindRegsNative::new(return_address, sp, fp);
                }
                let Some(next) = FrameAddress::from_return_address(return_address) else { return (depth, WalkEnd::Root) };
                if depth == max_depth {
                    return (depth, WalkEnd::DepthLimit);
                }
                push(return_address);
                depth += 1;
                address = next;
            }
            Err(end) => return (depth, end),
        }
    }
    let mut read_stack = |address: u64| read(address).ok_or(());
    let mut executable = ExecutableLookup::new(code);
    loop {
        let stepped = match generated_code_epilogue_step(address, &unwind_regs, code, &mut read_stack) {
            Some((return_address, sp)) => {
                #[cfg(target_arch = "x86_64")]
                {
                    unwind_regs = framehop::UnwindRegsNative::new(return_address, sp, unwind_regs.bp());
                }
                Ok(Some(return_address))
            }
            None => unwinder.unwind_frame(address, &mut unwind_regs, cache, &mut read_stack),
        };
        let return_address = match stepped {
            Ok(Some(0)) | Ok(None) | Err(Error::ReturnAddressIsNull) => return (depth, WalkEnd::Root),
            Ok(Some(return_address)) => return_address,
            Err(Error::CouldNotReadStack(_)) => return (depth, WalkEnd::StackBounds),
            Err(_) => return (depth, WalkEnd::BadFrame),
        };
        if !executable.contains(return_address - 1, 1) && !code.may_be_generated_code(return_address) {
            return (depth, WalkEnd::BadFrame);
        }
        if depth == max_depth {
            return (depth, WalkEnd::DepthLimit);
        }
        push(return_address);
        depth += 1;
        let Some(next) = FrameAddress::from_return_address(return_address) else { return (depth, WalkEnd::Root) };
        address = next;
    }
}

/// `add rsp, imm8; ret`: the code after a call in a frame that keeps no frame pointer (CPython
/// 3.12's perf trampolines: `sub rsp, 8; call rcx; add rsp, 8; ret`).
const ADD_RSP_IMM8_RET: [u8; 3] = [0x48, 0x83, 0xc4];

/// A step out of generated code (outside every module, so without CFI) whose instructions at
/// the return address are `add rsp, N; ret`: the caller's return address is at `sp + N` (read
/// as every stack word is). The code bytes are read through the kernel (generated code may be
/// unmapped meanwhile). `None`:
/// another rule applies (the frame pointer). x86_64 only. Async-signal-safe.
#[allow(unused_variables)]
fn generated_code_epilogue_step(
    address: FrameAddress,
    regs: &framehop::UnwindRegsNative,
    code: &CodeRanges,
    read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
) -> Option<(u64, u64)> {
    #[cfg(target_arch = "x86_64")]
    {
        let FrameAddress::ReturnAddress(return_address) = address else { return None };
        let return_address = return_address.get();
        if !code.may_be_generated_code(return_address) {
            return None;
        }
        let bytes = read_word_via_kernel(return_address)?.to_le_bytes();
        if bytes[..3] != ADD_RSP_IMM8_RET || bytes[4] != 0xc3 || bytes[3] & 7 != 0 || bytes[3] >= 0x80 {
            return None;
        }
        let slot = regs.sp().checked_add(u64::from(bytes[3]))?;
        let caller = read_stack(slot).ok()?;
        Some((caller, slot.checked_add(8)?))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The first step out of a function without CFI (x86_64): to the caller proven by the call
/// before the word at the stack pointer when the function has not set up its frame, else by
/// the frame pointer. Returns the return address and the caller's stack and frame pointers, or
/// why the walk ends here. Async-signal-safe when `read` is.
fn first_step_without_cfi(regs: &Regs, read: &mut impl FnMut(u64) -> Option<u64>, code: &CodeRanges) -> Result<(u64, u64, u64), WalkEnd> {
    if let Some((caller, sp)) = caller_of_frameless_function_with_reads(regs, read, code) {
        return Ok((caller, sp, regs.fp));
    }
    let fp = regs.fp;
    if fp == 0 {
        return Err(WalkEnd::Root);
    }
    let sp = fp.checked_add(16).ok_or(WalkEnd::BadFrame)?;
    if sp <= regs.sp {
        return Err(WalkEnd::BadFrame);
    }
    let (Some(caller_fp), Some(return_address)) = (read(fp), read(fp + 8)) else { return Err(WalkEnd::StackBounds) };
    if return_address == 0 {
        return Err(WalkEnd::Root);
    }
    if !code.is_executable(return_address - 1, 1) && !code.may_be_generated_code(return_address) {
        return Err(WalkEnd::BadFrame);
    }
    Ok((return_address, sp, caller_fp))
}
