//! Naming the caller of a leaf function that did not set up a frame (x86_64).
//!
//! gcc omits `push rbp; mov rbp, rsp` in leaf functions even with `-fno-omit-frame-pointer`,
//! so `rbp` still points at the caller's frame and a naive frame-pointer walk skips the
//! caller. The word at the stack pointer is then the return address into the caller. We
//! accept it only with proof: it points just after a `call` whose target (directly, or
//! through a PLT stub and its GOT slot) starts the function that holds the interrupted PC.
//! Everything here is async-signal-safe: code bytes are read only inside published
//! executable ranges, GOT slots only inside readable ones.

use crate::code_ranges::CodeRanges;
use crate::memory::StackMemory;
use crate::regs::Regs;

/// The largest distance from a function's start to an instruction in it that we accept as
/// proof that a call target "holds" the PC.
const MAX_FUNCTION_BYTES: u64 = 256 * 1024;

/// The return address into the caller of the interrupted function when the function has not
/// (yet, or ever) pushed a frame of its own, else `None`. Async-signal-safe.
pub fn caller_of_frameless_function(regs: &Regs, stack: &StackMemory, code: &CodeRanges) -> Option<u64> {
    caller_of_frameless_function_with_reads(regs, &mut |address| stack.read_word(address), code).map(|(caller, _)| caller)
}

/// As [`caller_of_frameless_function`], reading stack words through `read`; also returns the
/// stack pointer just above the return address (the caller's, once it returned).
/// Async-signal-safe when `read` is.
pub fn caller_of_frameless_function_with_reads(regs: &Regs, read: &mut impl FnMut(u64) -> Option<u64>, code: &CodeRanges) -> Option<(u64, u64)> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let top = read(regs.sp)?;
    if returns_into_function_at(top, regs.pc, code) {
        return Some((top, regs.sp.checked_add(8)?));
    }
    // Between `push rbp` and `mov rbp, rsp`: the top word is the caller's rbp, the return
    // address sits just above it.
    if top == regs.fp {
        let above = read(regs.sp.checked_add(8)?)?;
        if returns_into_function_at(above, regs.pc, code) {
            return Some((above, regs.sp.checked_add(16)?));
        }
    }
    None
}

/// True when `return_address` follows a call whose target starts the function holding `pc`.
fn returns_into_function_at(return_address: u64, pc: u64, code: &CodeRanges) -> bool {
    call_target_before(return_address, code)
        .map(|target| resolve_plt_stub(target, code).unwrap_or(target))
        .is_some_and(|function| function <= pc && pc - function < MAX_FUNCTION_BYTES)
}

/// Reads `len` bytes of code at `address` if they lie in one executable range.
fn read_code<const N: usize>(address: u64, code: &CodeRanges) -> Option<[u8; N]> {
    if !code.is_executable(address, N as u64) {
        return None;
    }
    // SAFETY: the N bytes lie inside the executable segment of a module that is loaded (the
    // ranges are republished before a module is unloaded is noticed; see CodeRanges).
    Some(unsafe { std::ptr::read_unaligned(address as *const [u8; N]) })
}

/// Reads a pointer-sized value at `address` if it lies in a readable module range.
fn read_data_word(address: u64, code: &CodeRanges) -> Option<u64> {
    if !code.is_readable(address, 8) {
        return None;
    }
    // SAFETY: the 8 bytes lie inside a loaded module's readable segment.
    Some(unsafe { std::ptr::read_unaligned(address as *const u64) })
}

/// The target of the call instruction that ends at `return_address`: `call rel32` (E8) or
/// `call [rip+disp32]` (FF 15, as emitted with `-fno-plt`).
fn call_target_before(return_address: u64, code: &CodeRanges) -> Option<u64> {
    if let Some(bytes) = read_code::<6>(return_address.checked_sub(6)?, code) {
        if bytes[0] == 0xff && bytes[1] == 0x15 {
            let displacement = i32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
            return read_data_word(return_address.wrapping_add(displacement as i64 as u64), code);
        }
    }
    let bytes = read_code::<5>(return_address.checked_sub(5)?, code)?;
    if bytes[0] != 0xe8 {
        return None;
    }
    let displacement = i32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Some(return_address.wrapping_add(displacement as i64 as u64))
}

/// If `stub` is a PLT entry (`jmp [rip+disp32]`, optionally after `endbr64` and/or a `bnd`
/// prefix), the function its GOT slot points to.
fn resolve_plt_stub(stub: u64, code: &CodeRanges) -> Option<u64> {
    let bytes = read_code::<11>(stub, code)?;
    let mut at = 0usize;
    if bytes[..4] == [0xf3, 0x0f, 0x1e, 0xfa] {
        at = 4; // endbr64
    }
    if bytes[at] == 0xf2 {
        at += 1; // bnd prefix
    }
    if bytes[at] != 0xff || bytes[at + 1] != 0x25 {
        return None;
    }
    let displacement = i32::from_le_bytes([bytes[at + 2], bytes[at + 3], bytes[at + 4], bytes[at + 5]]);
    let next_instruction = stub + at as u64 + 6;
    read_data_word(next_instruction.wrapping_add(displacement as i64 as u64), code)
}
