//! `callcast bench --join-time rtp,whip`: how long a participant takes from its join request to its first frame on
//! air. A grid broadcast of a room (RTMP to the local nginx-rtmp) runs with --participants already in it (`publish
//! --replay --copies N` over WHIP, without clock stamps); then one participant at a time joins (`callcast publish
//! --whip` or `--rtp --clock-stamp`), is timed from its join request (the publisher prints the wall clock as it
//! sends the `POST`) to the first output frame out of the ingest in which its clock stamp reads in a tile of the
//! grid (nothing else on the canvas carries one: the product's own status is not consulted), and to the first such
//! frame whose picture was captured after the request (a live one), and leaves (SIGTERM, so it sends its `DELETE`). The ways alternate run by run, so both see the same machine load.

use super::ingest::NginxRtmp;
use super::latency::{grid_tiles, percentile};
use super::peer::{free_port, wait_until, Peer};
use super::playback::{DecodedFrame, Playback};
use super::scenario::{has_video_tag, Publisher, Via, KEYFRAME_INTERVAL_S};
use super::server::{joining_publisher, publisher, BenchServer};
use crate::layout::Rect;
use crate::procstat::machine_busy;
use crate::tools::clock_stamp;
use crate::tools::publish::{HEIGHT, JOIN_REQUEST_LINE, WIDTH};
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub struct JoinTimeRun {
    /// Participants in the room before anyone joins (their tiles show no clock stamp).
    pub participants: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// How the joiner joins, in the order the runs alternate.
    pub ways: Vec<Via>,
    /// Joins per way.
    pub runs: u32,
    /// What the joiner sends.
    pub publisher: Publisher,
}

const ROOM: &str = "join";
/// Output frames in a row without a stamp before the next join: the last joiner's tile is gone (1 s at 30 fps).
const CLEAR_FRAMES: u64 = 30;
/// Longest a joiner may take to reach the output.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Stamped frames remembered: more than a join's worth of output, so the first one after a request is kept.
const MAX_SIGHTINGS: usize = 1024;

#[derive(Default)]
struct Sightings {
    /// (arrival ms, stamp as a wall clock) of the latest output frames showing a stamp.
    stamped: VecDeque<(u64, u64)>,
    /// Output frames since the last one showing a stamp.
    unstamped_run: u64,
}

fn on_frame(frame: &DecodedFrame, tiles: &[Rect], sightings: &Mutex<Sightings>) {
    let source = (WIDTH as usize, HEIGHT as usize);
    let stamp = tiles
        .iter()
        .find_map(|tile| clock_stamp::read(frame.data, frame.stride, *tile, source));
    let mut sightings = sightings.lock().unwrap();
    let Some(stamp) = stamp else {
        sightings.unstamped_run += 1;
        return;
    };
    sightings.unstamped_run = 0;
    if let Some(arrived) = frame.arrived_ms {
        if sightings.stamped.len() == MAX_SIGHTINGS {
            sightings.stamped.pop_front();
        }
        // A replaying joiner's stamp is the send time modulo its clip's length.
        let stamp = clock_stamp::resolve_looped(stamp, arrived);
        sightings.stamped.push_back((arrived, stamp));
    }
}

/// One join, timed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Join {
    pub way: Via,
    /// From the join request to the first output frame showing the joiner, out of the ingest.
    pub join_ms: u64,
    /// From the join request to the first output frame showing a picture the joiner captured after its request:
    /// a publisher may first send pictures it held while it joined.
    pub live_ms: u64,
    /// When that frame's picture was captured, from the join request: the rest of `join_ms` is the way from the
    /// publisher's camera to the ingest.
    pub captured_after_request_ms: i64,
}

/// The joins of one way.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WaySummary {
    pub way: Via,
    pub runs: usize,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub min_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

/// Nearest-rank p50 and p95, least and most of `figure` over the joins of `way` among `joins`.
pub fn summarize(way: Via, joins: &[Join], figure: impl Fn(&Join) -> u64) -> WaySummary {
    let mut sorted: Vec<i64> = joins
        .iter()
        .filter(|j| j.way == way)
        .map(|j| figure(j) as i64)
        .collect();
    sorted.sort_unstable();
    WaySummary {
        way,
        runs: sorted.len(),
        p50_ms: percentile(&sorted, 50),
        p95_ms: percentile(&sorted, 95),
        min_ms: sorted.first().copied(),
        max_ms: sorted.last().copied(),
    }
}

/// The wall clock a publisher's join-request line gives, if `line` is one.
pub fn join_request_ms(line: &str) -> Option<u64> {
    line.trim().strip_prefix(JOIN_REQUEST_LINE)?.parse().ok()
}

pub fn run(exe: &Path, run: &JoinTimeRun) -> Result<serde_json::Value> {
    anyhow::ensure!(!run.ways.is_empty(), "--join-time: name a way, rtp or whip");
    let server = BenchServer::start(exe)?;
    let ingest = NginxRtmp::try_start_on(free_port())?;
    let present = run.participants as usize;
    let copies = run.participants.to_string();
    let _present = match present {
        0 => None,
        _ => {
            let flags = ["--pattern", "ball", "--replay", "--copies", &copies];
            let peer = publisher(exe, &server.whip_url(ROOM), "p", &flags)?;
            server.wait_participants(ROOM, present, Duration::from_secs(60))?;
            Some(peer)
        }
    };
    let video = json!({"width": run.width, "height": run.height, "fps": run.fps,
                       "keyframe_interval_s": KEYFRAME_INTERVAL_S});
    let id = server.start_grid(ROOM, video, json!([{"kind": "rtmp", "url": ingest.url(ROOM)}]))?;
    let recording = ingest.recording(ROOM);
    wait_until("the broadcast on the ingest", Duration::from_secs(30), || {
        std::fs::read(&recording).is_ok_and(|b| has_video_tag(&b)).then_some(())
    })?;
    // The joiner's tile is one of the grid's with everyone present and the joiner.
    let tiles = grid_tiles(run.width, run.height, present + 1)?;
    let sightings = Arc::new(Mutex::new(Sightings::default()));
    let seen = sightings.clone();
    let playback = Playback::start(&ingest.url(ROOM), move |frame| on_frame(&frame, &tiles, &seen))?;
    let (_, busy0) = machine_busy(None);
    let load_before = load_average();
    let mut flags = vec!["--pattern", "ball", "--clock-stamp"];
    if run.publisher == Publisher::Replay {
        flags.push("--replay");
    }
    let mut joins = Vec::new();
    let total = run.runs.max(1) as usize * run.ways.len();
    for (i, &way) in run.ways.iter().cycle().take(total).enumerate() {
        wait_until("no joiner on the output", Duration::from_secs(30), || {
            (sightings.lock().unwrap().unstamped_run >= CLEAR_FRAMES).then_some(())
        })?;
        let mut joiner = joining_publisher(exe, &server, ROOM, way, "joiner", &flags)?;
        let requested = requested_at(&mut joiner)?;
        // The first frame showing the joiner, and the first showing a picture it captured after its request.
        let ((arrived, stamp), (live, _)) = wait_until("the joiner's first live frame on air", JOIN_TIMEOUT, || {
            let sightings = sightings.lock().unwrap();
            let mut after = sightings.stamped.iter().filter(|(arrived, _)| *arrived >= requested);
            let first = *after.clone().next()?;
            Some((first, *after.find(|(_, stamp)| *stamp >= requested)?))
        })?;
        let join = Join {
            way,
            join_ms: arrived - requested,
            live_ms: live - requested,
            captured_after_request_ms: stamp as i64 - requested as i64,
        };
        eprintln!("join {} of {total} ({way:?}): {join:?}", i + 1);
        joins.push(join);
        leave(joiner)?;
        wait_until("the joiner gone from the room", Duration::from_secs(30), || {
            let room = server.send("GET", &format!("/v1/rooms/{ROOM}"), None).ok()?;
            (room["participants"].as_array()?.len() == present).then_some(())
        })?;
    }
    let (busy, _) = machine_busy(Some(busy0));
    let load_after = load_average();
    playback.stop();
    let _ = server.send("DELETE", &format!("/v1/broadcasts/{id}"), None);
    let summaries = |figure: fn(&Join) -> u64| -> Vec<WaySummary> {
        run.ways.iter().map(|&way| summarize(way, &joins, figure)).collect()
    };
    Ok(json!({
        "join_time": summaries(|j| j.join_ms),
        "live_time": summaries(|j| j.live_ms),
        "joins": joins,
        "participants_present": run.participants,
        "width": run.width,
        "height": run.height,
        "fps": run.fps,
        "joiner_publisher": run.publisher,
        "machine_busy": (busy * 1000.0).round() / 1000.0,
        "load_average_1m": [load_before, load_after],
    }))
}

/// Reads the joiner's standard output until it says it sent its join request; the wall clock it gives.
fn requested_at(joiner: &mut Peer) -> Result<u64> {
    let stdout = joiner.0.stdout.take().context("the joiner's standard output")?;
    let (tx, rx) = mpsc::channel();
    // Ends when the joiner's output closes (it exits or is killed).
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(ms) = join_request_ms(&line) {
                let _ = tx.send(ms);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .context("the joiner sent no join request in 30 s")
}

/// Asks the joiner to leave (SIGTERM: it sends its `DELETE`) and waits until it has exited.
fn leave(mut joiner: Peer) -> Result<()> {
    // SAFETY: kill only sends a signal, to a child this process started and has not reaped.
    unsafe {
        libc::kill(joiner.0.id() as libc::pid_t, libc::SIGTERM);
    }
    wait_until("the joiner to exit", Duration::from_secs(10), || {
        joiner.0.try_wait().ok().flatten().map(|_| ())
    })
}

/// The machine's 1-minute load average (other builds on a shared machine show here).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(way: Via, join_ms: u64) -> Join {
        Join {
            way,
            join_ms,
            live_ms: join_ms + 1000,
            captured_after_request_ms: 0,
        }
    }

    #[test]
    fn each_way_is_summarised_from_its_own_joins() {
        let mut joins: Vec<Join> = (1..=20).map(|ms| join(Via::Rtp, ms * 10)).collect();
        joins.extend([join(Via::Whip, 900), join(Via::Whip, 700)]);
        assert_eq!(
            summarize(Via::Rtp, &joins, |j| j.join_ms),
            WaySummary {
                way: Via::Rtp,
                runs: 20,
                p50_ms: Some(100),
                p95_ms: Some(190),
                min_ms: Some(10),
                max_ms: Some(200),
            }
        );
        let whip = summarize(Via::Whip, &joins, |j| j.join_ms);
        assert_eq!(
            (whip.runs, whip.p50_ms, whip.min_ms, whip.max_ms),
            (2, Some(700), Some(700), Some(900))
        );
        let live = summarize(Via::Whip, &joins, |j| j.live_ms);
        assert_eq!(
            (live.min_ms, live.max_ms),
            (Some(1700), Some(1900)),
            "the figure asked for"
        );
    }

    #[test]
    fn a_way_without_joins_has_no_figures() {
        let none = summarize(Via::Whip, &[join(Via::Rtp, 5)], |j| j.join_ms);
        assert_eq!((none.runs, none.p50_ms, none.max_ms), (0, None, None));
    }

    #[test]
    fn the_join_request_line_gives_its_wall_clock() {
        assert_eq!(
            join_request_ms("join request sent at ms 1764543600123\n"),
            Some(1_764_543_600_123)
        );
        assert_eq!(join_request_ms("publishing to http://127.0.0.1:1/v1/rooms/a/rtp"), None);
        assert_eq!(join_request_ms("join request sent at ms soon"), None);
    }
}
