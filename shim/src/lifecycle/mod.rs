//! The shim's life, below the interposed entry points: the state machine (`state`), the
//! starts of a trace (`start`: start-up, a forked child, a failed exec), its end (`stop`), when the drain thread runs (`drain_thread`),
//! entering a sandbox (`sandbox`), death by a signal (`fatal_signals`), and each thread's slot
//! from its start to its exit (`threads`).

pub(crate) mod drain_thread;
pub(crate) mod fatal_signals;
pub(crate) mod sandbox;
pub(crate) mod start;
pub(crate) mod state;
pub(crate) mod stop;
pub(crate) mod threads;
