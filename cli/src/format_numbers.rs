//! How the CLI writes numbers for people: percentages and shares, durations, a wall time by
//! thread state, counts with thousands separators, bytes in hex. Every command formats them
//! through here.

use format::ThreadState;

/// `98.7%`, or `n/a` when there was nothing to compare with (`ratio` 1.0 is 100%).
pub fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(ratio) => format!("{:.1}%", ratio * 100.0),
        None => "n/a".into(),
    }
}

/// `part` in percent of `whole`, as a number (0 when `whole` is 0).
pub fn percent_of(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// `ns` in seconds, three decimals (`1.502 s`): one unit down a column.
pub fn seconds(ns: u64) -> String {
    seconds_with_decimals(ns, 3)
}

/// `ns` in seconds with `decimals` decimals (`1.50 s` with 2).
pub fn seconds_with_decimals(ns: u64, decimals: usize) -> String {
    format!("{:.decimals$} s", ns as f64 / 1e9)
}

/// `ms` milliseconds, three decimals (`1.001 ms`).
pub fn milliseconds(ms: f64) -> String {
    format!("{ms:.3} ms")
}

/// `ns` as seconds from one second up, else as milliseconds, three decimals (`1.001 ms`).
pub fn seconds_or_milliseconds(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        seconds(ns)
    } else {
        milliseconds(ns as f64 / 1e6)
    }
}

/// Wall time by thread state (indexed by `ThreadState as usize`), with each state's share:
/// `7.512 s: running 1.502 s (20.0%), runnable 0.010 s (0.1%), blocked 6.000 s (79.9%)`.
pub fn time_by_state(state_ns: [u64; 3]) -> String {
    let all = state_ns.iter().fold(0u64, |sum, &ns| sum.saturating_add(ns));
    let parts: Vec<String> = ThreadState::ALL
        .iter()
        .map(|&state| format!("{} {} ({:.1}%)", state.name(), seconds(state_ns[state as usize]), percent_of(state_ns[state as usize], all)))
        .collect();
    format!("{}: {}", seconds(all), parts.join(", "))
}

/// `1234567` → `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let groups: Vec<&str> = digits.as_bytes().rchunks(3).rev().map(|group| std::str::from_utf8(group).unwrap_or_default()).collect();
    groups.join(",")
}

/// Bytes as lower-case hex, two digits each (a build id: `a1b2…`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(9_950), "9,950");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn percentages_durations_and_hex() {
        assert_eq!(percent(Some(0.987)), "98.7%");
        assert_eq!(percent(None), "n/a");
        assert_eq!(percent_of(1, 4), 25.0);
        assert_eq!(percent_of(1, 0), 0.0);
        assert_eq!(seconds(1_502_000_000), "1.502 s");
        assert_eq!(seconds_with_decimals(1_502_000_000, 2), "1.50 s");
        assert_eq!(milliseconds(1e3 / 999.0), "1.001 ms");
        assert_eq!(seconds_or_milliseconds(1_001_001), "1.001 ms");
        assert_eq!(seconds_or_milliseconds(2_000_000_000), "2.000 s");
        assert_eq!(hex(&[0xa1, 0x02]), "a102");
        assert_eq!(
            time_by_state([1_502_000_000, 10_000_000, 6_000_000_000]),
            "7.512 s: running 1.502 s (20.0%), runnable 0.010 s (0.1%), blocked 6.000 s (79.9%)"
        );
    }
}
