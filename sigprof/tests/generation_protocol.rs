//! The generation protocol under contention: writers on several threads keep writing records
//! tagged with the generation they hold, while the drain side advances and drains. Every record
//! found in a closed generation's ring must carry that generation, and none may be lost.

use sigprof::{advance, current_generation, start_tracing, Registry, SamplerConfig, UnwindChoice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use unwind::StackBounds;

#[test]
fn closed_generations_hold_only_their_own_records() {
    let registry = Registry::install(
        SamplerConfig {
            hz: 1000,
            signal: libc::SIGPROF,
            max_depth: 4,
            ring_words: 1 << 16,
            unwind: UnwindChoice::FramePointers,
            mode: sigprof::Mode::Cpu,
            wall_hz: 0,
        },
        8,
    )
    .expect("registry");
    start_tracing();
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4u32)
        .map(|n| {
            let written = written.clone();
            let index = registry.claim_slot(1000 + n, StackBounds::UNKNOWN).expect("slot");
            std::thread::spawn(move || {
                let slot = registry.slot(index).unwrap();
                loop {
                    let guard = slot.seqlock.enter();
                    let generation = guard.generation();
                    if generation == 0 {
                        return;
                    }
                    if let Some(mut record) = slot.ring_for(&guard).begin_record(4) {
                        record.push_frame(generation);
                        record.commit(generation, 1, 0);
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(guard);
                    std::hint::spin_loop();
                }
            })
        })
        .collect();

    let mut drained = 0u64;
    for _ in 0..300 {
        std::thread::sleep(Duration::from_micros(200));
        let open = current_generation();
        let result = advance(registry, false, Duration::from_secs(5));
        assert_eq!(result.closed, open);
        assert_eq!(result.writers_still_inside, 0);
        for slot in registry.live_slots() {
            // SAFETY: this thread is the rings' only consumer.
            while let Some(record) = unsafe { slot.drain_ring_of_generation(result.closed) }.pop() {
                assert_eq!(record.time_ns, result.closed, "a record of generation {} in closed generation {}", record.time_ns, result.closed);
                assert_eq!(record.frames, vec![result.closed]);
                drained += 1;
            }
        }
    }
    let last = advance(registry, true, Duration::from_secs(5));
    for slot in registry.live_slots() {
        // SAFETY: as above.
        while let Some(record) = unsafe { slot.drain_ring_of_generation(last.closed) }.pop() {
            assert_eq!(record.time_ns, last.closed);
            drained += 1;
        }
    }
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(drained, written.load(Ordering::Relaxed), "every record written was drained exactly once");
    assert!(drained > 1000, "the writers wrote ({drained})");
}
