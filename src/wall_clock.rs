//! The wall clock as the service reads it everywhere: milliseconds since the Unix epoch. Status times, media
//! watchdogs, retry schedules and keyframe throttles all compare values of this one function.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch now (0 if the system clock is set before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_2020_and_does_not_go_back() {
        let first = super::now_ms();
        assert!(first > 1_577_836_800_000, "{first}");
        assert!(super::now_ms() >= first);
    }
}
