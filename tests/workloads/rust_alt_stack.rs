//! A Rust program (release, no frame pointers): a std thread, which Rust gives a small
//! alternate signal stack, spends argv[1] ms of CPU 21 frames deep in `mid`. sigtrace's
//! handler runs on that alternate stack (`SA_ONSTACK`); the DWARF walk must still see every
//! frame. Prints "done".
use std::hint::black_box;

#[inline(never)]
fn leaf(n: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        sum = sum.wrapping_add(black_box(i * i));
    }
    sum
}

#[inline(never)]
fn mid(depth: u32, n: u64) -> u64 {
    if depth == 0 {
        leaf(n)
    } else {
        black_box(mid(depth - 1, n)) + 1
    }
}

fn main() {
    let ms: u128 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let worker = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut total = 0u64;
        while start.elapsed().as_millis() < ms {
            total = total.wrapping_add(mid(20, 10_000));
        }
        total
    });
    black_box(worker.join().unwrap());
    println!("done");
}
