//! The drain thread: empties the sampling rings, closes a generation every generation period
//! and appends it to the trace file. Runs with every signal blocked; never runs in a handler.
//!
//! The drain thread's part of the protocol is in `sigprof`'s invariants: 3 (one `Drainer` per
//! traced image, used only under its cell's lock, is the rings' single consumer and the
//! generation's single writer; after `fork` the child abandons the parent's cell, whose lock
//! a vanished thread may hold), 6 (replaced unwind snapshots are freed only after an advance
//! that *completed*, `module_snapshots`), 8 (the trace file is written only while its
//! descriptor is still ours, `trace_file`) and 9 (a generation is one `write` of a complete
//! chunk, after its advance). The open generation is built by `generation_builder`; wall-clock
//! mode's sampler of waiting threads is `wall_sampler`; the thread's loop of rounds is
//! `drain_rounds`.

use crate::generation_builder::{ticks, GenerationBuilder};
use crate::jit_maps::PerfMapReader;
use crate::jitdump_reader::JitdumpReader;
use crate::module_snapshots::{ensure_dwarf_caches, ModuleSnapshots};
use crate::pieces::{PieceContext, PieceCursor};
use crate::source_accounts::SourceAccounts;
use crate::trace_file::{FileState, TraceFile};
use crate::wall_sampler::{RunningSamples, WallSample, WallSampler};
use format::{
    counters as counter, encode_end, encode_generation, encode_header, encode_jit_symbols, encode_piece, encode_preamble, walk, End, EndReason, Event,
    EventKind, Generation, Header, JitSymbol, Sample, Thread,
};
use sigprof::{advance, clock_ns, current_generation, monotonic_ns, thread_cpu_ns, Registry, SampleRecord, SlotState};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use unwind::CriticalSection;

pub use crate::drain_rounds::{drain_tid, flush_for_fatal_signal, run, set_hand_back, wait_for_drain_thread_exit, wake, DrainPeriod, OnFailure};
use crate::drain_rounds::{DRAIN_RUNNING, DRAIN_TID};
pub use crate::generation_builder::CLOCK_HZ;

/// How long a generation advance waits for a thread to leave its critical section.
const ADVANCE_PATIENCE: Duration = Duration::from_millis(200);

/// The current drainer's cell (leaked: a forked child replaces it without touching the old one).
pub(crate) static DRAINER: AtomicPtr<Mutex<Option<Drainer>>> = AtomicPtr::new(std::ptr::null_mut());
/// How long the drain thread waits for writers when flushing for a fatal signal.
pub(crate) const FATAL_PATIENCE: Duration = Duration::from_millis(20);

/// Held by every use of the drainer, and by `fork` (from `pthread_atfork`'s prepare handler to
/// its parent and child handlers): the drain work calls `dl_iterate_phdr`, whose loader lock
/// would stay locked forever in a child forked while the drain thread held it. Always taken
/// before the drainer's own lock.
pub(crate) struct ForkGate(pub(crate) std::cell::UnsafeCell<libc::pthread_mutex_t>);
// SAFETY: a pthread mutex is made to be shared between threads; it is only used through
// pthread_mutex_lock/unlock.
unsafe impl Sync for ForkGate {}
pub(crate) static FORK_GATE: ForkGate = ForkGate(std::cell::UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

/// Closes the fork gate (the drain work is between rounds). `pthread_atfork` prepare handler.
pub extern "C" fn close_fork_gate() {
    // SAFETY: locks our static mutex.
    unsafe { libc::pthread_mutex_lock(FORK_GATE.0.get()) };
}

/// Opens the fork gate again, in the parent and in the child (the forking thread holds it in both).
pub extern "C" fn open_fork_gate() {
    // SAFETY: unlocks our static mutex, held by this (the forking) thread.
    unsafe { libc::pthread_mutex_unlock(FORK_GATE.0.get()) };
}

/// Runs `work` on the drainer under its lock (and the fork gate); `None` when there is none.
pub(crate) fn with_drainer<T>(work: impl FnOnce(&mut Option<Drainer>) -> T) -> Option<T> {
    // SAFETY: a non-null DRAINER points at a leaked cell that is never freed.
    let cell = unsafe { DRAINER.load(Ordering::Acquire).as_ref() }?;
    let _busy = sigprof::spill::ConsumerBusy::begin();
    close_fork_gate();
    let result = {
        let mut guard = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut guard)))
    };
    open_fork_gate();
    match result {
        Ok(value) => Some(value),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Re-reads the module list now (after `dlopen`/`dlclose`), so handlers unwind through new
/// code at once and never rely on code that was unloaded. Any thread but the handler; takes
/// the drainer's lock.
pub fn refresh_modules_now() {
    with_drainer(|slot| {
        if let Some(drainer) = slot.as_mut() {
            drainer.refresh_modules();
        }
    });
}

/// How often the name of a thread that did not run is read again, in generations.
const NAME_REREAD_GENERATIONS: u64 = 10;

/// What we last knew of a thread, kept across generations.
struct KnownThread {
    name: String,
    cpu_ns: u64,
}

/// The drain thread's state: the trace file and the open generation.
pub struct Drainer {
    /// The trace file (a replacement takes the next free name of the path it was asked for).
    file: TraceFile,
    header: Header,
    /// Prints one `sigtrace:` line (the shim's logger).
    notice: fn(&str),
    registry: &'static Registry,
    generation_ns: u64,
    generation_start: u64,
    builder: GenerationBuilder,
    known_threads: HashMap<u32, KnownThread>,
    /// Threads whose slots were freed during the open generation, by builder index, and the
    /// annotation events they skipped (`retire_exited_threads`).
    retired_threads: Vec<(usize, Thread)>,
    retired_skipped_events: u64,
    /// The unwind snapshots published for the handlers, and the modules seen.
    snapshots: ModuleSnapshots,
    /// How long an advance waits for threads inside their critical section.
    patience: Duration,
    /// True once the line on overflowing rings was printed (once per trace).
    ring_drops_reported: bool,
    /// Wall-clock mode's sampler of blocked threads; `None` in `cpu` mode.
    wall: Option<WallSampler>,
    /// Wall-clock mode: by slot, the latest running sample drained from its ring and the
    /// periods of all of them.
    running_samples: Vec<RunningSamples>,
    /// What of the open generation was already written as pieces.
    pieces: PieceCursor,
    /// The runtime's perf map, read as it grows.
    jit_map: PerfMapReader,
    /// The runtime's jitdump, found through its marker mapping and read as it grows.
    jitdump: JitdumpReader,
    /// Which timer sampled each thread, written as it changes.
    sources: SourceAccounts,
    /// The Python code objects read so far (kept across generations).
    python: pyframes::Resolver,
    /// `SIGTRACE_ROTATE`'s series, when the trace rotates.
    rotation: Option<crate::rotation::Rotation>,
    /// The process's CPU time when the current file began (the trace's start, or the rotation
    /// to it), for the file's first generation's `SERIES_CPU_NS_BEFORE` (0 once written): the
    /// process's CPU clock goes on across `exec`, so an image started by one would otherwise
    /// count its predecessors' CPU time as its own.
    cpu_before_file: u64,
}

impl Drainer {
    /// Writes the file's preamble and header. The unwind tables are built by the drain thread's
    /// first round (or at the first generation close), not here: start-up stays cheap.
    pub fn create(mut file: TraceFile, header: &Header, registry: &'static Registry, notice: fn(&str)) -> std::io::Result<Drainer> {
        file.write_all(&file_start(header))?;
        Ok(Drainer {
            file,
            header: header.clone(),
            notice,
            registry,
            generation_ns: u64::from(header.generation_ms.max(1)) * 1_000_000,
            generation_start: header.start_clock_ns,
            builder: GenerationBuilder::default(),
            known_threads: HashMap::new(),
            sources: SourceAccounts::default(),
            retired_threads: Vec::new(),
            retired_skipped_events: 0,
            snapshots: inherited_or_new_snapshots(),
            patience: ADVANCE_PATIENCE,
            ring_drops_reported: false,
            running_samples: Vec::new(),
            python: pyframes::Resolver::default(),
            wall: WallSampler::new(&registry.config, header.start_clock_ns),
            pieces: PieceCursor::new(header.start_clock_ns),
            jit_map: PerfMapReader::new(header.pid),
            jitdump: JitdumpReader::new(header.pid, header.start_unix_ns, monotonic_ns()),
            rotation: None,
            cpu_before_file: 0,
        })
    }

    /// Makes the trace's CPU time count from `process_cpu_ns`, the process's CPU time when the
    /// trace began (read before its first timer was armed).
    pub fn count_cpu_from(&mut self, process_cpu_ns: u64) {
        self.cpu_before_file = process_cpu_ns;
    }

    /// Makes the trace rotate by `rule`, keeping `keep` files (see `rotation`).
    pub fn rotate(&mut self, rule: crate::rotation::Rule, keep: Option<u32>, extension: &str) {
        self.rotation = Some(crate::rotation::Rotation::new(rule, keep, &self.file, extension, monotonic_ns()));
    }

    /// At a generation boundary: when the rotation rule is met, ends the file with a `Rotated`
    /// end record, goes on in the next file of the series (header first), and deletes the
    /// files beyond the count kept.
    /// `process_cpu_ns`: the process's CPU time at the end of the generation just written, for
    /// the next file's first generation (`counters::SERIES_CPU_NS_BEFORE`).
    fn rotate_if_due(&mut self, process_cpu_ns: u64) -> std::io::Result<()> {
        let now = monotonic_ns();
        let Some(rotation) = self.rotation.as_mut() else { return Ok(()) };
        if !rotation.is_due(&self.file, now) {
            return Ok(());
        }
        let mut next = rotation.next_file(now)?;
        next.write_all(&file_start(&self.header))?;
        let mut bytes = Vec::with_capacity(32);
        encode_end(&mut bytes, &End { reason: EndReason::Rotated, signal: 0, time: ticks(now), seen_by_parent: None });
        self.write(&bytes)?;
        self.file = next;
        self.cpu_before_file = process_cpu_ns;
        let Some(rotation) = self.rotation.as_mut() else { return Ok(()) };
        rotation.expire();
        Ok(())
    }

    /// Re-reads the module list when the loader's counters moved, and publishes a new unwind
    /// snapshot for the handlers (`module_snapshots`).
    pub(crate) fn refresh_modules(&mut self) {
        self.snapshots.refresh(self.registry);
    }

    /// What the handler needs to walk stacks by DWARF: the modules' unwind tables and a DWARF
    /// cache for every thread.
    pub(crate) fn prepare_unwinding(&mut self) {
        self.refresh_modules();
        ensure_dwarf_caches(self.registry);
    }

    /// Moves every record of `generation` out of the rings into the builder.
    /// Returns the fullest ring's fill before draining, as a fraction of its capacity.
    fn drain_rings(&mut self, generation: u64) -> f64 {
        let mut record = SampleRecord { time_ns: 0, weight: 0, walk: 0, kind: 0, frames: Vec::with_capacity(64) };
        let mut fullest: f64 = 0.0;
        for slot in self.registry.live_slots() {
            let tid = slot.tid.load(Ordering::Relaxed);
            // SAFETY: this is the drain thread, the rings' single consumer (one Drainer, used
            // under its cell's lock: sigprof invariant 3).
            let ring = unsafe { slot.drain_ring_of_generation(generation) };
            let (used, capacity) = ring.fill();
            if capacity > 0 {
                fullest = fullest.max(used as f64 / capacity as f64);
            }
            let mut drained = RunningSamples::default();
            while ring.pop_into(&mut record) {
                drained.last_ns = drained.last_ns.max(record.time_ns);
                drained.periods += u64::from(record.weight);
                self.builder.add(tid, &mut record, &mut self.python);
            }
            if self.wall.is_some() && drained.periods > 0 {
                let index = self.registry.slot_index(slot);
                if self.running_samples.len() <= index {
                    self.running_samples.resize(index + 1, RunningSamples::default());
                }
                let running = &mut self.running_samples[index];
                running.last_ns = running.last_ns.max(drained.last_ns);
                running.periods += drained.periods;
            }
            // SAFETY: as above.
            let events = unsafe { slot.drain_event_ring_of_generation(generation) };
            while let Some(record) = events.pop() {
                self.builder.add_event(tid, record);
            }
        }
        fullest
    }

    /// One drain period's work: drain, notice new modules, close the generation when due.
    /// Returns how full the fullest ring was (a fraction), or an error when the trace can no
    /// longer be written.
    ///
    /// The rings are drained only when `drain_due` (at the drain period); wall-clock mode's
    /// ticks come in between. Returns 0 when they were not drained.
    pub fn tick(&mut self, drain_due: bool) -> std::io::Result<f64> {
        let generation = current_generation();
        if generation == 0 {
            return Ok(0.0);
        }
        let mut fullest = 0.0;
        self.write_spilled_python()?;
        if drain_due {
            fullest = self.drain_rings(generation);
            self.retire_exited_threads();
            self.prepare_unwinding();
            self.write_jit_symbols(false)?;
        }
        self.sample_waiting_threads(false);
        if monotonic_ns().saturating_sub(self.generation_start) >= self.generation_ns {
            self.close_generation(None)?;
        } else if drain_due {
            self.write_piece(generation)?;
        }
        Ok(fullest)
    }

    /// Appends the symbols the runtime added to its perf map or jitdump since the last round,
    /// if any; at a generation's close (`closing`) the jitdump's marker is searched for even
    /// when its search is not due.
    fn write_jit_symbols(&mut self, closing: bool) -> std::io::Result<()> {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        if self.jit_map.pid() != pid {
            self.jit_map = PerfMapReader::new(pid);
        }
        let now_ns = monotonic_ns();
        if self.jitdump.pid() != pid {
            self.jitdump = JitdumpReader::new(pid, self.header.start_unix_ns, now_ns);
        }
        let mut symbols = self.jit_map.poll(ticks(now_ns));
        // A jitdump record's own time (CLOCK_MONOTONIC) is its load time when it is plausible.
        let start_ns = self.header.start_clock_ns;
        let loaded = |ns: Option<u64>| ticks(ns.filter(|ns| (start_ns..=now_ns).contains(ns)).unwrap_or(now_ns));
        symbols.extend(self.jitdump.poll(now_ns, closing, self.notice).into_iter().map(|code| JitSymbol {
            time: loaded(code.monotonic_ns),
            start: code.start,
            size: code.size,
            name: code.name,
        }));
        if symbols.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(16 + symbols.len() * 48);
        encode_jit_symbols(&mut bytes, &symbols);
        self.write(&bytes)
    }

    /// Appends what names the Python frames the handler spilled since the last round, if it
    /// spilled any (before this round's chunks: a reader names spills when it hands them over).
    fn write_spilled_python(&mut self) -> std::io::Result<()> {
        let bytes = crate::python_frames::spilled_python_chunk(&mut self.python);
        if bytes.is_empty() {
            return Ok(());
        }
        self.write(&bytes)
    }

    /// Appends what the open generation received since the last piece, if anything, as a piece
    /// chunk (`pieces`): an abrupt end of the process then loses one drain period at most.
    fn write_piece(&mut self, sequence: u64) -> std::io::Result<()> {
        let snapshots = &self.snapshots;
        let known_threads = &mut self.known_threads;
        let (registry, retired_threads) = (self.registry, &self.retired_threads);
        let mut exited: Option<HashMap<u32, KnownThread>> = None;
        let mut thread = |tid: u32| {
            if let Some(known) = known_threads.get(&tid) {
                return (known.name.clone(), known.cpu_ns);
            }
            // A thread shorter than a drain period has exited by now (`/proc` no longer knows
            // it): what it left at its exit, not kept (nothing would remove it: `known_threads`
            // holds live threads only). Listed once a piece, when needed.
            let exited = exited.get_or_insert_with(|| exited_threads(registry, retired_threads));
            if let Some(gone) = exited.get(&tid) {
                return (gone.name.clone(), gone.cpu_ns);
            }
            let known = known_threads.entry(tid).or_insert_with(|| KnownThread { name: thread_name(tid), cpu_ns: 0 });
            (known.name.clone(), known.cpu_ns)
        };
        let context = PieceContext {
            sequence,
            now_ns: monotonic_ns(),
            modules_version: snapshots.version(),
            modules: &|| snapshots.generation_modules(),
            thread: &mut thread,
            process_cpu_ns: process_cpu_ns_without_drain_thread(),
        };
        let Some(piece) = self.pieces.next_piece(&self.builder, context) else { return Ok(()) };
        let mut bytes = Vec::with_capacity(64 + piece.samples.len() * 6);
        encode_piece(&mut bytes, &piece);
        self.write(&bytes)
    }

    /// Wall-clock mode: samples the threads that wait when a tick is due, or, at a generation's
    /// close (`closing`), every thread now, and hands out the ticks held back.
    fn sample_waiting_threads(&mut self, closing: bool) {
        let Some(wall) = self.wall.as_mut() else { return };
        let builder = &mut self.builder;
        let python = &mut self.python;
        let mut key = Vec::with_capacity(64);
        let mut add = |sample: WallSample<'_>| builder.add_wall(sample, &mut key, python);
        // SAFETY: this thread publishes and retires the snapshots, and frees none during the
        // tick: the one current now stays alive while it uses it.
        let publisher = unsafe { CriticalSection::new_unchecked() };
        wall.tick(monotonic_ns(), closing, self.registry, self.registry.unwind.current(&publisher), &self.running_samples, &mut add);
        if closing {
            wall.flush(&mut add);
        }
    }

    /// The longest the drain thread may sleep: wall-clock mode's tick period, else `None`.
    pub fn longest_sleep(&self) -> Option<Duration> {
        self.wall.as_ref().map(|wall| Duration::from_nanos(wall.tick_ns()))
    }

    /// Closes the open generation and appends it to the file. With an `end` record, tracing
    /// ends (`gen` becomes 0 and no later sample is recorded) and the record follows the
    /// generation in the same write.
    pub fn close_generation(&mut self, end: Option<&End>) -> std::io::Result<()> {
        let stop = end.is_some();
        let open = current_generation();
        if open == 0 {
            let Some(end) = end else { return Ok(()) };
            let mut bytes = Vec::with_capacity(32);
            encode_end(&mut bytes, end);
            return self.write(&bytes);
        }
        self.write_spilled_python()?;
        self.drain_rings(open);
        self.write_jit_symbols(true)?;
        self.snapshots.ensure_module_table();
        let advance = advance(self.registry, stop, self.patience);
        self.drain_rings(advance.closed);
        if advance.completed() {
            self.snapshots.free_retired_after_completed_advance();
        }
        self.sample_waiting_threads(true);
        let end_time = monotonic_ns();
        self.reap_vanished_threads(end_time);
        let mut generation = self.build_generation(advance.closed, end_time, advance.writers_still_inside);
        // An idle generation goes without its tables; the next piece then lists the modules.
        let slimmed = crate::idle_generation::slim_if_idle(&mut generation);
        self.generation_start = end_time;
        self.pieces.generation_closed(end_time, if slimmed { u64::MAX } else { self.snapshots.version() });
        self.registry.reclaim_exited_slots();
        self.snapshots.start_next_generation();
        let mut bytes = Vec::with_capacity(64 + generation.samples.len() * 6);
        self.sources.take_chunk(&mut bytes);
        // The Python code table goes first, in the same write: a reader gives it to the next generation.
        format::python::encode_python_codes(&mut bytes, &generation.python_code);
        encode_generation(&mut bytes, &generation);
        if let Some(end) = end {
            // The trace's last record goes in the same write.
            encode_end(&mut bytes, end);
            return self.write(&bytes);
        }
        self.write(&bytes)?;
        self.rotate_if_due(generation.process_cpu_ns)
    }

    /// Appends `bytes` to the trace. When the program took the trace file's descriptor over
    /// (closed it, reused the number), or the file was deleted, says so once and goes on in a new
    /// file under the next free name, starting with the header again. When no new file can be
    /// made (the directory is gone too), the error says why and tracing ends.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let state = self.file.state();
        let old = self.file.path();
        let what = match state {
            FileState::Intact => None,
            FileState::TakenOver => Some(format!("the program closed the descriptor of {old}")),
            FileState::Deleted => Some(format!("the trace file {old} was deleted")),
        };
        if let Some(what) = what {
            let mut file = self
                .file
                .create_successor()
                .map_err(|error| std::io::Error::other(format!("{what} and no new one can be created ({error}); the trace ends there")))?;
            file.write_all(&file_start(&self.header))?;
            (self.notice)(&format!("{what}; the trace goes on in {}", file.path()));
            self.file = file;
            return self.file.write_all(bytes);
        }
        self.file.write_checked(bytes)
    }

    /// Marks exited the slots of threads that died without their exit destructor running (a
    /// thread killed by `exit` from another thread, a raw `clone`): their timers are stopped and
    /// their last known name and CPU time kept as their exit record. A step of its own, before
    /// the thread table is built: it changes slot states and disarms timers.
    fn reap_vanished_threads(&mut self, end_time: u64) {
        // The calling thread (the one that ends the trace, or the drain thread) is alive.
        let caller = self.registry.current_slot().map(|slot| slot as *const sigprof::ThreadSlot);
        for slot in self.registry.live_slots() {
            let tid = slot.tid.load(Ordering::Relaxed);
            if slot.state.load() != SlotState::Active || caller == Some(slot as *const _) || thread_is_alive(tid) {
                continue;
            }
            slot.timer.disarm();
            if let Some(known) = self.known_threads.get(&tid) {
                slot.set_exit_name(known.name.as_bytes());
                slot.exit_cpu_ns.store(known.cpu_ns, Ordering::Relaxed);
            }
            slot.exited_ns.store(end_time, Ordering::Relaxed);
            slot.state.store(SlotState::Exited);
        }
    }

    fn build_generation(&mut self, sequence: u64, end_time: u64, writers_still_inside: usize) -> Generation {
        let mut builder = std::mem::take(&mut self.builder);
        let (threads, skipped_events) = self.thread_table(&mut builder, sequence, end_time);
        self.say_once_if_rings_overflowed(&threads, &builder.samples);
        builder.samples.sort_by_key(|sample| sample.time);
        builder.events.sort_by_key(|event| event.time);
        let counters = self.counters(&builder, writers_still_inside, skipped_events);
        Generation {
            sequence,
            start_time: ticks(self.generation_start),
            end_time: ticks(end_time),
            process_cpu_ns: process_cpu_ns_without_drain_thread(),
            threads,
            modules: self.snapshots.generation_modules(),
            stacks: builder.stacks,
            samples: builder.samples,
            counters,
            stack_walks: builder.stack_walks,
            events: builder.events,
            python_code: builder.python.codes,
        }
    }

    /// The generation's thread table: every thread that has a slot, sampled or not, every
    /// thread retired from its slot during the generation, and every thread its samples name;
    /// with their start and exit events. Returns it with the annotation events the threads
    /// skipped.
    fn thread_table(&mut self, builder: &mut GenerationBuilder, sequence: u64, end_time: u64) -> (Vec<Thread>, u64) {
        let mut threads = vec![Thread::default(); builder.thread_tids.len()];
        let mut skipped_events = std::mem::take(&mut self.retired_skipped_events);
        for (index, thread) in std::mem::take(&mut self.retired_threads) {
            if index >= threads.len() {
                threads.resize(index + 1, Thread::default());
            }
            threads[index] = thread;
        }
        for slot in self.registry.live_slots() {
            let (index, thread, skipped) = self.thread_entry(builder, slot, sequence, end_time);
            skipped_events += skipped;
            if index >= threads.len() {
                threads.resize(index + 1, Thread::default());
            }
            threads[index] = thread;
        }
        for (index, thread) in threads.iter_mut().enumerate() {
            if thread.tid == 0 {
                thread.tid = builder.thread_tids[index];
            }
        }
        (threads, skipped_events)
    }

    /// The thread record of `slot` for the open generation (`sequence`, ending at `end_time`),
    /// its index in the builder's thread table and the annotation events it skipped; its
    /// start and exit events go into the builder.
    fn thread_entry(&mut self, builder: &mut GenerationBuilder, slot: &sigprof::ThreadSlot, sequence: u64, end_time: u64) -> (usize, Thread, u64) {
        let tid = slot.tid.load(Ordering::Relaxed);
        let index = builder.thread(tid) as usize;
        let skipped_events = slot.skipped_events.swap(0, Ordering::Relaxed);
        let started = slot.started_ns.load(Ordering::Relaxed);
        if started >= self.generation_start && started < end_time {
            builder.events.push(Event {
                time: ticks(started),
                thread: index as u32,
                kind: EventKind::ThreadStart,
                category: String::new(),
                text: String::new(),
            });
        }
        let exited = slot.state.load() == SlotState::Exited;
        let known = self.known_threads.entry(tid).or_insert(KnownThread { name: String::new(), cpu_ns: 0 });
        let (name, cpu_ns) = if exited {
            (slot.exit_name(), slot.exit_cpu_ns.load(Ordering::Relaxed))
        } else {
            // A thread that has not run since its name was read cannot have renamed itself:
            // its name is read again only every tenth generation (another thread may name it).
            let cpu_ns = thread_cpu_ns(tid);
            let unchanged = cpu_ns == known.cpu_ns && !known.name.is_empty() && !sequence.is_multiple_of(NAME_REREAD_GENERATIONS);
            (if unchanged { String::new() } else { thread_name(tid) }, cpu_ns)
        };
        if !name.is_empty() {
            known.name = name;
        }
        known.cpu_ns = known.cpu_ns.max(cpu_ns);
        let thread = Thread { tid, name: known.name.clone(), cpu_ns: known.cpu_ns, dropped: slot.take_dropped(sequence), exited };
        self.sources.note(tid, slot.timer.source_account(thread.cpu_ns), exited);
        if exited {
            self.known_threads.remove(&tid);
            let exited_ns = slot.exited_ns.load(Ordering::Relaxed);
            if exited_ns >= self.generation_start && exited_ns <= end_time {
                builder.events.push(Event {
                    time: ticks(exited_ns),
                    thread: index as u32,
                    kind: EventKind::ThreadExit,
                    category: String::new(),
                    text: String::new(),
                });
            }
        }
        (index, thread, skipped_events)
    }

    /// Frees the slots of threads that exited and whose samples are all drained, keeping their
    /// records for the open generation's thread table: a program that starts thousands of
    /// short threads per generation reuses a few slots (and their rings) instead of filling
    /// the registry. Only in `cpu` mode: wall-clock mode keeps per-slot state until the close.
    fn retire_exited_threads(&mut self) {
        if self.wall.is_some() {
            return;
        }
        let generation = current_generation();
        let now = monotonic_ns();
        let mut builder = std::mem::take(&mut self.builder);
        for slot in self.registry.live_slots() {
            // An exited thread's slot stays drained once it is: no handler can use it again.
            if !self.registry.exited_slot_is_drained(slot) {
                continue;
            }
            let (index, thread, skipped) = self.thread_entry(&mut builder, slot, generation, now);
            self.retired_threads.push((index, thread));
            self.retired_skipped_events += skipped;
            self.registry.free_exited_slot(slot);
        }
        self.builder = builder;
    }

    /// Says once that rings overflowed, and only when the drops are a real share of the
    /// generation (over 5%): a drain thread held off the CPU for a moment on a loaded machine
    /// drops a few samples, counted all the same, without a line on the program's stderr.
    fn say_once_if_rings_overflowed(&mut self, threads: &[Thread], samples: &[Sample]) {
        let dropped: u64 = threads.iter().map(|thread| thread.dropped).sum();
        let recorded: u64 = samples.iter().map(|sample| u64::from(sample.weight)).sum();
        if dropped * 20 > recorded + dropped && !self.ring_drops_reported {
            self.ring_drops_reported = true;
            (self.notice)(&format!(
                "a sampling ring overflowed before the drain thread emptied it: {dropped} periods were dropped (counted in the trace); a larger SIGTRACE_BUFFER_KB keeps them"
            ));
        }
    }

    /// The generation's counters (the registry's are taken, so each generation has its own),
    /// zeros left out: an absent counter reads as zero, and that saves ~0.4 bytes a sample.
    fn counters(&mut self, builder: &GenerationBuilder, writers_still_inside: usize, skipped_events: u64) -> Vec<(String, u64)> {
        let mut counters: Vec<(String, u64)> = walk::END_COUNTERS.iter().zip(builder.walk_ends).map(|(name, count)| (name.to_string(), count)).collect();
        counters.extend(walk::METHOD_COUNTERS.iter().zip(builder.walk_methods).map(|(name, count)| (name.to_string(), count)));
        counters.push((counter::DROPPED_NO_SLOT.into(), self.registry.dropped_no_slot.swap(0, Ordering::Relaxed)));
        counters.push((counter::SERIES_CPU_NS_BEFORE.into(), std::mem::take(&mut self.cpu_before_file)));
        counters.push((counter::THREADS_WITHOUT_SLOT.into(), self.registry.threads_without_slot.swap(0, Ordering::Relaxed)));
        counters.push((counter::WRITERS_STILL_INSIDE.into(), writers_still_inside as u64));
        counters.push((counter::SNAPSHOTS_DEFERRED.into(), self.snapshots.retired_count() as u64));
        counters.push((counter::STORMS_REPROGRAMMED.into(), self.registry.timers_reprogrammed.swap(0, Ordering::Relaxed)));
        counters.push((counter::STORMS_SWITCHED_OFF.into(), self.registry.timers_switched_off.swap(0, Ordering::Relaxed)));
        counters.push((counter::MOVES_TO_PERF.into(), self.registry.timers_moved_to_perf.swap(0, Ordering::Relaxed)));
        counters.push((counter::MOVES_TO_POSIX.into(), self.registry.timers_moved_to_posix.swap(0, Ordering::Relaxed)));
        counters.push((counter::ANNOTATIONS_SKIPPED_REENTRANT.into(), skipped_events));
        let drain_tid = DRAIN_TID.load(Ordering::Relaxed);
        counters.push((counter::DRAIN_CPU_NS_TOTAL.into(), if drain_tid == 0 { 0 } else { thread_cpu_ns(drain_tid) }));
        counters.push((counter::THREADS_KNOWN.into(), self.known_threads.len() as u64));
        if let Some(wall) = self.wall.as_mut() {
            let taken = std::mem::take(&mut wall.counters);
            counters.push((counter::WALL_WALKS.into(), taken.walks));
            counters.push((counter::WALL_REUSED.into(), taken.reused));
            counters.push((counter::WALL_TORN.into(), taken.torn));
            counters.push((counter::WALL_NOT_READY.into(), taken.not_ready));
            counters.push((counter::WALL_PROC_READS.into(), taken.proc_reads));
        }
        counters.retain(|(_, value)| *value != 0);
        counters
    }

    pub fn path(&self) -> &str {
        self.file.path()
    }
}

/// The bytes a trace file starts with: preamble and header.
fn file_start(header: &Header) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(512);
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, header);
    bytes
}

fn thread_is_alive(tid: u32) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists in our process.
    let result = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as libc::pid_t, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The names and CPU times exited threads left at their exit, by id: those retired from their
/// slots during the open generation, and those that still hold one.
fn exited_threads(registry: &Registry, retired_threads: &[(usize, Thread)]) -> HashMap<u32, KnownThread> {
    let retired = retired_threads.iter().map(|(_, thread)| (thread.tid, KnownThread { name: thread.name.clone(), cpu_ns: thread.cpu_ns }));
    let holding_slots = registry
        .live_slots()
        .filter(|slot| slot.state.load() == SlotState::Exited)
        .map(|slot| (slot.tid.load(Ordering::Relaxed), KnownThread { name: slot.exit_name(), cpu_ns: slot.exit_cpu_ns.load(Ordering::Relaxed) }));
    retired.chain(holding_slots).collect()
}

/// A thread's name: the calling thread's from `prctl` (one system call; a single-threaded
/// process names itself so at every close), another's from `/proc`.
fn thread_name(tid: u32) -> String {
    // SAFETY: gettid has no preconditions.
    if unsafe { libc::gettid() } as u32 == tid {
        let mut name = [0u8; 17];
        // SAFETY: PR_GET_NAME writes at most 16 bytes and a NUL into a 16-byte (or larger) buffer.
        if unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) } == 0 {
            let end = name.iter().position(|&b| b == 0).unwrap_or(16);
            return String::from_utf8_lossy(&name[..end]).into_owned();
        }
    }
    crate::own_file::read_proc_text(&format!("/proc/self/task/{tid}/comm")).map(|name| name.trim_end().to_string()).unwrap_or_default()
}

/// CPU time of the process minus the drain thread's own.
fn process_cpu_ns_without_drain_thread() -> u64 {
    let process = clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    let drain_tid = DRAIN_TID.load(Ordering::Relaxed);
    let drain = if drain_tid == 0 { 0 } else { thread_cpu_ns(drain_tid) };
    process.saturating_sub(drain)
}

/// Hands the drainer to a fresh cell for the drain thread (start-up, or a forked child).
pub fn install(drainer: Drainer) {
    let cell = Box::into_raw(Box::new(Mutex::new(Some(drainer))));
    DRAINER.store(cell, Ordering::Release); // an older cell (the parent's, after fork) is leaked
    crate::drain_rounds::clear_requests();
}

/// Stops every timer, writes the open generation and the end record, and ends tracing.
pub(crate) fn finish_drainer(slot: &mut Option<Drainer>, reason: EndReason, signal: u32, patience: Duration) -> Result<Option<String>, String> {
    let Some(mut drainer) = slot.take() else { return Ok(None) };
    drainer.registry.disarm_all_timers();
    drainer.patience = patience;
    let written = drainer.close_generation(Some(&End { reason, signal, time: ticks(monotonic_ns()), seen_by_parent: None }));
    written.map_err(|error| describe_write_error(drainer.path(), &error))?;
    let path = drainer.path().to_string();
    if matches!(reason, EndReason::Exit | EndReason::UnderscoreExit | EndReason::FatalSignal) {
        // The image ends now: its memory and descriptors go with it, so nothing is freed one
        // by one (the trace file stays open and ours until the kernel closes it).
        std::mem::forget(drainer);
    }
    Ok(Some(path))
}

/// One line on why the trace file at `path` took no more: a full output is named as such.
pub(crate) fn describe_write_error(path: &str, error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::EFBIG) => {
            format!("the trace file {path} reached the file size limit (RLIMIT_FSIZE); the trace ends there, complete up to its last generation")
        }
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            format!("the file system of the trace file {path} is full ({error}); the trace ends there, complete up to its last generation")
        }
        None if error.kind() == ErrorKind::Other => error.to_string(), // our own message, naming the file
        _ => format!("cannot write {path}: {error}"),
    }
}

/// Closes and writes the open generation with the end record `reason` and ends tracing (exit,
/// `_exit`, exec). Any thread but the handler. Returns the trace path, or an error message.
pub fn finish(reason: EndReason) -> Result<Option<String>, String> {
    let result = with_drainer(|slot| finish_drainer(slot, reason, 0, ADVANCE_PATIENCE)).unwrap_or(Ok(None));
    if DRAIN_RUNNING.load(Ordering::Acquire) {
        wake(); // the drain thread finds no drainer and ends
    }
    result
}

/// Abandons the parent's drainer in a forked child without writing or touching its lock (the
/// parent writes its own generation). Only in the child after `fork`, before `install`.
pub fn forget_after_fork() {
    inherit_module_snapshots();
    DRAINER.store(std::ptr::null_mut(), Ordering::Release);
    crate::drain_rounds::forget_drain_thread_after_fork();
    sigprof::ConsumerTurn::forget_after_fork();
    sigprof::forget_trace_fd_after_fork();
}

/// The parent's module list and unwind tables, kept by a forked child for its own drainer
/// (`Drainer::create` takes them): the child's memory is a copy of the parent's, so its modules
/// and their unwind tables are the parent's, and neither is read or built again.
static INHERITED_SNAPSHOTS: Mutex<Option<ModuleSnapshots>> = Mutex::new(None);

/// In a forked child: moves the module snapshots out of the parent's abandoned drainer, if its
/// lock is free (the fork gate keeps every drain round out of `fork`; a `clone` that bypassed
/// it leaves the lock as it was, and the child then builds its own).
fn inherit_module_snapshots() {
    // SAFETY: a non-null DRAINER points at a leaked cell that is never freed.
    let Some(cell) = (unsafe { DRAINER.load(Ordering::Acquire).as_ref() }) else { return };
    let Ok(parent) = cell.try_lock() else { return };
    if let Some(drainer) = parent.as_ref() {
        // SAFETY: the parent's drainer is abandoned in the child (DRAINER is cleared next, and
        // its leaked cell is never dropped), so its snapshots are moved out exactly once and
        // never dropped there. Moved bitwise, nothing of the parent's is written: a forked
        // child copies each page it writes.
        let mut snapshots = unsafe { std::ptr::read(&drainer.snapshots) };
        snapshots.start_next_generation();
        *INHERITED_SNAPSHOTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshots);
    }
}

/// The snapshots a forked child inherited, or new ones.
fn inherited_or_new_snapshots() -> ModuleSnapshots {
    INHERITED_SNAPSHOTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().unwrap_or_else(ModuleSnapshots::new)
}

#[cfg(test)]
mod walk_code_tests {
    use format::walk;
    use unwind::{WalkEnd, WalkMethod};

    /// The unwinder writes the codes the format defines (`format::walk`, docs/FORMAT.md).
    #[test]
    fn the_unwinders_walk_codes_are_the_formats() {
        let methods = [
            (WalkMethod::FramePointers, walk::METHOD_FP),
            (WalkMethod::Dwarf, walk::METHOD_DWARF),
            (WalkMethod::FramePointersNoCache, walk::METHOD_FP_NO_CACHE),
            (WalkMethod::FramePointersNoStackRoom, walk::METHOD_FP_NO_STACK_ROOM),
            (WalkMethod::FramePointersNotReady, walk::METHOD_FP_NOT_READY),
            (WalkMethod::PcOnly, walk::METHOD_PC_ONLY),
            (WalkMethod::PcOnlyNoStackRoom, walk::METHOD_PC_ONLY_NO_STACK_ROOM),
        ];
        assert_eq!(methods.len(), walk::METHOD_COUNTERS.len());
        let ends = [
            (WalkEnd::Root, walk::END_ROOT),
            (WalkEnd::StackBounds, walk::END_STACK_BOUNDS),
            (WalkEnd::BadFrame, walk::END_BAD_FRAME),
            (WalkEnd::DepthLimit, walk::END_DEPTH_LIMIT),
        ];
        assert_eq!(ends.len(), WalkEnd::ALL.len());
        assert_eq!(ends.len(), walk::END_COUNTERS.len());
        for (method, method_code) in methods {
            for (end, end_code) in ends {
                assert_eq!(method.code(end), method_code << 4 | end_code, "{method:?} {end:?}");
            }
        }
    }
}
