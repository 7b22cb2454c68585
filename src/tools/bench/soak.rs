//! `callcast bench --soak DURATION`: a long show under churn. Participants join and leave every few seconds,
//! the layout switches, the RTMP server is restarted every few minutes. Reports what the server holds at the
//! start and the end (memory, threads, open files), reconnects, dropped frames, the A/V offset over the whole
//! show (sync marks read back from the HLS output), and what a viewer of the HLS output got: how its timestamps
//! kept to the wall clock of their arrival, and how many of the pinned participant's pictures (their clock
//! stamps, read from every output frame) were shown twice or never.

use super::av_sync::{beep_times, flash_times, pair};
use super::ingest::NginxRtmp;
use super::latency::drawn_area;
use super::peer::{free_port, Peer};
use super::pictures::{count, read_stamps, Pictures};
use super::server::{publisher, BenchServer};
use super::viewer::{drift, first_video_pts, Listed, PlaylistWatcher};
use crate::layout::engine::{place, Scene};
use crate::layout::template::Templates;
use crate::layout::{Canvas, Rect};
use crate::procstat::{usage, Usage};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROOM: &str = "soak";
const WARMUP: Duration = Duration::from_secs(15);
const CHURN_EVERY: Duration = Duration::from_secs(5);
const LAYOUT_EVERY: Duration = Duration::from_secs(7);
const LEAVE_SETTLE: Duration = Duration::from_secs(7);
/// No ingest restart this close to the end of the run: the restarted output's old pipeline leaves its streaming
/// threads idle in GLib's thread pool, where they end after 15 s idle; at the end they would read as threads that
/// stayed (a third restart at 60 s of a 60 s run left 5 more threads at the end, twice).
const NO_RESTART_BEFORE_END: Duration = Duration::from_secs(15);
/// After that, the end is sampled every 250 ms for up to this long, keeping the sample with the fewest threads:
/// threads still winding down (a leaver's, a reconnect's) go within it, a leaked one stays in every sample.
const END_SETTLE: Duration = Duration::from_secs(5);
const TEMPLATES: [&str; 4] = ["grid", "speaker", "pip", "single"];
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;

#[derive(Debug, serde::Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub start: Usage,
    pub end: Usage,
    /// Threads at the start and at the end other than tokio's (`tokio-rt-worker`): its blocking pool keeps a
    /// thread 10 s after its last use, so API calls near the end (a leaver's teardown) read as up to 3 threads
    /// more; the pool reuses its threads, so it cannot grow with the show.
    pub threads_besides_tokio: (usize, usize),
    /// Thread names more numerous at the end than at the start, and by how many: what a failing thread count
    /// names.
    pub threads_added: Vec<(String, usize)>,
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
    /// Flashes with no beep within the pairing window, and beeps no flash paired with (missed or far apart).
    pub av_lone_flashes: usize,
    pub av_lone_beeps: usize,
    /// HLS segments a reading client saw listed after the warm-up (each one an arrival time).
    pub viewer_segments: usize,
    /// How the lag of the HLS output's timestamps behind the wall clock of their arrival at the client moved
    /// over the run (its trend, first to last segment: positive when timestamps run slow or the output falls
    /// behind), and how unevenly segments arrived around that trend (largest minus smallest lag).
    pub viewer_drift_ms: Option<f64>,
    pub viewer_drift_ms_per_hour: Option<f64>,
    pub viewer_lag_spread_ms: Option<f64>,
    /// Output frames the timestamps of those segments call for but that were not in them (holes).
    pub viewer_frames_missing: i64,
    /// The pinned participant's clock stamps in every output frame of those segments.
    pub pictures: Pictures,
    /// Server memory at each quarter of the run (MB): a plateau, or growth.
    pub rss_mb_quarters: Vec<f64>,
}

pub fn run(exe: &Path, duration: Duration) -> Result<SoakReport> {
    let mut ingest = NginxRtmp::try_start_on(free_port())?;
    let server = BenchServer::start(exe)?;
    let whip = server.whip_url(ROOM);
    // Black and silent but for the marks participant, so its flashes and beeps are the only ones.
    let quiet = ["--pattern", "color:000000", "--tone", "0"];
    let _marks = publisher(exe, &whip, "marks", &["--sync-marks", "--clock-stamp"])?;
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
            "video": {"width": WIDTH, "height": HEIGHT, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 2, "window": window}, {"kind": "rtmp", "url": ingest.url(ROOM)}],
            "max_duration_s": duration.as_secs() + 600,
        })),
    )?;
    let id = created["id"].as_str().context("broadcast id")?.to_string();
    let path = format!("/v1/broadcasts/{id}");
    std::thread::sleep(WARMUP);
    let pid = server.pid();
    let start = usage(&pid).context("server usage")?;
    let start_names = thread_names(&pid);
    let viewer = PlaylistWatcher::start(format!("{}{path}/hls/index.m3u8", server.addr));
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
        if t >= next_restart && t + NO_RESTART_BEFORE_END <= duration {
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
    let (end, end_names) = settled_usage(&pid, besides_tokio(&start_names))?;
    let status = server.send("GET", &path, None)?;
    let listed = viewer.finish();
    let elapsed = began.elapsed();
    server.send("DELETE", &path, None)?;
    let playlist = server.playlist(&id);
    let seen = ViewerSegments::read(&playlist, &listed)?;
    let lag = drift(&seen.arrivals());
    let stamps = read_stamps(
        &seen.files(),
        (WIDTH as usize, HEIGHT as usize),
        &marks_places()?,
        (
            crate::tools::publish::WIDTH as usize,
            crate::tools::publish::HEIGHT as usize,
        ),
    )?;
    let pictures = count(&stamps, 1000.0 / f64::from(crate::tools::publish::FPS));
    let playlist_str = playlist.to_str().context("playlist path")?;
    let marks = pair(&flash_times(playlist_str), &beep_times(playlist_str));
    let av: Vec<f64> = marks.offsets.iter().map(|o| o * 1000.0).collect();
    Ok(SoakReport {
        duration_s: elapsed.as_secs_f64().round(),
        start,
        end,
        threads_besides_tokio: (besides_tokio(&start_names), besides_tokio(&end_names)),
        threads_added: added(&start_names, &end_names),
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
        av_lone_flashes: marks.lone_flashes.len(),
        av_lone_beeps: marks.lone_beeps.len(),
        viewer_segments: seen.seen.len(),
        viewer_drift_ms: lag.map(|d| d.ms.round()),
        viewer_drift_ms_per_hour: lag.map(|d| (d.ms / d.span_s * 3600.0).round()),
        viewer_lag_spread_ms: lag.map(|d| d.spread_ms.round()),
        viewer_frames_missing: seen.expected_frames(crate::broadcast::spec::DEFAULT_FPS) - pictures.frames as i64,
        pictures,
        rss_mb_quarters: quarters,
    })
}

/// The segments the reading client saw listed, each with its first timestamp and that of the segment after it
/// (the one whose first keyframe got it listed).
struct ViewerSegments {
    dir: PathBuf,
    /// (name, listed at ms, first video timestamp s, the next segment's first timestamp s)
    seen: Vec<(String, u64, f64, f64)>,
}

impl ViewerSegments {
    /// Reads the timestamps from the files, after the output ended (the last one seen has its successor then).
    fn read(playlist: &Path, listed: &[Listed]) -> Result<Self> {
        let dir = playlist.parent().context("the HLS directory")?.to_path_buf();
        let all: Vec<String> = std::fs::read_to_string(playlist)
            .context("the final playlist")?
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let mut seen = Vec::new();
        let mut next_start = None;
        for l in listed {
            let at = all
                .iter()
                .position(|n| *n == l.name)
                .context("a listed segment left the playlist")?;
            let Some(next) = all.get(at + 1) else { break };
            // Each file probed once: this segment's start is usually the last one's next.
            let start = match next_start.take() {
                Some((name, start)) if name == l.name => start,
                _ => first_video_pts(&dir.join(&l.name))?,
            };
            let end = first_video_pts(&dir.join(next))?;
            next_start = Some((next.clone(), end));
            seen.push((l.name.clone(), l.at_ms, start, end));
        }
        Ok(Self { dir, seen })
    }

    /// (media time s, wall-clock ms at which the client got to it) of each segment.
    fn arrivals(&self) -> Vec<(f64, u64)> {
        self.seen.iter().map(|s| (s.3, s.1)).collect()
    }

    fn files(&self) -> Vec<PathBuf> {
        self.seen.iter().map(|s| self.dir.join(&s.0)).collect()
    }

    /// Frames at `fps` from the first segment's first timestamp to the end of the last one.
    fn expected_frames(&self, fps: u32) -> i64 {
        match (self.seen.first(), self.seen.last()) {
            (Some(first), Some(last)) => ((last.3 - first.2) * f64::from(fps)).round() as i64,
            _ => 0,
        }
    }
}

/// Every place a participant's picture is drawn in the templates the soak switches between, with two or three
/// participants on screen: where to look for the pinned participant's stamp (its CRC tells a stamp from
/// anything else, so looking in a wrong place reads nothing rather than a wrong time).
fn marks_places() -> Result<Vec<Rect>> {
    let templates = Templates::builtin();
    let canvas = Canvas {
        width: WIDTH as i32,
        height: HEIGHT as i32,
    };
    let mut places = Vec::new();
    for name in TEMPLATES {
        let template = templates
            .get(name)
            .with_context(|| format!("the built-in {name} template"))?;
        for shown in 2..=3 {
            let scene = Scene {
                order: (0..shown).map(|i| i.to_string()).collect(),
                pin: Some("0".to_string()),
                ..Scene::default()
            };
            for placed in place(template, canvas, &scene) {
                let area = drawn_area(placed.rect);
                if !places.contains(&area) {
                    places.push(area);
                }
            }
        }
    }
    Ok(places)
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

/// The server's usage at the end, with its threads' names: the sample with the fewest threads besides tokio's over
/// `END_SETTLE`, or the first with no more of them than `start` (the start's).
fn settled_usage(pid: &str, start: usize) -> Result<(Usage, Vec<String>)> {
    let deadline = Instant::now() + END_SETTLE;
    let mut fewest = (usage(pid).context("server usage")?, thread_names(pid));
    while besides_tokio(&fewest.1) > start && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let now = (usage(pid).context("server usage")?, thread_names(pid));
        if besides_tokio(&now.1) < besides_tokio(&fewest.1) {
            fewest = now;
        }
    }
    Ok(fewest)
}

fn besides_tokio(names: &[String]) -> usize {
    names.iter().filter(|n| !n.starts_with("tokio-")).count()
}

fn thread_names(pid: &str) -> Vec<String> {
    crate::procstat::threads_cpu(pid)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Names more numerous in `end` than in `start`, with how many more.
fn added(start: &[String], end: &[String]) -> Vec<(String, usize)> {
    let count = |names: &[String]| {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for name in names {
            *counts.entry(name.clone()).or_default() += 1;
        }
        counts
    };
    let before = count(start);
    count(end)
        .into_iter()
        .filter_map(|(name, n)| {
            let more = n.saturating_sub(before.get(&name).copied().unwrap_or(0));
            (more > 0).then_some((name, more))
        })
        .collect()
}
