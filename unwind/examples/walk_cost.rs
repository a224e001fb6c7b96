//! Cost of one stack walk, frame pointers vs DWARF CFI, at several depths, measured in-process
//! outside a signal handler (so without signal delivery): recursion to a depth, capture the
//! registers, then time many walks of that live stack. Build with frame pointers
//! (`RUSTFLAGS=-Cforce-frame-pointers=yes`, as scripts/bench-unwind.sh does) so that both
//! methods can walk the same stack.

use std::hint::black_box;
use std::time::Instant;
use unwind::{walk_stack, CachePool, StackBounds, StackMemory, UnwindTables};

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn current_regs() -> unwind::Regs {
    let (pc, sp, fp): (u64, u64, u64);
    // SAFETY: reads rip (via lea), rsp and rbp into registers; no memory is touched.
    unsafe { std::arch::asm!("lea {0}, [rip]", "mov {1}, rsp", "mov {2}, rbp", out(reg) pc, out(reg) sp, out(reg) fp) };
    unwind::Regs { pc, sp, fp, lr: 0 }
}

#[inline(never)]
fn recurse(depth: usize, at_bottom: &mut dyn FnMut(unwind::Regs)) {
    if depth == 0 {
        at_bottom(current_regs());
    } else {
        recurse(depth - 1, at_bottom);
    }
    black_box(depth);
}

fn main_thread_bounds() -> StackBounds {
    // SAFETY: attr is initialised by pthread_getattr_np before use and destroyed after.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        libc::pthread_getattr_np(libc::pthread_self(), &mut attr);
        let (mut address, mut size) = (std::ptr::null_mut(), 0usize);
        libc::pthread_attr_getstack(&attr, &mut address, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        StackBounds { lo: address as u64, hi: address as u64 + size as u64 }
    }
}

/// Median ns per call of `walk` over 21 batches of `per_batch` calls.
fn median_ns(per_batch: usize, mut walk: impl FnMut() -> usize) -> (f64, usize) {
    let mut frames = 0;
    let mut batches: Vec<f64> = (0..21)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                frames = black_box(walk());
            }
            start.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    (batches[batches.len() / 2], frames)
}

fn main() {
    let (_, snapshot) = UnwindTables::new().refresh();
    let pool = CachePool::new(1, 1);
    let bounds = main_thread_bounds();
    println!("{:>6} {:>14} {:>14} {:>8} {:>8}", "depth", "fp ns/walk", "dwarf ns/walk", "fp fr", "dwarf fr");
    for depth in [8usize, 32, 128] {
        recurse(depth, &mut |regs| {
            // SAFETY: the main thread's own stack, walked from a frame of its own.
            let stack = unsafe { StackMemory::for_walk(bounds, regs.sp) };
            let (fp_ns, fp_frames) = median_ns(20_000, || {
                walk_stack(&regs, &stack, Some(&snapshot.code), 512, &mut |f| {
                    black_box(f);
                })
                .0
            });
            // SAFETY: as above.
            let dwarf_stack = unsafe { StackMemory::for_dwarf_walk(bounds, regs.sp) };
            let mut lease = pool.claim(0).expect("a cache");
            let (dwarf_ns, dwarf_frames) = median_ns(20_000, || {
                unwind::walk_stack_dwarf(&regs, &dwarf_stack, &snapshot.dwarf, lease.cache(), &snapshot.code, 512, &mut |f| {
                    black_box(f);
                })
                .0
            });
            println!("{depth:>6} {fp_ns:>14.0} {dwarf_ns:>14.0} {fp_frames:>8} {dwarf_frames:>8}");
        });
    }
}
