//! sigtrace's configuration, defined once for the shim (which reads it from the `SIGTRACE_*`
//! variables at start-up) and the CLI (`sigtrace record`'s flags and start line): every
//! variable's name, values, default and meaning ([`VARIABLES`], the README's table), the
//! choices ([`Mode`], [`TimerChoice`], [`UnwindChoice`], [`LogLevel`]), the parser
//! ([`Config::from_vars`]) and the sampling period ([`period_ns`]).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod choices;
mod parse;
mod period;
mod variables;

pub use choices::{Choice, DrainThreadChoice, LogLevel, Mode, TimerChoice, UnwindChoice};
pub use parse::{parse_rotation, Config, Rotation};
pub use period::period_ns;
pub use variables::{
    closest_variable, is_known, variable_names, NumberVariable, Values, Variable, BUFFER_KB, DEFAULT_OUTPUT, DEPTH, DRAIN_MS, GENERATION_MS, HZ, KEEP,
    MAX_THREADS, PREFIX, VARIABLES, WALL_HZ,
};
