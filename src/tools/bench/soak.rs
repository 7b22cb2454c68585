//! `callcast bench --soak DURATION`: a long show under churn. Participants join and leave every few seconds,
//! the layout switches, the RTMP server is restarted every few minutes. Reports what the server holds at the
//! start and the end (memory, threads, open files), reconnects, dropped frames, the A/V offset over the whole
//! show (sync marks read back from the HLS output) and how far the outputs' timestamps drifted from the wall clock.

use super::av_sync::{beep_times, flash_times, offsets};
use super::ingest::NginxRtmp;
use super::peer::{free_port, Peer};
use super::server::{publisher, BenchServer};
use crate::procstat::{usage, Usage};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const ROOM: &str = "soak";
const WARMUP: Duration = Duration::from_secs(15);
const CHURN_EVERY: Duration = Duration::from_secs(5);
const LAYOUT_EVERY: Duration = Duration::from_secs(7);
const LEAVE_SETTLE: Duration = Duration::from_secs(7);
const TEMPLATES: [&str; 4] = ["grid", "speaker", "pip", "single"];

#[derive(Debug, serde::Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub start: Usage,
    pub end: Usage,
    pub rss_mb_max: f64,
    pub joins: u32,
    pub layout_switches: u32,
    pub rtmp_restarts: u32,
    pub rtmp_reconnects: u64,
    pub frames_out: u64,
    pub frames_dropped: u64,
    pub av_marks: usize,
    pub av_offset_ms_mean: Option<f64>,
    pub av_offset_ms_p50: Option<f64>,
    pub av_offset_ms_worst: Option<f64>,
    /// Share of the marks whose offset is within +/-45 ms.
    pub av_within_45ms_pct: Option<f64>,
    /// Mean offset of the first and the last tenth of the marks: sync that holds from start to end.
    pub av_offset_ms_first_tenth: Option<f64>,
    pub av_offset_ms_last_tenth: Option<f64>,
    /// How much the outputs' timestamps advanced beyond the wall clock between the first and last sample.
    pub timeline_drift_ms: Option<f64>,
    pub timeline_drift_ms_per_hour: Option<f64>,
    /// Server memory at each quarter of the run (MB): a plateau, or growth.
    pub rss_mb_quarters: Vec<f64>,
}

pub fn run(exe: &Path, duration: Duration) -> Result<SoakReport> {
    let mut ingest = NginxRtmp::try_start_on(free_port())?;
    let server = BenchServer::start(exe)?;
    let whip = server.whip_url(ROOM);
    // Black and silent but for the marks participant, so its flashes and beeps are the only ones.
    let quiet = ["--pattern", "color:000000", "--tone", "0"];
    let _marks = publisher(exe, &whip, "marks", &["--sync-marks"])?;
    let _steady = publisher(exe, &whip, "steady", &quiet)?;
    let listed = server.wait_participants(ROOM, 2, Duration::from_secs(60))?;
    let marks_id = listed
        .iter()
        .find(|p| p["name"] == "marks")
        .and_then(|p| p["id"].as_str())
        .context("the marks participant")?
        .to_string();
    // Every segment stays listed (2 s each, at most 1000): the drift and A/V offset are read from all of them.
    let window = (duration.as_secs() / 2 + 60).min(1000);
    let created = server.send(
        "POST",
        "/v1/broadcasts",
        Some(&json!({
            "source": {"kind": "room", "room": ROOM},
            "layout": {"template": "grid", "pin": marks_id},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 2, "window": window}, {"kind": "rtmp", "url": ingest.url(ROOM)}],
            "max_duration_s": duration.as_secs() + 600,
        })),
    )?;
    let id = created["id"].as_str().context("broadcast id")?.to_string();
    let path = format!("/v1/broadcasts/{id}");
    std::thread::sleep(WARMUP);
    let pid = server.pid();
    let start = usage(&pid).context("server usage")?;
    let timeline_start = timeline(&server.send("GET", &path, None)?);
    let began = Instant::now();
    let mut quarters = Vec::new();
    let restart_every = (duration / 3).clamp(Duration::from_secs(20), Duration::from_secs(180));
    let (mut churn, mut joins, mut switches, mut restarts) = (None::<Peer>, 0u32, 0u32, 0u32);
    let (mut next_churn, mut next_layout, mut next_restart) = (CHURN_EVERY, LAYOUT_EVERY, restart_every);
    let mut rss_max = start.rss_bytes;
    while began.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(250));
        let t = began.elapsed();
        if t >= next_churn {
            next_churn += CHURN_EVERY;
            churn = match churn.take() {
                Some(_leaving) => None,
                None => {
                    joins += 1;
                    Some(publisher(exe, &whip, &format!("churn {joins}"), &quiet)?)
                }
            };
        }
        if t >= next_layout {
            next_layout += LAYOUT_EVERY;
            switches += 1;
            let template = TEMPLATES[switches as usize % TEMPLATES.len()];
            server.send("PATCH", &path, Some(&json!({"layout": {"template": template}})))?;
        }
        if t >= next_restart {
            next_restart += restart_every;
            restarts += 1;
            ingest.try_restart()?;
        }
        let rss = usage(&pid).map_or(0, |u| u.rss_bytes);
        rss_max = rss_max.max(rss);
        if t >= duration.mul_f64((quarters.len() + 1) as f64 / 4.0) {
            quarters.push((rss as f64 / 1_048_576.0).round());
        }
    }
    drop(churn);
    // The last leaver is removed after the media timeout: the end is measured with the steady two only.
    std::thread::sleep(LEAVE_SETTLE);
    let end = usage(&pid).context("server usage")?;
    let status = server.send("GET", &path, None)?;
    let elapsed = began.elapsed();
    let drift = match (timeline_start, timeline(&status)) {
        (Some((m0, w0)), Some((m1, w1))) if w1 > w0 => {
            let wall = (w1 - w0) as f64 / 1000.0;
            Some(((m1 - m0) - wall, wall))
        }
        _ => None,
    };
    server.send("DELETE", &path, None)?;
    let playlist = server.playlist(&id);
    let playlist_str = playlist.to_str().context("playlist path")?;
    let av: Vec<f64> = offsets(&flash_times(playlist_str), &beep_times(playlist_str))
        .into_iter()
        .map(|o| o * 1000.0)
        .collect();
    Ok(SoakReport {
        duration_s: elapsed.as_secs_f64().round(),
        start,
        end,
        rss_mb_max: (rss_max as f64 / 1_048_576.0).round(),
        joins,
        layout_switches: switches,
        rtmp_restarts: restarts,
        rtmp_reconnects: rtmp_reconnects(&status),
        frames_out: status["frames_out"].as_u64().unwrap_or(0),
        frames_dropped: status["frames_dropped"].as_u64().unwrap_or(0),
        av_marks: av.len(),
        av_offset_ms_mean: mean(&av),
        av_offset_ms_p50: median(&av),
        av_offset_ms_worst: av
            .iter()
            .cloned()
            .reduce(|w, o| if o.abs() > w.abs() { o } else { w })
            .map(f64::round),
        av_within_45ms_pct: (!av.is_empty())
            .then(|| (av.iter().filter(|o| o.abs() <= 45.0).count() as f64 * 1000.0 / av.len() as f64).round() / 10.0),
        av_offset_ms_first_tenth: mean(&av[..av.len() / 10]),
        av_offset_ms_last_tenth: mean(&av[av.len() - av.len() / 10..]),
        timeline_drift_ms: drift.map(|(d, _)| (d * 1000.0).round()),
        timeline_drift_ms_per_hour: drift.map(|(d, span)| (d / span * 3600.0 * 1000.0).round()),
        rss_mb_quarters: quarters,
    })
}

/// The status's timeline: (media seconds, wall-clock ms).
fn timeline(status: &Value) -> Option<(f64, u64)> {
    Some((
        status["timeline"]["media_s"].as_f64()?,
        status["timeline"]["at_ms"].as_u64()?,
    ))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| (values.iter().sum::<f64>() / values.len() as f64).round())
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).map(|m| m.round())
}

fn rtmp_reconnects(status: &Value) -> u64 {
    status["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["kind"] == "rtmp")
        .filter_map(|o| o["reconnects"].as_u64())
        .sum()
}
