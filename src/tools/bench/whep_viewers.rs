//! `callcast bench --whep-viewers N`: what WebRTC viewers of a broadcast cost the server, and how far behind the
//! call they see it. One broadcast (grid of the participants at the bench's canvas, a `whep` output) is measured
//! twice in one run: with no viewer, then with N. The cost per viewer is the difference over N, in cores and in
//! resident memory. The viewers run in the bench's own process (not the server's); one decodes and reads the
//! first tile's clock stamp for glass-to-viewer latency, the others only receive.

use super::latency::first_grid_tile;
use super::peer::wait_until;
use super::server::BenchServer;
use super::server_window::{measure, round3, wait_live, OneBroadcast};
use super::whep_client::{StampReading, StampTally, WhepViewer};
use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROOM: &str = "bench";

fn viewers_connected(server: &BenchServer, id: &str) -> Option<u64> {
    let status = server.send("GET", &format!("/v1/broadcasts/{id}"), None).ok()?;
    status["outputs"].as_array()?.iter().find_map(|o| o["viewers"].as_u64())
}

pub fn run(exe: &Path, run: &OneBroadcast, viewers: u32) -> Result<Value> {
    crate::gst_util::init()?;
    let (server, _publisher) = run.start_room(exe, ROOM, &["--clock-stamp"])?;
    let id = server.start_grid(
        ROOM,
        json!({"width": run.width, "height": run.height, "fps": run.fps}),
        json!([{"kind": "whep", "max_viewers": viewers + 1}]),
    )?;
    wait_live(&server, &id)?;
    std::thread::sleep(run.warmup);
    let without = measure(&server.pid(), run.window)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let endpoint = format!("{}/v1/broadcasts/{id}/whep", server.addr);
    let reading = StampReading {
        tile: first_grid_tile(run.width, run.height, run.participants as usize)?,
        source: (
            crate::tools::publish::WIDTH as usize,
            crate::tools::publish::HEIGHT as usize,
        ),
    };
    let tally = Arc::new(Mutex::new(StampTally::default()));
    let mut joined = Vec::new();
    for n in 0..viewers {
        let reads = (n == 0).then(|| (reading, tally.clone()));
        joined.push(runtime.block_on(WhepViewer::join(&endpoint, reads))?);
    }
    wait_until(
        &format!("{} viewers connected", viewers),
        Duration::from_secs(30),
        || (viewers_connected(&server, &id)? >= u64::from(viewers)).then_some(()),
    )?;
    std::thread::sleep(run.warmup);
    tally.lock().unwrap().reset();
    let with = measure(&server.pid(), run.window)?;
    let (p50, p95, samples) = tally.lock().unwrap().percentiles();
    let (unread, smoothness) = {
        let t = tally.lock().unwrap();
        (t.unread, t.smoothness)
    };
    for viewer in joined {
        runtime.block_on(viewer.leave());
    }
    let _ = server.send("DELETE", &format!("/v1/broadcasts/{id}"), None);

    let per_viewer = |key: &str| {
        let (a, b) = (with[key].as_f64().unwrap_or(0.0), without[key].as_f64().unwrap_or(0.0));
        (a - b) / f64::from(viewers.max(1))
    };
    Ok(json!({
        "scenario": {"participants": run.participants, "viewers": viewers,
                     "canvas": format!("{}x{}@{}", run.width, run.height, run.fps),
                     "window_s": run.window.as_secs()},
        "cores_per_viewer": round3(per_viewer("cores")),
        "rss_mb_per_viewer": round1(per_viewer("rss_mb")),
        "glass_to_viewer_ms_p50": p50,
        "glass_to_viewer_ms_p95": p95,
        "latency_samples": samples,
        "latency_unread": unread,
        "viewer_repeated": smoothness.repeated,
        "viewer_skipped": smoothness.skipped,
        "without_viewers": without,
        "with_viewers": with,
    }))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
