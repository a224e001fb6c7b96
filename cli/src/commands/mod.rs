//! The subcommands of `sigtrace`, one module each: what `main.rs` parses is run here. Each
//! reads traces through `crate::profile`, names addresses through `crate::symbolize` and
//! prints through `crate::output`; `export` and `diff` draw with `crate::export`.

pub mod diff;
pub mod events;
pub mod export;
pub mod info;
pub mod record;
pub mod report;
pub mod top;
