//! Cost of the first unwind-table round at start-up (what a short process pays): listing the
//! modules, building the unwind tables, and the DWARF cache pool, timed in-process.

use std::time::Instant;
use unwind::{loaded_modules, CachePool, UnwindTables};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs = 200;
    let time = |f: &mut dyn FnMut()| {
        median(
            (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect(),
        )
    };
    let list = time(&mut || {
        std::hint::black_box(loaded_modules());
    });
    let tables = time(&mut || {
        std::hint::black_box(UnwindTables::new().refresh());
    });
    let pool8 = time(&mut || {
        std::hint::black_box(CachePool::new(8, 8));
    });
    let pool1 = time(&mut || {
        std::hint::black_box(CachePool::new(1, 1));
    });
    println!("modules {} | list {list:.1} µs | tables {tables:.1} µs | pool(8) {pool8:.1} µs | pool(1) {pool1:.1} µs", loaded_modules().len());
}
