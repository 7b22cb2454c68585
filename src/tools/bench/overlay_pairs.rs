//! `callcast bench --overlay-pairs N`: a broadcast with and without the bench's title and logo, decided on a busy
//! machine. One broadcast (grid of replaying participants to HLS) runs throughout; `PATCH` puts the overlays on
//! and takes them off, and each of N pairs measures a window with and one without, in alternating order, so the
//! machine's drift falls on both sides. The figure is the median of the paired differences, of the server's
//! cores and of its compositor output thread (`compositor:src`, where the layer blends), with their spread.
//! Then, as many pairs of layout switches: a cut and a `--fade-ms` cross-fade, each measured over the fade's
//! length and half a second more.

use super::overlay_blend::median;
use super::peer::wait_until;
use super::server::{publisher, BenchServer};
use super::server_window::{measure, round3, wait_live, OneBroadcast};
use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const ROOM: &str = "bench";
/// After a `PATCH` before measuring: the overlays' fade (300 ms) and any transient behind us.
const SETTLE: Duration = Duration::from_secs(2);
const THREAD: &str = "compositor:src";

pub fn run(exe: &Path, run: &OneBroadcast, pairs: u32, fade_ms: u32) -> Result<Value> {
    crate::gst_util::init()?;
    let server = BenchServer::start(exe)?;
    let copies = run.participants.to_string();
    let _publisher = publisher(
        exe,
        &server.whip_url(ROOM),
        "p",
        &["--pattern", "ball", "--replay", "--copies", &copies],
    )?;
    server.wait_participants(ROOM, run.participants as usize, Duration::from_secs(60))?;
    let id = server.start_grid(
        ROOM,
        json!({"width": run.width, "height": run.height, "fps": run.fps}),
        json!([{"kind": "hls", "segment_seconds": 1}]),
    )?;
    let path = format!("/v1/broadcasts/{id}");
    wait_live(&server, &id)?;
    std::thread::sleep(run.warmup);
    let pid = server.pid();
    let set_overlays = |on: bool| -> Result<()> {
        let overlays = if on {
            super::scenario::bench_overlays()
        } else {
            json!([])
        };
        server.send("PATCH", &path, Some(&json!({ "overlays": overlays })))?;
        wait_until("the overlays listed", Duration::from_secs(10), || {
            let status = server.send("GET", &path, None).ok()?;
            (status["overlays"].as_array().map_or(0, Vec::len) == if on { 2 } else { 0 }).then_some(())
        })?;
        std::thread::sleep(SETTLE);
        Ok(())
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        for on in [pair % 2 == 0, pair % 2 == 1] {
            set_overlays(on)?;
            let window = measure(&pid, run.window)?;
            if on { &mut with } else { &mut without }.push(window);
        }
    }
    set_overlays(false)?;

    // Layout switches between two templates, alternately cut and faded.
    let fade_window = Duration::from_millis(u64::from(fade_ms) + 500);
    let (mut faded, mut cut) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        for fade in [pair % 2 == 0, pair % 2 == 1] {
            let template = if (faded.len() + cut.len()) % 2 == 0 {
                "speaker"
            } else {
                "grid"
            };
            let transition = if fade {
                json!({"kind": "fade", "ms": fade_ms})
            } else {
                json!({"kind": "cut"})
            };
            server.send(
                "PATCH",
                &path,
                Some(&json!({"layout": {"template": template, "transition": transition}})),
            )?;
            let window = measure(&pid, fade_window)?;
            if fade { &mut faded } else { &mut cut }.push(window);
            std::thread::sleep(SETTLE);
        }
    }
    let _ = server.send("DELETE", &path, None);

    Ok(json!({
        "mode": "overlay_pairs",
        "participants": run.participants, "width": run.width, "height": run.height, "fps": run.fps,
        "pairs": pairs, "window_s": run.window.as_secs_f64(),
        "overlays": paired(&with, &without),
        "cross_fade": {"ms": fade_ms, "window_s": fade_window.as_secs_f64(), "vs_cut": paired(&faded, &cut)},
    }))
}

/// Per pair (a, b): the server's cores and its `THREAD`, each side and their difference; the differences' median
/// and range; the machine's load over the windows.
fn paired(a: &[Value], b: &[Value]) -> Value {
    let cores = |w: &Value| w["cores"].as_f64().unwrap_or(0.0);
    let thread = |w: &Value| {
        w["cores_by_thread"]
            .as_array()
            .and_then(|t| t.iter().find(|e| e[0] == THREAD))
            .and_then(|e| e[1].as_f64())
            .unwrap_or(0.0)
    };
    let diffs = |f: &dyn Fn(&Value) -> f64| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| round3(f(x) - f(y))).collect() };
    let (d_cores, d_thread) = (diffs(&cores), diffs(&thread));
    let busy: Vec<f64> = a.iter().chain(b).filter_map(|w| w["machine_busy"].as_f64()).collect();
    json!({
        "cores": [a.iter().map(cores).collect::<Vec<_>>(), b.iter().map(cores).collect::<Vec<_>>()],
        "thread": [a.iter().map(thread).collect::<Vec<_>>(), b.iter().map(thread).collect::<Vec<_>>()],
        "diff_cores": d_cores, "diff_cores_median": round3(median(&d_cores)),
        "diff_thread": d_thread, "diff_thread_median": round3(median(&d_thread)),
        "machine_busy_min": busy.iter().copied().fold(f64::INFINITY, f64::min),
        "machine_busy_max": busy.iter().copied().fold(0.0, f64::max),
    })
}
