//! How the threads are sampled: the timer source and each thread's timer (`timers`), and in
//! wall-clock mode the marks of the blocking calls a thread is in (`call_marks`); pausing and
//! resuming all of it (`pause`), and the sleeps its toggle signal interrupted (`toggle_waits`).

pub(crate) mod call_marks;
pub(crate) mod pause;
pub(crate) mod timers;
pub(crate) mod toggle_waits;

/// `SIGTRACE_ROTATE` as the writer's rotation rule.
pub(crate) fn rotation_rule(rotation: ::config::Rotation) -> writer::rotation::Rule {
    match rotation {
        ::config::Rotation::Every(ns) => writer::rotation::Rule::Every(ns),
        ::config::Rotation::Size(bytes) => writer::rotation::Rule::Size(bytes),
    }
}
