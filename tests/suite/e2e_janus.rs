//! A real Janus VideoRoom as the call: the broadcast subscribes as a hidden participant, follows joins, clean
//! leaves and SIGKILLed publishers, and survives a Janus restart.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::janus::{Janus, ROOM, ROOM_PIN};
use crate::support::media::{close_to, last_frame, streams, video_pts, window_max_gap};
use crate::support::{get_json, publish_janus, wait_for, KillOnDrop, Server};
use callcast::layout::{grid, Canvas, TILE_GAP};
use callcast::tools::bench::ingest::NginxRtmp;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const W: usize = 640;
const H: usize = 360;

fn colour(name: &str) -> [u8; 3] {
    match name {
        "red" => [255, 0, 0],
        "green" => [0, 255, 0],
        "blue" => [0, 0, 255],
        "yellow" => [255, 255, 0],
        other => panic!("unexpected participant {other}"),
    }
}

fn hex(rgb: [u8; 3]) -> String {
    format!("{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Polls until the newest segment shows the broadcast's current participants in their tiles.
fn assert_tiles(status_url: &str, playlist: &Path, expected: usize) {
    let canvas = Canvas {
        width: W as i32,
        height: H as i32,
    };
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let names = participant_names(&get_json(status_url));
        let frame = segments_of(playlist).pop().and_then(|s| last_frame(&s, W, H));
        if let (true, Some(frame)) = (names.len() == expected, frame) {
            let tiles = grid(names.len(), canvas, TILE_GAP);
            let wrong: Vec<String> = names
                .iter()
                .zip(&tiles)
                .filter(|(n, t)| !close_to(frame.pixel(t.center().0, t.center().1), colour(n), 48))
                .map(|(n, t)| format!("{n}@{:?}={:?}", t.center(), frame.pixel(t.center().0, t.center().1)))
                .collect();
            if wrong.is_empty() {
                return;
            }
            last = format!("{names:?}: wrong tiles {wrong:?}");
        } else {
            last = format!("participants {names:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("never saw {expected} correct tiles: {last}");
}

fn start_broadcast(server: &Server, janus: &Janus, pin: &str, outputs: Value) -> Broadcast {
    let bc = Broadcast::start(
        server,
        &json!({
            "source": {"kind": "janus", "url": janus.url(), "room": ROOM, "pin": pin},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": outputs,
        }),
    );
    let status = bc.status();
    assert!(!status.to_string().contains(pin), "pin leaked: {status}");
    bc
}

/// Segment files of a playlist on disk.
fn segments_of(playlist: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(playlist).unwrap_or_default();
    let dir = playlist.parent().expect("dir");
    text.lines()
        .filter(|l| l.ends_with(".ts"))
        .map(|l| dir.join(l))
        .collect()
}

#[test]
fn janus_room_joins_leaves_kills_and_restart() {
    let mut janus = Janus::start();
    let nginx = NginxRtmp::start();
    let server = Server::start(&[]);
    let mut publishers: Vec<(String, KillOnDrop)> = ["red", "green", "blue"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                publish_janus(&janus.url(), ROOM, ROOM_PIN, n, &format!("color:{}", hex(colour(n)))),
            )
        })
        .collect();
    wait_for("3 publishers in Janus", Duration::from_secs(20), || {
        (janus.list_participants().iter().filter(|p| p.1).count() == 3).then_some(())
    });

    let posted = Instant::now();
    let bc = start_broadcast(
        &server,
        &janus,
        ROOM_PIN,
        json!([{"kind": "rtmp", "url": nginx.url("janus")}, {"kind": "hls", "segment_seconds": 1, "window": 300}]),
    );
    let (status_url, playlist, broadcast_id) = (bc.status_url.clone(), bc.playlist.clone(), bc.id.clone());
    let first_rtmp = wait_for("first RTMP bytes at the ingest", Duration::from_secs(20), || {
        std::fs::metadata(nginx.recording("janus"))
            .ok()
            .filter(|m| m.len() > 0)
            .map(|_| posted.elapsed())
    });
    let first_hls = wait_for("first HLS segment", Duration::from_secs(20), || {
        (!segments_of(&playlist).is_empty()).then(|| posted.elapsed())
    });
    println!("start: first RTMP data after {first_rtmp:?}, first HLS segment after {first_hls:?}");
    assert_tiles(&status_url, &playlist, 3);
    let rtmp = streams(nginx.recording("janus").to_str().expect("path"));
    assert!(
        rtmp.iter().any(|s| s.1 == "h264") && rtmp.iter().any(|s| s.1 == "aac"),
        "{rtmp:?}"
    );

    // A fourth joins.
    publishers.push((
        "yellow".into(),
        publish_janus(&janus.url(), ROOM, ROOM_PIN, "yellow", "color:ffff00"),
    ));
    assert_tiles(&status_url, &playlist, 4);

    // The broadcast is never listed by Janus: only our four publishers are.
    let listed = janus.list_participants();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|(name, publisher)| *publisher && colour(name) != [0, 0, 0]),
        "{listed:?}"
    );

    // One leaves cleanly, one is killed.
    let (_, mut clean) = publishers.remove(0);
    clean
        .signal_and_wait("TERM", Duration::from_secs(5))
        .expect("clean exit");
    let (_, mut killed) = publishers.remove(0);
    killed.signal_and_wait("KILL", Duration::from_secs(5)).expect("killed");
    assert_tiles(&status_url, &playlist, 2);

    // Janus restarts: the broadcast keeps sending, comes back, and shows the publishers once they re-join.
    janus.restart();
    let rejoin: Vec<(String, KillOnDrop)> = ["red", "green"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                publish_janus(&janus.url(), ROOM, ROOM_PIN, n, &format!("color:{}", hex(colour(n)))),
            )
        })
        .collect();
    drop(publishers);
    assert_tiles(&status_url, &playlist, 2);
    assert_eq!(get_json(&status_url)["state"], "live");

    let stopped = bc.stop();
    // HLS covers at least from its first segment to the stop: that window must be full before its gaps count.
    let hls_on_air_s = (posted.elapsed() - first_hls).as_secs_f64();
    assert_eq!(stopped["state"], "ended", "{stopped}");
    let pts = video_pts(playlist.to_str().expect("path"));
    let gap = window_max_gap("HLS", &pts, hls_on_air_s, 30.0);
    assert!(
        gap < 1.0,
        "HLS video gap of {gap:.3} s through joins, leaves and a Janus restart"
    );
    drop(rejoin);
    let log = server.log_text();
    assert!(!log.contains(ROOM_PIN), "pin in the server log");
    // The Janus source logs in the broadcast's span: each of its lines names the broadcast.
    let janus_lines: Vec<&str> = log.lines().filter(|l| l.contains("call::janus")).collect();
    assert!(
        janus_lines.iter().any(|l| l.contains("joined from the Janus room")),
        "{janus_lines:#?}"
    );
    let unnamed: Vec<&&str> = janus_lines
        .iter()
        .filter(|l| !(l.contains("broadcast_id") && l.contains(&broadcast_id)))
        .collect();
    assert!(unnamed.is_empty(), "Janus log lines without broadcast_id: {unnamed:#?}");
}

fn failure_reason(server: &Server, janus_url: &str, room: u64, pin: &str) -> String {
    let bc = Broadcast::start(
        server,
        &json!({
            "source": {"kind": "janus", "url": janus_url, "room": room, "pin": pin},
            "outputs": [{"kind": "hls"}],
        }),
    );
    let status = wait_for("the broadcast to fail", Duration::from_secs(8), || {
        let s = bc.status();
        (s["state"] == "failed").then_some(s)
    });
    status["reason"].as_str().unwrap_or("").to_string()
}

#[test]
fn janus_mistakes_fail_with_reasons_a_person_understands() {
    let janus = Janus::start();
    let server = Server::start(&[]);
    let _publisher = publish_janus(&janus.url(), ROOM, ROOM_PIN, "red", "color:ff0000");
    wait_for("a publisher in Janus", Duration::from_secs(20), || {
        (!janus.list_participants().is_empty()).then_some(())
    });

    let dead = format!("http://127.0.0.1:{}/janus", crate::support::free_port());
    let reason = failure_reason(&server, &dead, ROOM, ROOM_PIN);
    assert!(
        reason.contains("cannot join Janus") && reason.contains("refused"),
        "{reason}"
    );

    let reason = failure_reason(&server, &janus.url(), 999, ROOM_PIN);
    assert!(reason.contains("room 999 does not exist"), "{reason}");

    let reason = failure_reason(&server, &janus.url(), ROOM, "0000");
    assert!(
        reason.contains("refused") && reason.to_lowercase().contains("pin"),
        "{reason}"
    );
}
