//! `callcast bench --audio-only`: what an audio-only broadcast (`video: null`) costs. The same participants (one
//! publisher process: test video and a tone, N joins) are measured in one run three ways: in the room with no
//! broadcast (the call's own cost: receiving, decrypting, Opus decoding, video received but not decoded), with an
//! audio-only broadcast to HLS, and with a composited one (grid at the bench's canvas) to HLS. An audio-only
//! broadcast's cost is its figure less the room's.

use super::server::BenchServer;
use super::server_window::{measure, round3, wait_live, OneBroadcast};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;

const ROOM: &str = "bench";

/// Starts `request` (a broadcast of the room to HLS), waits until it is live, measures after the warmup, stops it.
fn measure_broadcast(server: &BenchServer, run: &OneBroadcast, request: Value) -> Result<Value> {
    let created = server.send("POST", "/v1/broadcasts", Some(&request))?;
    let id = created["id"].as_str().context("broadcast id")?.to_string();
    wait_live(server, &id)?;
    std::thread::sleep(run.warmup);
    let figures = measure(&server.pid(), run.window);
    let _ = server.send("DELETE", &format!("/v1/broadcasts/{id}"), None);
    figures
}

pub fn run(exe: &Path, run: &OneBroadcast) -> Result<Value> {
    let (server, _publisher) = run.start_room(exe, ROOM, &["--pattern", "ball"])?;
    let source = json!({"kind": "room", "room": ROOM});
    let hls = json!([{"kind": "hls", "segment_seconds": 1}]);
    std::thread::sleep(run.warmup);
    let room_only = measure(&server.pid(), run.window)?;
    let audio_only = measure_broadcast(&server, run, json!({"source": source, "video": null, "outputs": hls}))?;
    let composited = measure_broadcast(
        &server,
        run,
        json!({"source": source, "layout": {"template": "grid"},
               "video": {"width": run.width, "height": run.height, "fps": run.fps},
               "outputs": hls}),
    )?;
    let added =
        |figures: &Value| round3(figures["cores"].as_f64().unwrap_or(0.0) - room_only["cores"].as_f64().unwrap_or(0.0));
    Ok(json!({
        "scenario": {"participants": run.participants, "audio_only": true,
                     "compared_with": format!("{}x{}@{} grid", run.width, run.height, run.fps),
                     "window_s": run.window.as_secs()},
        "audio_only_broadcast_cores": added(&audio_only),
        "composited_broadcast_cores": added(&composited),
        "room_only": room_only,
        "audio_only": audio_only,
        "composited": composited,
    }))
}
