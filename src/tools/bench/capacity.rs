//! `callcast bench --capacity`: how many concurrent broadcasts this machine holds. Each step runs N broadcasts
//! (each its own room of replaying participants, to HLS and the local nginx-rtmp) for a short window; the count
//! grows until a step drops or skips `MAX_DROPPED_PCT` of its frames or pictures, starting near what the floor
//! predicts so the run takes minutes. The per-broadcast floor (`floor.rs`) is measured in the same run, and
//! `floor_capacity` is the cores of the machine over it: what the machine would hold if every broadcast cost no
//! more than the bare pipeline and nothing else ran.

use super::ingest::NginxRtmp;
use super::peer::free_port;
use super::scenario::{self, Scenario};
use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Most broadcasts a step will try, whatever the floor predicts.
const MAX_STEP: u32 = 48;

/// One step's figures, as the JSON line lists them.
fn step_json(figures: &scenario::Figures, share: f64) -> Value {
    json!({
        "broadcasts": figures.scenario.broadcasts,
        "cores": figures.cores,
        "publisher_cores": figures.publisher_cores,
        "fps_out": figures.fps_out,
        "dropped_pct": figures.dropped_pct,
        "tile_skipped_pct": figures.tile_skipped_pct,
        "worst_pct": share,
        "latency_ms_p50": figures.latency_ms_p50,
        "machine_busy": figures.machine_busy,
        "clean": share < super::MAX_DROPPED_PCT,
    })
}

/// Where the search starts: three quarters of the floor's prediction (at least 1, at most `max`).
fn first_step(floor_capacity: f64, max: u32) -> u32 {
    ((floor_capacity * 0.75).floor() as u32).clamp(1, max)
}

/// Runs the search for `base` (its `broadcasts` ignored); `max` caps the count (None: from the floor). Prints a
/// line per step on stderr; returns the JSON summary.
pub fn run(exe: &Path, base: &Scenario, max: Option<u32>) -> Result<Value> {
    // The floor's scaler settings are GStreamer structures.
    crate::gst_util::init()?;
    let ingest = NginxRtmp::try_start_on(free_port())?;
    let single = Scenario {
        broadcasts: 1,
        ..base.clone()
    };
    let floor = super::floor::floor_cores(&single, &ingest.url("floor"))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let floor_capacity = if floor > 0.0 { cores / floor } else { f64::INFINITY };
    let max = max
        .unwrap_or((floor_capacity * 1.5).ceil().min(f64::from(MAX_STEP)) as u32)
        .max(1);
    eprintln!("floor {floor:.3} core per broadcast: {floor_capacity:.2} broadcasts on {cores} cores");
    let mut steps = Vec::new();
    let mut capacity = 0;
    // The busiest the machine was over a step's window (0..1): near 1, something else took the cores too, and
    // the capacity found is the machine's share left to callcast, not the machine's.
    let mut busiest: f64 = 0.0;
    let mut n = first_step(floor_capacity, max);
    // Grows from the first step while clean; shrinks while not, until one is clean.
    let mut growing: Option<bool> = None;
    loop {
        let sc = Scenario {
            broadcasts: n,
            ..base.clone()
        };
        let figures = scenario::run(exe, &sc, &ingest)?;
        let line = serde_json::to_value(&figures)?;
        let share = super::dropped_share(&line);
        let clean = share < super::MAX_DROPPED_PCT;
        eprintln!(
            "{n} broadcasts: server {:.3} cores, publishers {:.3}, worst {share:.2}% dropped or skipped: {}",
            figures.cores,
            figures.publisher_cores,
            if clean { "clean" } else { "not clean" }
        );
        steps.push(step_json(&figures, share));
        busiest = busiest.max(figures.machine_busy);
        if clean {
            capacity = capacity.max(n);
        }
        let grow = *growing.get_or_insert(clean);
        n = match (grow, clean) {
            (true, true) if n < max => n + 1,
            (false, false) if n > 1 => n - 1,
            _ => break,
        };
    }
    let ratio =
        (floor_capacity.is_finite() && floor_capacity > 0.0).then(|| round2(f64::from(capacity) / floor_capacity));
    Ok(json!({
        "capacity": capacity,
        "floor_cores": floor,
        "floor_capacity": round2(floor_capacity),
        "capacity_per_floor_capacity": ratio,
        "machine_cores": cores,
        "max_dropped_pct": super::MAX_DROPPED_PCT,
        // The search stopped at its cap while still clean: the machine may hold more.
        "capped": capacity == max,
        "machine_busy_max": busiest,
        "scenario": {
            "participants": base.participants,
            "width": base.width,
            "height": base.height,
            "fps": base.fps,
            "bitrate_kbps": base.bitrate_kbps,
            "publisher": base.publisher,
            "step_s": base.window.as_secs(),
            "warmup_s": base.warmup.as_secs(),
        },
        "steps": steps,
    }))
}

/// The warm-up before each step's window: the broadcasts' first keyframes and joins behind it.
pub fn warmup_for(step: Duration) -> Duration {
    (step / 2).min(Duration::from_secs(5))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_starts_at_three_quarters_of_the_floor_prediction() {
        assert_eq!(first_step(8.7, 14), 6);
        assert_eq!(first_step(0.9, 14), 1, "at least one broadcast");
        assert_eq!(first_step(40.0, 10), 10, "never past the cap");
    }
}
