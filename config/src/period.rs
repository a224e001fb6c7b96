//! The sampling period: how much time one sample stands for.

/// The period of `hz` events per second, in ns: `1e9 / hz`; 0 when `hz` is 0 (a trace's
/// header may say 0). Async-signal-safe.
#[inline]
pub const fn period_ns(hz: u32) -> u64 {
    match 1_000_000_000u64.checked_div(hz as u64) {
        Some(period) => period,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(period_ns(999), 1_001_001);
        assert_eq!(period_ns(1), 1_000_000_000);
        assert_eq!(period_ns(10_000), 100_000);
        assert_eq!(period_ns(0), 0);
    }
}
