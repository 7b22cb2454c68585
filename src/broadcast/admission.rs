//! Admission: a broadcast starts only if the server has room for it, so one more never makes every broadcast
//! drop frames. Cost is estimated in cores from the canvas, frame rate and participants, with figures measured by
//! `callcast bench` (docs/benchmarks.md), rounded up: a broadcast that costs more than estimated could make all
//! of them drop frames, one refused too early only waits.

use super::spec::VideoSpec;

/// Participants a broadcast is estimated for at least: people join after the start, so a broadcast admitted
/// for an empty room must not overcommit the server when they do. Also the size of a call we cannot see (Janus).
pub const ASSUMED_PARTICIPANTS: usize = 4;

/// Per broadcast, whatever its size: pipelines, mixers, outputs.
const BASE_CORES: f64 = 0.1;
/// Compositing and encoding 1280x720@30 (x264 superfast), scaled by pixel rate.
const CORES_PER_720P30: f64 = 0.25;
/// Receiving, decoding and scaling one 640x360@30 participant with audio.
const CORES_PER_PARTICIPANT: f64 = 0.065;

/// Participants a broadcast is estimated for: those in its call `now` (None: unknown), at least
/// `ASSUMED_PARTICIPANTS`, never more than the `max_tiles` it shows.
pub fn participants_for(now: Option<usize>, max_tiles: usize) -> usize {
    now.unwrap_or(0).max(ASSUMED_PARTICIPANTS).min(max_tiles)
}

/// Estimated cores a broadcast uses with `participants` on screen.
pub fn estimate_cores(video: &VideoSpec, participants: usize) -> f64 {
    let pixel_rate = f64::from(video.width) * f64::from(video.height) * f64::from(video.fps);
    BASE_CORES + CORES_PER_720P30 * pixel_rate / (1280.0 * 720.0 * 30.0) + CORES_PER_PARTICIPANT * participants as f64
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most broadcasts running at once (0: no limit besides the CPU budget).
    pub max_broadcasts: usize,
    /// Cores all running broadcasts may use together, by estimate.
    pub cpu_budget: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_broadcasts: 0,
            cpu_budget: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        }
    }
}

/// Why a broadcast was not started.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("this server already runs {0} broadcasts (max_broadcasts)")]
    TooMany(usize),
    #[error("not enough CPU: this broadcast needs about {needed:.2} cores, {free:.2} of the {budget:.2}-core budget are free")]
    NoCpu { needed: f64, free: f64, budget: f64 },
}

impl Limits {
    /// Decides on a broadcast of `cost` cores while `running` (their costs) run.
    pub fn admit(&self, running: &[f64], cost: f64) -> Result<(), Refusal> {
        if self.max_broadcasts > 0 && running.len() >= self.max_broadcasts {
            return Err(Refusal::TooMany(running.len()));
        }
        let used: f64 = running.iter().sum();
        if used + cost > self.cpu_budget + 1e-9 {
            return Err(Refusal::NoCpu {
                needed: cost,
                free: (self.cpu_budget - used).max(0.0),
                budget: self.cpu_budget,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(width: u32, height: u32) -> VideoSpec {
        VideoSpec {
            width,
            height,
            fps: 30,
            bitrate_kbps: 2500,
            keyframe_interval_s: 2,
            preset: Default::default(),
            passthrough: true,
        }
    }

    #[test]
    fn estimates_match_the_benchmark() {
        // docs/benchmarks.md (callcast bench, 720p30 superfast): 1, 4, 9, 16 participants measured 0.37, 0.40,
        // 0.91, 1.17 cores; 4 participants at 1080p 0.86. Estimates stay at or above them.
        for (participants, measured) in [(1, 0.37), (4, 0.40), (9, 0.91), (16, 1.17)] {
            let estimate = estimate_cores(&video(1280, 720), participants);
            assert!(
                (measured..measured + 0.25).contains(&estimate),
                "{participants}: {estimate}"
            );
        }
        let full_hd = estimate_cores(&video(1920, 1080), 4);
        assert!((0.86..1.1).contains(&full_hd), "{full_hd}");
    }

    #[test]
    fn a_broadcast_is_estimated_for_the_call_it_may_have() {
        assert_eq!(
            participants_for(Some(0), 9),
            ASSUMED_PARTICIPANTS,
            "an empty room fills up"
        );
        assert_eq!(participants_for(None, 9), ASSUMED_PARTICIPANTS, "a call we cannot see");
        assert_eq!(participants_for(Some(7), 9), 7);
        assert_eq!(participants_for(Some(12), 9), 9, "only the tiles shown cost");
        assert_eq!(participants_for(Some(0), 2), 2);
    }

    #[test]
    fn admission_counts_and_budgets() {
        let limits = Limits {
            max_broadcasts: 2,
            cpu_budget: 2.0,
        };
        assert_eq!(limits.admit(&[], 1.0), Ok(()));
        assert_eq!(limits.admit(&[1.0], 1.0), Ok(()));
        assert_eq!(limits.admit(&[0.1, 0.1], 0.1), Err(Refusal::TooMany(2)));
        assert!(matches!(limits.admit(&[1.5], 1.0), Err(Refusal::NoCpu { .. })));
    }
}
