//! `info`'s account of the sampling sources: per thread, which timer sampled it, how much of
//! its CPU time each sampled, and why `SIGTRACE_TIMER=auto` moved it (the trace's `S` chunks).

use std::fmt::Write as _;

use format::{SourceKind, SourceTable};
use serde_json::{json, Value};

use super::ThreadTotals;
use crate::format_numbers::seconds;

/// Why a thread was moved last, in words: the switch rate that decided and what it would cost
/// a perf event at the measured price.
fn why_moved(rate: u64, to: SourceKind, cost_ns: u64) -> String {
    let share = if cost_ns == 0 {
        String::new()
    } else {
        format!(", {:.1}% of its CPU time at {:.1} µs a switch", rate as f64 * cost_ns as f64 / 1e7, cost_ns as f64 / 1e3)
    };
    let verdict = match to {
        SourceKind::Posix => "too many switches for a perf event",
        _ => "few switches: it computes",
    };
    format!("{verdict} ({rate} switches per CPU-second{share})")
}

/// The text section, or nothing for a trace without source accounts.
pub fn text(sources: &SourceTable, threads: &[ThreadTotals]) -> String {
    let mut out = String::new();
    if sources.threads.is_empty() {
        return out;
    }
    let cost = match sources.switch_cost_ns {
        0 => String::new(),
        ns => format!(" (a perf event costs {:.1} µs per context switch here)", ns as f64 / 1e3),
    };
    let _ = writeln!(out, "sampling sources{cost}:");
    let _ = writeln!(out, "  {:>8}  {:<16} {:<6} {:>11} {:>11} {:>6}  last move", "tid", "name", "source", "perf cpu", "posix cpu", "moves");
    let mut accounts: Vec<_> = sources.threads.iter().collect();
    accounts.sort_by_key(|account| account.tid);
    for account in accounts {
        let name = threads.iter().find(|thread| thread.tid == account.tid).map_or("", |thread| thread.name.as_str());
        let moves = account.moves_to_perf + account.moves_to_posix;
        let why = if moves == 0 {
            "-".to_string()
        } else {
            format!("to {}: {}", account.last.name(), why_moved(account.last_move_switch_rate, account.last, sources.switch_cost_ns))
        };
        let _ = writeln!(
            out,
            "  {:>8}  {:<16} {:<6} {:>11} {:>11} {:>6}  {why}",
            account.tid,
            name,
            account.last.name(),
            seconds(account.perf_cpu_ns),
            seconds(account.posix_cpu_ns),
            moves
        );
    }
    out
}

/// The JSON fields: `switch_cost_ns` and `sources`, one object per thread.
pub fn json_fields(sources: &SourceTable) -> Vec<(String, Value)> {
    let threads: Vec<Value> = sources
        .threads
        .iter()
        .map(|account| {
            json!({
                "tid": account.tid,
                "source": account.last.name(),
                "perf_cpu_ns": account.perf_cpu_ns,
                "posix_cpu_ns": account.posix_cpu_ns,
                "moves_to_perf": account.moves_to_perf,
                "moves_to_posix": account.moves_to_posix,
                "last_move_switch_rate": account.last_move_switch_rate,
            })
        })
        .collect();
    vec![("switch_cost_ns".into(), json!(sources.switch_cost_ns)), ("sources".into(), Value::Array(threads))]
}
