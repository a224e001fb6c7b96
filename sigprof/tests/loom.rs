//! Model checks of the lock-free core with loom: every interleaving (up to a preemption bound)
//! and every value the C++ memory model lets a `Relaxed` or `Acquire` load return, on the real
//! ring, seqlock and generation code built against loom's atomics. Built only with
//! `RUSTFLAGS="--cfg sigtrace_loom"`; `tests/tests/integration/loom_model_checks.rs` runs it in the suite.
#![cfg(sigtrace_loom)]

use loom::sync::Arc;
use sigprof::{advance_past, current_generation, start_tracing, SampleRing, ThreadSeqlock};
use std::time::Duration;

/// Bounded exploration: every interleaving with at most `preemptions` forced switches.
fn model(preemptions: usize, body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(body);
}

fn ring(words: usize) -> SampleRing {
    let ring = SampleRing::new();
    assert!(ring.ensure_allocated(words));
    ring
}

/// A producer writes four records of two frames into a 16-word ring (so it wraps and waits for
/// room) while the consumer pops: the consumer gets every record whole, in order, never a word
/// the producer has not published or has already overwritten.
#[test]
fn records_cross_threads_whole_and_in_order() {
    model(3, || {
        let ring = Arc::new(ring(16));
        let producer = {
            let ring = ring.clone();
            loom::thread::spawn(move || {
                for n in 1..=4u64 {
                    loop {
                        // SAFETY: this thread is the ring's only producer.
                        if let Some(mut record) = unsafe { ring.producer() }.begin_record(2) {
                            record.push_frame(n * 10);
                            record.push_frame(n * 10 + 1);
                            record.commit(n, n as u32, 7);
                            break;
                        }
                        loom::thread::yield_now();
                    }
                }
            })
        };
        let mut next = 1u64;
        while next <= 4 {
            // SAFETY: the model's main thread is the ring's only consumer.
            match unsafe { ring.consumer() }.pop() {
                Some(record) => {
                    assert_eq!((record.time_ns, record.weight, record.walk, record.kind), (next, next as u32, 7, 0));
                    assert_eq!(record.frames, vec![next * 10, next * 10 + 1]);
                    next += 1;
                }
                None => loom::thread::yield_now(),
            }
        }
        producer.join().unwrap();
        // SAFETY: as above.
        assert!(unsafe { ring.consumer() }.pop().is_none());
    });
}

/// A writer thread emits records tagged with the generation its seqlock holds into that
/// generation's ring while the drain side advances from generation 1 to 2, drains generation
/// 1's ring, then stops tracing and drains generation 2's. Every record lands in the ring of
/// the generation it carries, none is written after its generation was drained, none is lost.
#[test]
fn a_closed_generation_holds_only_its_own_records_and_none_is_lost() {
    model(2, || {
        start_tracing();
        let seqlock = Arc::new(ThreadSeqlock::new());
        let rings = Arc::new([ring(32), ring(32)]);
        let writer = {
            let (seqlock, rings) = (seqlock.clone(), rings.clone());
            loom::thread::spawn(move || {
                let mut written = 0u64;
                for _ in 0..3 {
                    let guard = seqlock.enter();
                    let generation = guard.generation();
                    if generation == 0 {
                        break;
                    }
                    // SAFETY: the writer is the rings' only producer, inside its seqlock.
                    let mut record = unsafe { rings[(generation % 2) as usize].producer() }.begin_record(1).expect("room for three records");
                    record.push_frame(generation);
                    record.commit(generation, 1, 0);
                    written += 1;
                    drop(guard);
                }
                written
            })
        };
        let drain = |generation: u64| -> u64 {
            let mut drained = 0;
            // SAFETY: the model's main thread is the rings' only consumer.
            while let Some(record) = unsafe { rings[(generation % 2) as usize].consumer() }.pop() {
                assert_eq!(record.time_ns, generation, "a record of generation {} in generation {generation}'s ring", record.time_ns);
                drained += 1;
            }
            drained
        };
        let patience = Duration::from_secs(3600);
        let first = advance_past(std::iter::once(&*seqlock), false, patience);
        assert_eq!((first.closed, first.writers_still_inside), (1, 0));
        assert_eq!(current_generation(), 2);
        let mut drained = drain(1);
        let last = advance_past(std::iter::once(&*seqlock), true, patience);
        assert_eq!((last.closed, last.writers_still_inside), (2, 0));
        drained += drain(2);
        let written = writer.join().unwrap();
        assert!(rings.iter().all(SampleRing::is_empty), "a record was written after its generation was drained");
        assert_eq!(drained, written, "records lost or counted twice");
    });
}
