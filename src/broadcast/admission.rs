//! Admission: a broadcast starts only if the server has room for it, so one more never makes every broadcast
//! drop frames. Cost is estimated in cores from the canvas, frame rate and participants. The coefficients are
//! fitted to lie at or above every figure in the committed `callcast bench` runs (`docs/bench-*.jsonl`, checked by
//! a unit test): a broadcast that costs more than estimated could make all of them drop frames, one refused too
//! early only waits.

use super::spec::VideoSpec;

/// Participants a broadcast is estimated for at least: people join after the start, so a broadcast admitted
/// for an empty room must not overcommit the server when they do. Also the size of a call we cannot see (Janus).
pub const ASSUMED_PARTICIPANTS: usize = 4;

/// Per broadcast, whatever its size: pipelines, audio mix and AAC, muxers, outputs. Set by the highest
/// one-participant figure (0.562 core, 720p30, matrix run of 2026-11-26) less one participant and the encode.
const BASE_CORES: f64 = 0.25;
/// Compositing and encoding 1280x720@30 (x264 superfast), scaled by pixel rate; set by 4 participants at
/// 1080p30 (0.96 core in the same run).
const CORES_PER_720P30: f64 = 0.25;
/// Receiving, decoding and scaling one 640x360@30 participant with audio: the slope from 1 to 9 participants
/// (0.064 core each in the same run), rounded up.
const CORES_PER_PARTICIPANT: f64 = 0.07;

/// An audio-only broadcast (`video: null`), whatever its size: the mix, its AAC encode (about 0.05 core of it) and
/// the HLS/recording muxers. `callcast bench --audio-only` measured 0.083 core for 4 participants above the call's
/// own 0.135 (2026-11-30, machine 99% busy), rounded up.
pub const AUDIO_ONLY_CORES: f64 = 0.1;

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

    /// Every scenario of every committed bench run (`docs/bench-*.jsonl`): participants, canvas and preset, and
    /// the server's cores per broadcast.
    fn measured_runs() -> Vec<(String, usize, VideoSpec, f64)> {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        let mut runs = Vec::new();
        for entry in std::fs::read_dir(&docs).expect("docs/") {
            let path = entry.expect("docs/ entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if !(name.starts_with("bench-") && name.ends_with(".jsonl")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a bench run");
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let row: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                let scenario = &row["scenario"];
                let number = |key: &str| {
                    scenario[key]
                        .as_u64()
                        .unwrap_or_else(|| panic!("{name}:{}: scenario.{key}", n + 1))
                };
                let mut spec = video(number("width") as u32, number("height") as u32);
                spec.fps = number("fps") as u32;
                let per_broadcast = row["cores"].as_f64().expect("cores") / number("broadcasts") as f64;
                let label = format!("{name}:{} ({scenario})", n + 1);
                runs.push((label, number("participants") as usize, spec, per_broadcast));
            }
        }
        runs
    }

    #[test]
    fn estimates_are_at_or_above_every_committed_measurement() {
        let runs = measured_runs();
        assert!(runs.len() >= 20, "only {} bench rows found under docs/", runs.len());
        for (label, participants, spec, measured) in &runs {
            let estimate = estimate_cores(spec, *participants);
            assert!(
                estimate >= *measured,
                "{label}: estimated {estimate:.3} < measured {measured:.3}"
            );
        }
    }

    #[test]
    fn estimates_stay_within_a_third_of_a_core_of_the_worst_measurement() {
        // Generous is safe but wastes machines: the estimate for each scenario stays within 0.3 core of the
        // highest figure measured for it (the per-scenario maximum over runs and presets).
        let mut worst: Vec<(usize, (u32, u32, u32), f64)> = Vec::new();
        for (_, participants, spec, measured) in measured_runs() {
            let key = (spec.width, spec.height, spec.fps);
            match worst.iter_mut().find(|(p, k, _)| *p == participants && *k == key) {
                Some(entry) => entry.2 = entry.2.max(measured),
                None => worst.push((participants, key, measured)),
            }
        }
        for (participants, (width, height, fps), measured) in worst {
            let mut spec = video(width, height);
            spec.fps = fps;
            let estimate = estimate_cores(&spec, participants);
            assert!(
                estimate - measured <= 0.3,
                "{participants} at {width}x{height}@{fps}: estimated {estimate:.3}, at most {measured:.3} measured"
            );
        }
    }

    #[test]
    fn estimates_known_values() {
        // Written out by hand from the coefficients, so a change to them is seen here as well.
        let cases = [
            (1280, 720, 1, 0.57),
            (1280, 720, 4, 0.78),
            (1280, 720, 16, 1.62),
            (1920, 1080, 4, 1.0925),
        ];
        for (width, height, participants, expected) in cases {
            let estimate = estimate_cores(&video(width, height), participants);
            assert!(
                (estimate - expected).abs() < 1e-9,
                "{width}x{height} {participants}: {estimate}"
            );
        }
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
