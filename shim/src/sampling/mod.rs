//! How the threads are sampled: the timer source and each thread's timer (`timers`), and in
//! wall-clock mode the marks of the blocking calls a thread is in (`call_marks`); pausing and
//! resuming all of it (`pause`), and the sleeps its toggle signal interrupted (`toggle_waits`).

pub(crate) mod call_marks;
pub(crate) mod pause;
pub(crate) mod timers;
pub(crate) mod toggle_waits;
