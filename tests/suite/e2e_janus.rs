//! A real Janus VideoRoom as the call: the broadcast subscribes as a hidden participant, follows joins, clean
//! leaves and SIGKILLed publishers, shows its background while Janus is down and the re-joined publishers after.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::janus::{Janus, ROOM, ROOM_PIN};
use crate::support::media::{last_frame, streams, video_pts, window_max_gap};
use crate::support::picture::{all, check, Area, Tile};
use crate::support::{get_json, publish_janus, wait_for, KillOnDrop, Server};
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

const GREY: [u8; 3] = [128, 128, 128];

/// The broadcast's template: the shipped grid (same region, gap and fit, so the same tiles) on a grey background,
/// so that the background on air can be told from black frames.
fn write_grey_grid(dir: &Path) {
    let grid = include_str!("../../pipelines/layouts/grid.toml");
    let grey = grid.replace("background = \"#000000\"", "background = \"#808080\"");
    assert_ne!(grey, grid, "grid.toml no longer has a black background to replace");
    std::fs::write(dir.join("grey-grid.toml"), grey).expect("grey-grid.toml");
}

/// Tiles of the grid template on the 640x360 canvas for `n` participants, and background points, worked out by
/// hand from pipelines/layouts/grid.toml (one `all` region over the canvas, flow grid, fit 16:9, gap 0.00625 x
/// 640 = 4 px), never by the layout engine.
fn grid_by_hand(n: usize) -> (Vec<Area>, Vec<(i32, i32)>) {
    match n {
        // 2 columns: cells (640 - 3*4)/2 = 314 by 360 - 2*4 = 352, 16:9 inside 314 x 176 (314*9/16 = 176.6, even);
        // 2 rows would give 308 x 174. The block 632 x 176 centred: x 4 and 4 + 314 + 4 = 322, y (360 - 176)/2 = 92.
        2 => (
            vec![Area::new(4, 92, 314, 176), Area::new(322, 92, 314, 176)],
            // The gap between them (x 318-321), above and below them.
            vec![(320, 180), (160, 40), (480, 320)],
        ),
        // 2x2 beats 3x1 and 1x3: cells (640 - 3*4)/2 = 314 by (360 - 3*4)/2 = 174, 16:9 inside: 174*16/9 = 309.3 ->
        // 308 x 174; the block 620 x 352 centred: x 10 and 322, y 4 and 182; the last row's one tile centred:
        // x (640 - 308)/2 = 166.
        3 => (
            vec![
                Area::new(10, 4, 308, 174),
                Area::new(322, 4, 308, 174),
                Area::new(166, 182, 308, 174),
            ],
            // Between the columns and the rows, and on both sides of the lone tile below.
            vec![(320, 90), (160, 180), (480, 180), (80, 270), (560, 270)],
        ),
        // As for 3, the second row full.
        4 => (
            vec![
                Area::new(10, 4, 308, 174),
                Area::new(322, 4, 308, 174),
                Area::new(10, 182, 308, 174),
                Area::new(322, 182, 308, 174),
            ],
            vec![(320, 90), (320, 270), (160, 180), (480, 180), (4, 90), (635, 270)],
        ),
        _ => panic!("no grid worked out for {n}"),
    }
}

/// Polls until the broadcast's participants are exactly `expected` and the newest segment shows each one's colour
/// at its tile (in the status' on-screen order) with the grey background between the tiles.
fn assert_tiles(status_url: &str, playlist: &Path, expected: &[&str]) {
    let mut want: Vec<&str> = expected.to_vec();
    want.sort_unstable();
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let names = participant_names(&get_json(status_url));
        let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let frame = segments_of(playlist).pop().and_then(|s| last_frame(&s, W, H));
        match (sorted == want, frame) {
            (true, Some(frame)) => {
                let (areas, gaps) = grid_by_hand(names.len());
                let tiles: Vec<Tile> = names
                    .iter()
                    .zip(areas)
                    .map(|(n, a)| Tile::new(n, colour(n), a))
                    .collect();
                match check(&frame, &tiles, &all(&gaps, GREY)) {
                    Ok(()) => return,
                    Err(e) => last = format!("{names:?}: {e}"),
                }
            }
            _ => last = format!("participants {names:?}, expected {want:?}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("never saw {expected:?} in their tiles: {last}");
}

/// Polls until a segment newer than the first `after` shows only the grey background (no tile, frozen or not, at
/// any point of a 16x9 lattice) and the broadcast is live with nobody in it.
fn assert_background_only(status_url: &str, playlist: &Path, after: usize) {
    let lattice: Vec<(i32, i32)> = (0..16)
        .flat_map(|i| (0..9).map(move |j| (W as i32 * (2 * i + 1) / 32, H as i32 * (2 * j + 1) / 18)))
        .collect();
    let mut last = String::from("no new segment");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let status = get_json(status_url);
        let segments = segments_of(playlist);
        if segments.len() > after {
            let frame = segments.last().and_then(|s| last_frame(s, W, H));
            let shown = frame.map(|f| check(&f, &[], &all(&lattice, GREY)));
            match (status["state"].as_str(), participant_names(&status).is_empty(), shown) {
                (Some("live"), true, Some(Ok(()))) => return,
                (state, _, shown) => {
                    last = format!(
                        "state {state:?}, participants {:?}, picture {shown:?}",
                        participant_names(&status)
                    )
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("the background alone never went on air while Janus was down: {last}");
}

fn start_broadcast(server: &Server, janus: &Janus, pin: &str, outputs: Value) -> Broadcast {
    let bc = Broadcast::start(
        server,
        &json!({
            "source": {"kind": "janus", "url": janus.url(), "room": ROOM, "pin": pin},
            "layout": {"template": "grey-grid"},
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
    let layouts = tempfile::tempdir().expect("tempdir");
    write_grey_grid(layouts.path());
    let server = Server::start(&["--layouts-dir", layouts.path().to_str().expect("path")]);
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
    assert_tiles(&status_url, &playlist, &["red", "green", "blue"]);
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
    assert_tiles(&status_url, &playlist, &["red", "green", "blue", "yellow"]);

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
    assert_tiles(&status_url, &playlist, &["blue", "yellow"]);

    // Janus goes down: the broadcast keeps sending, its background alone (not black, not the last tiles).
    let segments_before = segments_of(&playlist).len();
    janus.kill();
    drop(publishers);
    assert_background_only(&status_url, &playlist, segments_before);

    // Janus comes back: the broadcast joins again and shows the publishers who re-join, and only them.
    janus.start_again();
    let rejoin: Vec<(String, KillOnDrop)> = ["red", "green"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                publish_janus(&janus.url(), ROOM, ROOM_PIN, n, &format!("color:{}", hex(colour(n)))),
            )
        })
        .collect();
    assert_tiles(&status_url, &playlist, &["red", "green"]);
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
