//! Wall-clock mode's sampler, run by the drain thread at `SIGTRACE_WALL_HZ`: every thread
//! inside an interposed blocking call (`sigprof::blocking`) gets a blocked sample standing for
//! the wall time since the previous tick, with the stack above its call site. A blocked thread
//! is never signalled: its stack is copied with `process_vm_readv` (which cannot fault) and
//! walked from the registers its wrapper saved, with the DWARF unwinder; its Python frames, if
//! it runs CPython, are read the same way (`pyframes::walk_python_of`). Running threads are
//! sampled by their CPU timers as in `cpu` mode.
//!
//! A thread outside interposed calls has its CPU clock read at the ticks (less often while it
//! does not run at all): wall time it neither ran nor was seen blocked in a wrapper adds up in a
//! balance, and once that reaches half a tick the thread's `/proc/self/task/TID/stat` tells
//! whether it waits for a CPU (runnable: the sample takes its last running stack) or is blocked
//! in a call sigtrace does not interpose (its `/proc/self/task/TID/syscall` gives the system
//! call, stack and instruction pointers, walked with CFI). A thread that has not run since it
//! was classified keeps its class without reading `/proc` again.
//!
//! A thread still in the same call as at the previous tick (the same episode) keeps the stack
//! walked then: the frames above a call site cannot change while the thread stays in the call.
//! A thread in a new call at the same call site (same call, pc, sp and frame pointer: a loop
//! around `sleep`) reuses it too. So many idle threads cost a few loads each per tick.

use format::{SampleState, ThreadState, SYSCALL_CODE_BASE};
use sigprof::{period_ns, Blocked, Mode, Registry, SamplerConfig, SlotState};
use std::sync::atomic::Ordering;
use unwind::{read_word_via_kernel, walk_dwarf_with_reads, DwarfCache, Regs, StackBounds, UnwindSnapshot, WalkMethod};

/// Bytes of a blocked thread's stack copied for a walk (deeper frames are read one word at a
/// time through the kernel).
const STACK_COPY_BYTES: usize = 64 * 1024;
/// The most thread CPU clocks read in one tick (a system call each): with many running threads,
/// each is read every few ticks instead, which keeps the sampler's cost bounded.
const MAX_CPU_READS_PER_TICK: usize = 200;
/// Bytes below the saved stack pointer a CFI rule may read (the x86_64 red zone).
const RED_ZONE: u64 = 128;

/// What the drain thread took out of one slot's ring: its running samples.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunningSamples {
    /// The latest one's time (monotonic ns).
    pub last_ns: u64,
    /// The periods of CPU time all of them stand for.
    pub periods: u64,
}

/// Where a wall sample's stack comes from.
pub enum WallStack<'a> {
    /// These frames (leaf first) and walk code.
    Walked { frames: &'a [u64], walk: u8 },
    /// The thread's last running sample in the generation (none: an empty stack).
    LastRunning,
}

/// A runnable or blocked sample for the generation being built.
pub struct WallSample<'a> {
    pub tid: u32,
    pub time_ns: u64,
    pub stack: WallStack<'a>,
    /// Sampling periods of wall time.
    pub weight: u32,
    pub state: SampleState,
}

/// What the sampler keeps of one thread between ticks.
#[derive(Default)]
struct WallThread {
    tid: u32,
    /// The episode the stack below was walked in, and its call site (for a call found through
    /// `/proc`: the system call number as the call, its pc and sp).
    episode: u64,
    site: (u32, Regs),
    frames: Vec<u64>,
    walk: u8,
    /// Wall time not yet given out as whole periods, ns.
    remainder_ns: u64,
    /// Blocked ticks of one call at one call site not yet handed out: consecutive ticks of a
    /// long wait go out as one sample (of their summed weight, at the last tick's time) every
    /// [`COALESCE_NS`], when the wait ends, and when the generation closes.
    pending: Option<Pending>,
    /// The CPU-time account of a thread outside interposed calls: when its CPU clock was last
    /// read (0: never), what it read, the blocked wall time given out since, and the wall time
    /// neither run nor given out (may be negative: blocked ticks also cover time it ran).
    cpu_read_at: u64,
    cpu_ns: u64,
    blocked_given_ns: u64,
    balance_ns: i64,
    /// How the thread was last classified from `/proc`, and ticks left before its CPU clock is
    /// read again (it backs off while the thread does not run).
    elsewhere: Option<Elsewhere>,
    idle_ticks: u32,
    skip_ticks: u32,
    /// When the sampler last looked at the thread, how many looks in a row found it in the same
    /// call (or in calls at one call site), and the tick before which it is not looked at again:
    /// such a thread is looked at after 1, 1, 2, 4 ticks, then every [`LONGEST_LOOK_GAP`], so
    /// that many idle threads cost little. Still in that call at the next look, it was blocked
    /// all along; in another, the start of that one ends it; in none, the call ended within the
    /// skipped ticks at a moment as likely as any other: it gets half of them.
    last_visit_ns: u64,
    same_visits: u32,
    skip_until: u64,
    /// The call the thread was in at the last look (`None`: in none).
    in_call: Option<SampleState>,
    /// The periods of its running samples drained by the last look.
    running_periods: u64,
}

impl WallThread {
    /// Spaces the looks at a thread that stays in one call, or in calls at one call site
    /// (`stays`): the next is after 1, 1, 2, 4 ticks, then every [`LONGEST_LOOK_GAP`]; any other
    /// thread is looked at every tick. `ticks` is the number of this tick.
    fn schedule_next_look(&mut self, stays: bool, ticks: u64) {
        if stays {
            self.same_visits += 1;
            let gap = match self.same_visits {
                0 | 1 => 1,
                2 => 2,
                3 => 4,
                _ => LONGEST_LOOK_GAP,
            };
            self.skip_until = ticks + gap;
        } else {
            self.same_visits = 0;
            self.skip_until = 0;
        }
    }
}

/// True when the thread runs although it is described as inside `blocked`: it left the call
/// without its return being seen (a `longjmp` out of a signal handler) and has not made an
/// interposed call since. Told by its CPU timer: a running sample taken more than
/// [`STALE_MARGIN_NS`] after the call began (`last_running_ns`, the latest such sample the drain
/// thread has taken out of the thread's ring) means it ran; the call is then ignored, the thread
/// accounted as outside calls. No system call: idle threads cost nothing here. (The latest
/// running sample only moves on, so a call found left stays found.)
fn runs_outside(blocked: &Blocked, last_running_ns: u64) -> bool {
    last_running_ns > blocked.since_ns.saturating_add(STALE_MARGIN_NS)
}

/// How long after a call's (coarse) start a running sample of its thread shows that it left the
/// call: the coarse clock's lag and a sample taken just before the call are well within it.
const STALE_MARGIN_NS: u64 = 20_000_000;

/// Blocked ticks waiting to go out as one sample, with the thread's current stack.
#[derive(Clone, Copy)]
struct Pending {
    weight: u32,
    /// The first tick's time and the last's.
    first_ns: u64,
    last_ns: u64,
    state: SampleState,
}

/// The most ticks between two looks at a thread that stays in one call.
const LONGEST_LOOK_GAP: u64 = 8;

/// How much wall time one coalesced blocked sample covers at most.
const COALESCE_NS: u64 = 250_000_000;

/// Where a thread outside interposed calls was found waiting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elsewhere {
    Runnable,
    /// Blocked in this call code (a system call number + `SYSCALL_CODE_BASE`, or 0).
    Blocked(u32),
}

/// Counts of what the sampler did, for the generation's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WallCounters {
    /// Stacks walked (a new call site).
    pub walks: u64,
    /// Samples that reused a stack walked before.
    pub reused: u64,
    /// Walks discarded because the call returned while its stack was read.
    pub torn: u64,
    /// Ticks whose blocked threads were not sampled: the unwind tables were not ready.
    pub not_ready: u64,
    /// Threads outside interposed calls classified through `/proc` (runnable or blocked).
    pub proc_reads: u64,
}

/// The drain thread's wall-clock sampler.
pub struct WallSampler {
    tick_ns: u64,
    period_ns: u64,
    max_depth: usize,
    /// When tracing began (monotonic ns).
    start_ns: u64,
    next_tick_ns: u64,
    last_tick_ns: u64,
    /// By slot index.
    threads: Vec<WallThread>,
    /// Ticks so far.
    ticks: u64,
    /// CPU clock reads left in this tick, and where the next tick starts its visit.
    cpu_reads_left: usize,
    rotation: usize,
    copy: Vec<u64>,
    cache: Box<DwarfCache>,
    pub counters: WallCounters,
}

impl WallSampler {
    /// A sampler ticking `config.wall_hz` times a second whose weights are sampling periods
    /// (of `config.hz`), starting at `start_ns` (monotonic). `None` in [`Mode::Cpu`].
    pub fn new(config: &SamplerConfig, start_ns: u64) -> Option<WallSampler> {
        if config.mode != Mode::Wall {
            return None;
        }
        let tick_ns = period_ns(config.wall_hz).max(1);
        Some(WallSampler {
            tick_ns,
            period_ns: period_ns(config.hz).max(1),
            max_depth: config.max_depth.max(1),
            start_ns,
            next_tick_ns: start_ns + tick_ns,
            last_tick_ns: start_ns,
            threads: Vec::new(),
            ticks: 0,
            cpu_reads_left: 0,
            rotation: 0,
            copy: vec![0; STACK_COPY_BYTES / 8],
            cache: Box::new(DwarfCache::new_in()),
            counters: WallCounters::default(),
        })
    }

    /// The tick period.
    pub fn tick_ns(&self) -> u64 {
        self.tick_ns
    }

    /// Samples every thread that is not running if a tick is due at `now_ns`, handing each
    /// sample to `emit`. Drain thread only.
    /// With `every_thread` (at a generation's close) the tick is taken now and looks at every
    /// thread, those that stay in one call too: the generation gets all their time.
    ///
    /// `running[i]` is what was drained from slot `i`'s ring (see [`runs_outside`]; the
    /// CPU time a thread ran between two looks is taken out of a call that ended in between).
    pub fn tick(
        &mut self,
        now_ns: u64,
        every_thread: bool,
        registry: &Registry,
        snapshot: Option<&UnwindSnapshot>,
        running: &[RunningSamples],
        emit: &mut impl FnMut(WallSample<'_>),
    ) {
        if now_ns < self.next_tick_ns && !every_thread {
            return;
        }
        let previous_tick = self.last_tick_ns;
        self.last_tick_ns = now_ns;
        self.next_tick_ns = (self.next_tick_ns + self.tick_ns).max(now_ns + self.tick_ns / 2);
        self.cpu_reads_left = MAX_CPU_READS_PER_TICK;
        // Slots are visited from a rotating start, so that when the CPU clock reads of a tick
        // run out, other threads are read first at the next.
        let in_use = registry.slots_in_use();
        if self.threads.len() < in_use {
            self.threads.resize_with(in_use, WallThread::default);
        }
        let start = if in_use == 0 { 0 } else { self.rotation % in_use };
        self.rotation = self.rotation.wrapping_add(MAX_CPU_READS_PER_TICK);
        for index in (start..in_use).chain(0..start) {
            self.visit_slot(index, now_ns, previous_tick, every_thread, registry, snapshot, running, emit);
        }
        self.ticks += 1;
    }

    /// One thread's step of a tick: the thread of slot `index`, unless it stays in one call and
    /// its next look is not due. A freed slot or an exited thread gets its held-back ticks handed
    /// out; a live one is looked at. `previous_tick` is the tick before this one (`now_ns`).
    #[allow(clippy::too_many_arguments)]
    fn visit_slot(
        &mut self,
        index: usize,
        now_ns: u64,
        previous_tick: u64,
        every_thread: bool,
        registry: &Registry,
        snapshot: Option<&UnwindSnapshot>,
        running: &[RunningSamples],
        emit: &mut impl FnMut(WallSample<'_>),
    ) {
        // A thread that stays in one call is not looked at, its slot not even read, until
        // its next look is due (a slot freed and claimed again meanwhile is noticed then;
        // an exit, at the latest when the generation closes).
        let thread = &self.threads[index];
        if thread.tid != 0 && thread.skip_until > self.ticks && !every_thread {
            return;
        }
        let Some(slot) = registry.slot(index) else { return };
        let tid = slot.tid.load(Ordering::Relaxed);
        let state = slot.state.load();
        if matches!(state, SlotState::Free | SlotState::Claimed) {
            let thread = &mut self.threads[index];
            if thread.tid != 0 {
                flush_pending(thread, emit);
                *thread = WallThread::default();
            }
            return;
        }
        if state != SlotState::Active {
            if self.threads[index].tid == tid && tid != 0 {
                self.close_exited_thread(index, slot, emit);
            }
            return;
        }
        let running = running.get(index).copied().unwrap_or_default();
        self.look_at_active_thread(index, slot, tid, now_ns, previous_tick, snapshot, running, emit);
    }

    /// An exited thread of slot `index`: its held-back ticks, and its last unaccounted time, to
    /// its exit, from its exit record.
    fn close_exited_thread(&mut self, index: usize, slot: &sigprof::ThreadSlot, emit: &mut impl FnMut(WallSample<'_>)) {
        let (exited_ns, exit_cpu_ns) = (slot.exited_ns.load(Ordering::Relaxed), slot.exit_cpu_ns.load(Ordering::Relaxed));
        let thread = &mut self.threads[index];
        if thread.in_call.is_some() && thread.last_visit_ns != 0 {
            // In a call at the last look: it ended, and the thread soon after.
            let old_ns = exited_ns.saturating_sub(thread.last_visit_ns);
            thread.blocked_given_ns += old_ns;
            add_to_call(thread, old_ns, self.period_ns, exited_ns);
        }
        flush_pending(thread, emit);
        if exited_ns != 0 && exit_cpu_ns != 0 {
            self.account_outside_calls(index, exited_ns, Some(exit_cpu_ns), None, emit);
        }
        self.threads[index] = WallThread::default();
    }

    /// The look at a live thread (`tid`, slot `index`): the wall time since its last look goes
    /// to the call it is in, split with the call it was in when that one ended between the two
    /// looks; a thread in no interposed call has its CPU-time account kept instead. `running`
    /// is what was drained from its ring (see [`runs_outside`]).
    #[allow(clippy::too_many_arguments)]
    fn look_at_active_thread(
        &mut self,
        index: usize,
        slot: &sigprof::ThreadSlot,
        tid: u32,
        now_ns: u64,
        previous_tick: u64,
        snapshot: Option<&UnwindSnapshot>,
        running: RunningSamples,
        emit: &mut impl FnMut(WallSample<'_>),
    ) {
        let thread = &mut self.threads[index];
        if thread.tid != tid {
            flush_pending(thread, emit);
            *thread = WallThread { tid, ..WallThread::default() };
        }
        let started_ns = slot.started_ns.load(Ordering::Relaxed);
        if thread.cpu_read_at == 0 && started_ns > self.start_ns {
            // A thread started while tracing: its CPU account begins at its start, from zero.
            (thread.cpu_read_at, thread.cpu_ns) = (started_ns, 0);
        }
        let interval_ns = now_ns.saturating_sub(previous_tick.max(started_ns));
        // Time of ticks skipped since the thread's last look (see `skip_until`).
        let skipped_ns = if thread.last_visit_ns == 0 { 0 } else { now_ns.saturating_sub(thread.last_visit_ns.max(started_ns)).saturating_sub(interval_ns) };
        thread.last_visit_ns = now_ns;
        let ran_ns = running.periods.saturating_sub(thread.running_periods).saturating_mul(self.period_ns);
        thread.running_periods = running.periods;
        let blocked = slot.blocking.read().filter(|blocked| !runs_outside(blocked, running.last_ns));
        let same_call = thread.in_call.is_some() && blocked.is_some_and(|blocked| blocked.episode == thread.episode);
        // A new call at the same call site (a loop around `sleep`) keeps the looks spaced.
        let same_site = thread.in_call.is_some() && blocked.is_some_and(|blocked| (blocked.call, blocked.regs) == thread.site);
        let mut given_ns = interval_ns;
        thread.schedule_next_look(same_call || same_site, self.ticks);
        if same_call {
            // Still in the call seen before the skipped ticks: blocked all along (but for
            // what its signal handlers ran, if any).
            given_ns += skipped_ns.saturating_sub(ran_ns);
        } else if thread.in_call.is_some() && skipped_ns > 0 {
            // The call seen before ended within the skipped ticks: when the thread is in
            // another call now, that call's start (coarse clock) splits them; else the
            // moment is as likely as any other: the old call gets half.
            let span_ns = skipped_ns + interval_ns;
            // What the thread ran in between (its CPU samples) was not in either call.
            let old_ns = match blocked {
                Some(blocked) => {
                    let new_ns = now_ns.saturating_sub(blocked.since_ns).clamp(interval_ns, span_ns);
                    given_ns = new_ns;
                    (span_ns - new_ns).saturating_sub(ran_ns)
                }
                None => skipped_ns.saturating_sub(ran_ns) / 2,
            };
            thread.blocked_given_ns += old_ns;
            let old_end = now_ns.saturating_sub(span_ns) + old_ns;
            add_to_call(thread, old_ns, self.period_ns, old_end);
        }
        thread.in_call = blocked.map(|blocked| SampleState { state: ThreadState::Blocked, call: blocked.call });
        match blocked {
            Some(blocked) => {
                thread.blocked_given_ns += given_ns;
                self.sample_blocked(index, &blocked, slot, snapshot, now_ns, given_ns, emit);
            }
            None => {
                flush_pending(thread, emit);
                self.account_outside_calls(index, now_ns, None, snapshot, emit);
            }
        }
    }

    /// Hands out every thread's held-back blocked ticks (before a generation closes).
    pub fn flush(&mut self, emit: &mut impl FnMut(WallSample<'_>)) {
        for thread in &mut self.threads {
            flush_pending(thread, emit);
        }
    }

    /// A blocked sample of the thread of slot `index`, inside the interposed call `blocked`.
    #[allow(clippy::too_many_arguments)]
    fn sample_blocked(
        &mut self,
        index: usize,
        blocked: &Blocked,
        slot: &sigprof::ThreadSlot,
        snapshot: Option<&UnwindSnapshot>,
        now_ns: u64,
        interval_ns: u64,
        emit: &mut impl FnMut(WallSample<'_>),
    ) {
        let Some(thread) = self.threads.get_mut(index) else { return };
        let Some(snapshot) = snapshot else {
            self.counters.not_ready += 1;
            return;
        };
        let fresh = thread.frames.is_empty() || (thread.episode != blocked.episode && thread.site != (blocked.call, blocked.regs));
        if fresh {
            flush_pending(thread, emit);
            let walked = walk_from(&blocked.regs, true, slot.stack_bounds(), snapshot, &mut self.cache, &mut self.copy, self.max_depth);
            // Its Python frames too (when it runs CPython): they cannot change while it stays
            // in the call either.
            let walked = walked.map(|(mut frames, walk)| {
                pyframes::walk_python_of(thread.tid, pyframes::MAX_PYTHON_FRAMES, &mut |word| frames.push(word));
                (frames, walk)
            });
            // The copy and the walks are consistent only if the thread is still in that call.
            let Some((frames, walk)) = walked.filter(|_| slot.blocking.still_in(blocked.episode)) else {
                self.counters.torn += 1;
                return;
            };
            thread.frames = frames;
            thread.walk = walk;
            thread.site = (blocked.call, blocked.regs);
            self.counters.walks += 1;
        } else {
            self.counters.reused += 1;
        }
        thread.episode = blocked.episode;
        let state = SampleState { state: ThreadState::Blocked, call: blocked.call };
        let Some(weight) = whole_periods(&mut thread.remainder_ns, interval_ns, self.period_ns) else { return };
        match thread.pending.as_mut() {
            Some(pending) if pending.state == state => {
                pending.weight = pending.weight.saturating_add(weight);
                pending.last_ns = now_ns;
            }
            _ => {
                flush_pending(thread, emit);
                thread.pending = Some(Pending { weight, first_ns: now_ns, last_ns: now_ns, state });
            }
        }
        if thread.pending.is_some_and(|pending| now_ns.saturating_sub(pending.first_ns) >= COALESCE_NS) {
            flush_pending(thread, emit);
        }
    }

    /// The CPU-time account of a thread outside interposed calls: wall time it neither ran nor
    /// was given as blocked becomes a runnable or blocked sample once it reaches half a tick.
    /// `exit_cpu_ns` is the CPU time of a thread that exited at `now_ns` (its last account,
    /// which reads no clock and no `/proc`).
    fn account_outside_calls(
        &mut self,
        index: usize,
        now_ns: u64,
        exit_cpu_ns: Option<u64>,
        snapshot: Option<&UnwindSnapshot>,
        emit: &mut impl FnMut(WallSample<'_>),
    ) {
        let Some(thread) = self.threads.get_mut(index) else { return };
        if exit_cpu_ns.is_none() {
            if thread.skip_ticks > 0 {
                thread.skip_ticks -= 1;
                return;
            }
            // Out of reads for this tick: the thread's account spans to a later one.
            if self.cpu_reads_left == 0 {
                return;
            }
            self.cpu_reads_left -= 1;
        }
        let cpu_ns = exit_cpu_ns.unwrap_or_else(|| sigprof::thread_cpu_ns(thread.tid));
        if thread.cpu_read_at == 0 || cpu_ns == 0 {
            (thread.cpu_read_at, thread.cpu_ns, thread.blocked_given_ns, thread.balance_ns) = (now_ns, cpu_ns, 0, 0);
            return;
        }
        let elapsed = now_ns.saturating_sub(thread.cpu_read_at);
        let used = cpu_ns.saturating_sub(thread.cpu_ns);
        let unaccounted = elapsed as i64 - used as i64 - thread.blocked_given_ns as i64;
        (thread.cpu_read_at, thread.cpu_ns, thread.blocked_given_ns) = (now_ns, cpu_ns, 0);
        thread.balance_ns = (thread.balance_ns + unaccounted).max(-2 * self.tick_ns as i64);
        // A thread that does not run is read less and less often (up to every 16th tick):
        // many idle threads blocked outside interposed calls then cost little.
        if used == 0 {
            thread.idle_ticks = thread.idle_ticks.saturating_add(1);
            thread.skip_ticks = thread.idle_ticks.min(16) - 1;
        } else {
            thread.idle_ticks = 0;
        }
        if thread.balance_ns < (self.tick_ns / 2) as i64 {
            return;
        }
        let wall_ns = thread.balance_ns as u64;
        thread.balance_ns = 0;
        // Not run since it was classified (or gone): still where it was found then.
        let class = match thread.elsewhere {
            Some(class) if used == 0 || exit_cpu_ns.is_some() => class,
            None if exit_cpu_ns.is_some() => return,
            _ => {
                self.counters.proc_reads += 1;
                let class = classify(thread.tid);
                thread.elsewhere = Some(class);
                class
            }
        };
        let (state, stack) = match class {
            Elsewhere::Runnable => (SampleState { state: ThreadState::Runnable, call: 0 }, WallStack::LastRunning),
            Elsewhere::Blocked(call) => {
                // A thread that is gone keeps the stack of its last blocked sample.
                let gone_with_stack = exit_cpu_ns.is_some() && !thread.frames.is_empty() && thread.site.0 == call;
                let walked = if gone_with_stack {
                    Some(())
                } else {
                    snapshot.and_then(|snapshot| {
                        let site = syscall_site(thread.tid)?;
                        if thread.frames.is_empty() || thread.site != site {
                            let (frames, walk) = walk_from(&site.1, false, StackBounds::UNKNOWN, snapshot, &mut self.cache, &mut self.copy, self.max_depth)?;
                            // Still in the same system call at the same place: the copy was consistent.
                            if syscall_site(thread.tid) != Some(site) {
                                self.counters.torn += 1;
                                return None;
                            }
                            (thread.frames, thread.walk, thread.site, thread.episode) = (frames, walk, site, 0);
                            self.counters.walks += 1;
                        } else {
                            self.counters.reused += 1;
                        }
                        Some(())
                    })
                };
                let stack = if walked.is_some() { WallStack::Walked { frames: &thread.frames, walk: thread.walk } } else { WallStack::LastRunning };
                (SampleState { state: ThreadState::Blocked, call }, stack)
            }
        };
        if let Some(weight) = whole_periods(&mut thread.remainder_ns, wall_ns, self.period_ns) {
            emit(WallSample { tid: thread.tid, time_ns: now_ns, stack, weight, state });
        }
    }
}

/// Adds `ns` to the held-back ticks of the call the thread was in at its last look.
/// The added time ends at `end_ns`, the sample's time.
fn add_to_call(thread: &mut WallThread, ns: u64, period_ns: u64, end_ns: u64) {
    let Some(state) = thread.in_call else { return };
    let Some(weight) = whole_periods(&mut thread.remainder_ns, ns, period_ns) else { return };
    match thread.pending.as_mut() {
        Some(pending) => {
            pending.weight = pending.weight.saturating_add(weight);
            pending.last_ns = pending.last_ns.max(end_ns);
        }
        None => thread.pending = Some(Pending { weight, first_ns: end_ns, last_ns: end_ns, state }),
    }
}

/// Hands out `thread`'s held-back blocked ticks as one sample, with its current stack.
fn flush_pending(thread: &mut WallThread, emit: &mut impl FnMut(WallSample<'_>)) {
    if let Some(pending) = thread.pending.take() {
        let stack = WallStack::Walked { frames: &thread.frames, walk: thread.walk };
        emit(WallSample { tid: thread.tid, time_ns: pending.last_ns, stack, weight: pending.weight, state: pending.state });
    }
}

/// `wall_ns` plus the carried remainder as whole periods (`None` when less than one), keeping
/// the new remainder.
fn whole_periods(remainder_ns: &mut u64, wall_ns: u64, period_ns: u64) -> Option<u32> {
    let total = wall_ns + *remainder_ns;
    *remainder_ns = total % period_ns;
    let periods = total / period_ns;
    (periods > 0).then(|| u32::try_from(periods).unwrap_or(u32::MAX))
}

/// Whether thread `tid` waits for a CPU (`R` in its stat) or is blocked (any other state), and
/// in which system call.
fn classify(tid: u32) -> Elsewhere {
    let stat = crate::own_file::read_proc_text(&format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses and may contain anything.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    match state {
        Some('R') => Elsewhere::Runnable,
        _ => Elsewhere::Blocked(syscall_site(tid).map_or(0, |(call, _)| call)),
    }
}

/// The system call thread `tid` is blocked in, as a call code, with its stack and instruction
/// pointers, from `/proc/self/task/TID/syscall` (`nr args… sp pc`); `None` when it is in none.
fn syscall_site(tid: u32) -> Option<(u32, Regs)> {
    let text = crate::own_file::read_proc_text(&format!("/proc/self/task/{tid}/syscall"))?;
    parse_syscall_line(&text)
}

/// Parses a `/proc/…/syscall` line.
fn parse_syscall_line(text: &str) -> Option<(u32, Regs)> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let number: i64 = fields.first()?.parse().ok()?;
    let number = u32::try_from(number).ok()?;
    let hex = |field: &str| u64::from_str_radix(field.trim_start_matches("0x"), 16).ok();
    let (sp, pc) = (hex(fields.get(fields.len().checked_sub(2)?)?)?, hex(fields.last()?)?);
    Some((SYSCALL_CODE_BASE + number, Regs { pc, sp, fp: 0, lr: 0 }))
}

/// Walks a stack from `regs`, reading a copy of its top. With `in_wrapper`, the first frame
/// (inside sigtrace's interposed function) is left out and the stack starts at the call site in
/// its caller, given as the call instruction's address (return address − 1) so that it names the
/// calling line. `None` when nothing could be read.
fn walk_from(
    regs: &Regs,
    in_wrapper: bool,
    bounds: StackBounds,
    snapshot: &UnwindSnapshot,
    cache: &mut DwarfCache,
    copy: &mut [u64],
    max_depth: usize,
) -> Option<(Vec<u64>, u8)> {
    let low = regs.sp.checked_sub(RED_ZONE)? & !7;
    let high = if bounds.is_known() && bounds.contains(regs.sp) { bounds.hi } else { u64::MAX };
    let wanted = (high.saturating_sub(low) as usize).min(copy.len() * 8);
    let copied = copy_own_memory(low, &mut copy[..wanted / 8]);
    if copied == 0 {
        return None;
    }
    let copy_end = low + copied as u64;
    let mut read = |address: u64| {
        if !address.is_multiple_of(8) || address < low || address >= high {
            None
        } else if address + 8 <= copy_end {
            Some(copy[((address - low) / 8) as usize])
        } else {
            read_word_via_kernel(address)
        }
    };
    let mut frames = Vec::with_capacity(32);
    let mut to_skip = usize::from(in_wrapper);
    let mut push = |frame: u64| {
        if to_skip > 0 {
            to_skip -= 1;
        } else if frames.is_empty() && in_wrapper {
            frames.push(frame.saturating_sub(1));
        } else {
            frames.push(frame);
        }
    };
    let depth = max_depth + usize::from(in_wrapper);
    let (_, end) = walk_dwarf_with_reads(regs, &mut read, &snapshot.dwarf, cache, &snapshot.code, depth, &mut push);
    if frames.is_empty() {
        return None;
    }
    Some((frames, WalkMethod::Dwarf.code(end)))
}

/// Copies our own memory from `address` into `into` with `process_vm_readv`, which stops at an
/// unmapped page instead of faulting. Returns the bytes copied (a multiple of 8 or less).
fn copy_own_memory(address: u64, into: &mut [u64]) -> usize {
    let local = libc::iovec { iov_base: into.as_mut_ptr().cast(), iov_len: into.len() * 8 };
    let remote = libc::iovec { iov_base: address as *mut libc::c_void, iov_len: into.len() * 8 };
    // SAFETY: `local` is our own writable buffer of that length; `remote` is only read, and
    // checked, by the kernel.
    let copied = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(copied).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stops_at_unmapped_memory() {
        let words = [7u64; 16];
        let mut into = [0u64; 16];
        assert_eq!(copy_own_memory(words.as_ptr() as u64, &mut into), 128);
        assert_eq!(into, words);
        assert_eq!(copy_own_memory(8, &mut into), 0, "page zero is never mapped");
    }

    #[test]
    fn proc_syscall_lines_are_parsed() {
        let line = "202 0x7f00 0x80 0x0 0x0 0x0 0x0 0x7ffd1000 0x7f12345678\n";
        let (call, regs) = parse_syscall_line(line).expect("a system call");
        assert_eq!(call, SYSCALL_CODE_BASE + 202);
        assert_eq!((regs.sp, regs.pc), (0x7ffd_1000, 0x7f_1234_5678));
        assert_eq!(parse_syscall_line("running\n"), None);
        assert_eq!(parse_syscall_line("-1 0x7ffd1000 0x7f12345678\n"), None, "blocked, but not in a system call");
    }

    #[test]
    fn whole_periods_carry_the_remainder() {
        let mut remainder = 0;
        assert_eq!(whole_periods(&mut remainder, 1_500, 1_000), Some(1));
        assert_eq!(whole_periods(&mut remainder, 400, 1_000), None);
        assert_eq!(whole_periods(&mut remainder, 100, 1_000), Some(1), "500 + 400 + 100");
        assert_eq!(remainder, 0);
    }
}
