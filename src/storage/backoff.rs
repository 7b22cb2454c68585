//! How long an upload waits before its next attempt: doubling from `FIRST` up to `MAX`, for ever (the file is
//! safe on disk; storage that comes back gets it within `MAX`).

use std::time::Duration;

pub const FIRST: Duration = Duration::from_millis(500);
pub const MAX: Duration = Duration::from_secs(5);

/// The wait after the `failures`-th failed attempt in a row (1 for the first).
pub fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_half_a_second_up_to_five_seconds() {
        let waits: Vec<u64> = (1..=8).map(|n| delay(n).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
        assert_eq!(
            delay(0),
            Duration::from_millis(500),
            "no failure yet counts as the first"
        );
        assert_eq!(
            delay(u32::MAX),
            Duration::from_secs(5),
            "no overflow after many failures"
        );
    }
}
