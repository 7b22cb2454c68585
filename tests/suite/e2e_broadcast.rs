//! The first end-to-end broadcast: three participants in the built-in room, composited to RTMP (real
//! nginx-rtmp) and HLS, checked with ffprobe/ffmpeg; one participant killed; the broadcast stopped.

use crate::support::broadcast::participant_names;
use crate::support::media::{close_to, last_frame, streams, video_pts, window_max_gap};
use crate::support::{get_json, http, publish_with, wait_for, Server};
use callcast::layout::{grid, Canvas, TILE_GAP};
use callcast::tools::bench::ingest::NginxRtmp;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const ROOM: &str = "e2e";
const W: usize = 1280;
const H: usize = 720;
const CANVAS: Canvas = Canvas {
    width: W as i32,
    height: H as i32,
};
/// Colours survive VP8 + x264 within this per-channel distance.
const TOLERANCE: u8 = 48;

fn colour_of(name: &str) -> [u8; 3] {
    match name {
        "red" => [255, 0, 0],
        "green" => [0, 255, 0],
        "blue" => [0, 0, 255],
        other => panic!("unexpected participant {other}"),
    }
}

fn segments(playlist: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(playlist).unwrap_or_default();
    let dir = playlist.parent().expect("playlist dir");
    text.lines()
        .filter(|l| l.ends_with(".ts"))
        .map(|l| dir.join(l))
        .collect()
}

/// Decodes the newest complete segment and checks each participant's colour at its tile centre.
fn tiles_match(playlist: &Path, names: &[String], artifact: &Path) -> Result<(), String> {
    let tiles = grid(names.len(), CANVAS, TILE_GAP);
    let newest = segments(playlist).pop().ok_or("no segment")?;
    let frame = last_frame(&newest, W, H).ok_or("no decodable frame")?;
    frame.save_png(artifact);
    for (name, tile) in names.iter().zip(&tiles) {
        let (x, y) = tile.center();
        let pixel = frame.pixel(x, y);
        if !close_to(pixel, colour_of(name), TOLERANCE) {
            return Err(format!(
                "{name} expected at {x},{y} of {} tiles, found {pixel:?} (frame saved to {})",
                names.len(),
                artifact.display()
            ));
        }
    }
    Ok(())
}

/// Polls until the newest segment shows `names` in their tiles; a layout change reaches the HLS files a
/// segment or two after the status.
fn assert_tiles(playlist: &Path, names: &[String], artifact: &Path) {
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        match tiles_match(playlist, names, artifact) {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("tiles never matched: {last}");
}

#[test]
fn three_participants_to_rtmp_and_hls_then_one_vanishes() {
    let nginx = NginxRtmp::start();
    let server = Server::start(&["--media-timeout-s", "2"]);
    let whip = server.whip_url(ROOM);
    let mut publishers: Vec<(String, crate::support::KillOnDrop)> = ["red", "green", "blue"]
        .iter()
        .map(|c| {
            let pattern = format!("color:{}", hex(colour_of(c)));
            // Blue sends VP9 (the others VP8): a VP9 publisher decodes and composites like the rest.
            let codec = if *c == "blue" { "vp9" } else { "vp8" };
            let flags = ["--pattern", pattern.as_str(), "--tone", "0", "--codec", codec];
            (c.to_string(), publish_with(&whip, c, &flags, Stdio::null()))
        })
        .collect();
    wait_for("3 participants in the room", Duration::from_secs(20), || {
        let room = get_json(&server.url(&format!("/v1/rooms/{ROOM}")));
        (room["participants"].as_array()?.len() == 3).then_some(())
    });

    let stream_key = "e2e-secret-key";
    let response = http()
        .post(server.url("/v1/broadcasts"))
        .json(&json!({
            "source": {"kind": "room", "room": ROOM},
            "video": {"keyframe_interval_s": 1},
            "outputs": [
                {"kind": "rtmp", "url": nginx.url(stream_key)},
                {"kind": "hls", "segment_seconds": 1, "window": 60}
            ]
        }))
        .send()
        .expect("POST broadcast");
    assert_eq!(response.status(), 201);
    let created: Value = response.json().expect("json");
    assert!(
        !created.to_string().contains(stream_key),
        "stream key leaked in {created}"
    );
    let id = created["id"].as_str().expect("id").to_string();
    let status_url = server.url(&format!("/v1/broadcasts/{id}"));
    let playlist = server
        .data_dir
        .path()
        .join(format!("data/broadcasts/{id}/hls/index.m3u8"));

    let status = wait_for("broadcast live with both outputs live", Duration::from_secs(40), || {
        let s = get_json(&status_url);
        let outputs_live = s["outputs"].as_array()?.iter().all(|o| o["state"] == "live");
        (s["state"] == "live" && outputs_live && segments(&playlist).len() >= 3).then_some(s)
    });
    // From here to the stop both outputs carry every frame: the window their gap checks need filled.
    let on_air = std::time::Instant::now();
    let names = participant_names(&status);
    assert_eq!(names.len(), 3);

    // RTMP carries H.264 1280x720 + AAC, as recorded by the real ingest.
    let recording = nginx.recording(stream_key);
    let rtmp_streams = streams(recording.to_str().expect("path"));
    assert!(
        rtmp_streams.contains(&("video".into(), "h264".into(), 1280, 720)),
        "{rtmp_streams:?}"
    );
    assert!(
        rtmp_streams.iter().any(|s| s.0 == "audio" && s.1 == "aac"),
        "{rtmp_streams:?}"
    );
    // HLS over HTTP from our own server has both tracks.
    let hls_streams = streams(&server.url(&format!("/v1/broadcasts/{id}/hls/index.m3u8")));
    assert!(
        hls_streams.iter().any(|s| s.1 == "h264" && s.2 == 1280),
        "{hls_streams:?}"
    );
    assert!(hls_streams.iter().any(|s| s.1 == "aac"), "{hls_streams:?}");

    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    assert_tiles(&playlist, &names, &artifacts.join("three.png"));

    // Bad requests against the live server change nothing.
    let bad = http()
        .post(server.url("/v1/broadcasts"))
        .header("content-type", "application/json")
        .body("{\"source\":")
        .send()
        .expect("POST");
    assert_eq!(bad.status(), 400);

    // One participant vanishes without a goodbye.
    let victim = names[0].clone();
    let pos = publishers.iter().position(|(n, _)| *n == victim).expect("victim");
    let (_, mut process) = publishers.remove(pos);
    process
        .signal_and_wait("KILL", Duration::from_secs(5))
        .expect("publisher died");
    let survivors: Vec<String> = names.iter().filter(|n| **n != victim).cloned().collect();
    wait_for(
        "the vanished participant to leave the broadcast",
        Duration::from_secs(15),
        || (participant_names(&get_json(&status_url)) == survivors).then_some(()),
    );
    assert_tiles(&playlist, &survivors, &artifacts.join("two.png"));
    assert_eq!(get_json(&status_url)["state"], "live");

    // Stop: playlist closed, outputs ended.
    let stopped: Value = http()
        .delete(&status_url)
        .send()
        .and_then(|r| r.json())
        .expect("DELETE");
    let on_air_s = on_air.elapsed().as_secs_f64();
    assert_eq!(stopped["state"], "ended", "{stopped}");
    assert!(stopped["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .all(|o| o["state"] == "ended"));
    let text = std::fs::read_to_string(&playlist).expect("playlist");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");

    // The output never gapped: neither in HLS nor in what the ingest recorded.
    let hls_pts = video_pts(playlist.to_str().expect("path"));
    let hls_gap = window_max_gap("HLS", &hls_pts, on_air_s, 30.0);
    assert!(hls_gap < 1.0, "HLS video gap of {hls_gap:.3} s");
    let rtmp_pts = video_pts(recording.to_str().expect("path"));
    let rtmp_gap = window_max_gap("RTMP recording", &rtmp_pts, on_air_s, 30.0);
    assert!(rtmp_gap < 1.0, "RTMP video gap of {rtmp_gap:.3} s");

    assert!(!server.log_text().contains(stream_key), "stream key in server log");
}

fn hex(rgb: [u8; 3]) -> String {
    format!("{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}
