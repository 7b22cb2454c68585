//! README claims that need media, each checked against something callcast does not compute itself:
//! - two broadcasts watching one room decode each participant once (decoders counted by GStreamer's leaks tracer);
//! - `layout.participants`, `sort` and `hide` decide which colours are drawn in which half of the picture;
//! - `video.preset` changes the encode (the coding tools and profile in the stream's headers, read by ffmpeg);
//! - `speaker.changed`, `participant.left`, `broadcast.failed`, `output.reconnecting`, `output.failed` and
//!   `output.ended` arrive over SSE with their fields;
//! - under `serve`, an RTMP output whose ingest is gone gives up after `max_reconnect_s` while the others go on;
//! - an RTMP output's retries wait `reconnect_initial_ms`, doubling up to `reconnect_max_interval_s`.

use crate::support::broadcast::Broadcast;
use crate::support::events::{follow_events, wait_event};
use crate::support::gst_objects::{alive_objects, tracer_env};
use crate::support::media::{close_to, decode_last_frame, Frame};
use crate::support::{get_json, http, publish_with, wait_for, KillOnDrop, Server};
use callcast::tools::bench::ingest::NginxRtmp;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
/// How far a decoded pixel may be from the colour sent (chroma subsampling, two lossy encodes).
const TOLERANCE: u8 = 60;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// A publisher sending a solid colour at 320x180 (small: the machine runs several), silent unless `talks`, when
/// it speaks a 660 Hz tone while told `on` on its stdin.
fn participant(server: &Server, room: &str, name: &str, rgb: [u8; 3], talks: bool) -> KillOnDrop {
    let pattern = format!("color:{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
    let mut flags = vec!["--pattern", &pattern, "--size", "320x180"];
    let stdin = if talks {
        flags.extend(["--tone", "660", "--tone-on-stdin"]);
        Stdio::piped()
    } else {
        flags.extend(["--tone", "0"]);
        Stdio::null()
    };
    publish_with(&server.whip_url(room), name, &flags, stdin)
}

/// Waits until `room` lists `count` participants; returns the id of the one called `name`.
fn joined(server: &Server, room: &str, count: usize, name: &str) -> String {
    wait_for(&format!("{name} in room {room}"), Duration::from_secs(20), || {
        let listed = get_json(&server.url(&format!("/v1/rooms/{room}")));
        let ps = listed["participants"].as_array()?;
        if ps.len() != count {
            return None;
        }
        ps.iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_str())
            .map(str::to_string)
    })
}

fn say(talker: &mut KillOnDrop, line: &str) {
    use std::io::Write;
    let stdin = talker.0.stdin.as_mut().expect("stdin");
    writeln!(stdin, "{line}").expect("write to the publisher");
    stdin.flush().expect("flush");
}

fn newest_frame(bc: &Broadcast, width: usize, height: usize) -> Result<Frame, String> {
    let newest = bc.segments().pop().ok_or("no segment yet")?;
    decode_last_frame(&newest, width, height)
}

/// Checks the event's envelope: its kind, broadcast and an id and time that are plausible.
fn check_envelope(event: &Value, kind: &str, broadcast_id: &str, since_ms: u64) {
    assert_eq!(event["kind"], kind, "{event}");
    assert_eq!(event["broadcast_id"], broadcast_id, "{event}");
    assert!(event["id"].as_u64().is_some_and(|id| id > 0), "{event}");
    let at = event["at_ms"].as_u64().expect("at_ms");
    assert!(
        at >= since_ms && at <= now_ms(),
        "at_ms {at} outside the test's run: {event}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// One room, two broadcasts.

const ROOM: &str = "claims";
/// Broadcast A's canvas: two tiles of the grid side by side, each centred in its half.
const A_W: i32 = 640;
const A_H: i32 = 360;
const LEFT: (i32, i32) = (A_W / 4, A_H / 2);
const RIGHT: (i32, i32) = (3 * A_W / 4, A_H / 2);

/// Broadcast A's newest frame has `left` and `right` centred in the two halves, and `absent` on none of 16x9
/// points spread over the whole picture.
fn a_shows(bc: &Broadcast, left: [u8; 3], right: [u8; 3], absent: Option<[u8; 3]>) -> Result<(), String> {
    let frame = newest_frame(bc, A_W as usize, A_H as usize)?;
    let (l, r) = (frame.pixel(LEFT.0, LEFT.1), frame.pixel(RIGHT.0, RIGHT.1));
    if !close_to(l, left, TOLERANCE) || !close_to(r, right, TOLERANCE) {
        return Err(format!("left {l:?}, right {r:?}; wanted {left:?}, {right:?}"));
    }
    if let Some(absent) = absent {
        let lattice = (0..16).flat_map(|i| (0..9).map(move |j| (A_W * (2 * i + 1) / 32, A_H * (2 * j + 1) / 18)));
        if let Some((x, y)) = lattice
            .into_iter()
            .find(|&(x, y)| close_to(frame.pixel(x, y), absent, TOLERANCE))
        {
            return Err(format!("{absent:?} drawn at {x},{y}"));
        }
    }
    Ok(())
}

fn a_shows_within(bc: &Broadcast, what: &str, left: [u8; 3], right: [u8; 3], absent: Option<[u8; 3]>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match a_shows(bc, left, right, absent) {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                if let Ok(frame) = newest_frame(bc, A_W as usize, A_H as usize) {
                    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-claims-layout.png");
                    frame.save_png(&shot);
                    panic!("{what}: {e} ({})", shot.display());
                }
                panic!("{what}: {e}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Video and audio decoders alive in the server, by GStreamer type.
fn decoders(server: &Server, gst_log: &Path) -> (i64, i64) {
    let alive: BTreeMap<String, i64> = alive_objects(&server.process.pid().to_string(), gst_log);
    let count = |kind: &str| alive.get(kind).copied().unwrap_or(0);
    (count("GstVP8Dec"), count("GstOpusDec"))
}

/// Every value each H.264 header field takes in `segment` (sequence and picture parameter sets, slice headers),
/// as ffmpeg's `trace_headers` reads them.
fn h264_header_fields(segment: &Path) -> BTreeMap<String, BTreeSet<i64>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(segment)
        .args([
            "-map",
            "0:v",
            "-c",
            "copy",
            "-bsf:v",
            "trace_headers",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg {}: {log}", segment.display());
    let mut fields: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    // `[trace_headers @ 0x...] 10          entropy_coding_mode_flag          0 = 0`
    for line in log.lines().filter(|l| l.starts_with("[trace_headers")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let (Some(name), Some(value)) = (words.get(4), words.last().and_then(|v| v.parse().ok())) {
            fields.entry(name.to_string()).or_default().insert(value);
        }
    }
    assert!(!fields.is_empty(), "no H.264 headers traced in {}", segment.display());
    fields
}

#[test]
fn one_room_two_broadcasts_decode_once_layout_rules_presets_and_events() {
    let since_ms = now_ms();
    let scratch = tempfile::tempdir().expect("tempdir");
    let gst_log = scratch.path().join("gst-objects.log");
    let env = tracer_env(&gst_log);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(&[], &env);
    let events = follow_events(&server);
    let mut seen = Vec::new();

    // Joined one after another, so the join order is known: red, green, blue.
    let _red = participant(&server, ROOM, "red", RED, false);
    let red = joined(&server, ROOM, 1, "red");
    let mut green_publisher = participant(&server, ROOM, "green", GREEN, false);
    let green = joined(&server, ROOM, 2, "green");
    let mut blue_publisher = participant(&server, ROOM, "blue", BLUE, true);
    let blue = joined(&server, ROOM, 3, "blue");

    // A: blue listed first, green hidden, the default preset (superfast). B: everyone, preset ultrafast.
    let a = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": ROOM},
            "layout": {"template": "grid", "participants": [blue], "hide": [green]},
            "video": {"width": A_W, "height": A_H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
        }),
    );
    let b = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": ROOM},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1, "preset": "ultrafast"},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
        }),
    );
    for bc in [&a, &b] {
        wait_for("three participants decoded", Duration::from_secs(20), || {
            let s = bc.status();
            let ps = s["participants"].as_array()?;
            let shown_decoded = ps
                .iter()
                .filter(|p| p["on_screen"] == true)
                .all(|p| p["video"]["width"].is_i64());
            (s["state"] == "live" && ps.len() == 3 && shown_decoded).then_some(())
        });
    }

    // Decoded once: three participants watched by two broadcasts make three video and three audio decoders.
    let (video, audio) = decoders(&server, &gst_log);
    println!("decoders with 3 participants and 2 broadcasts: {video} VP8, {audio} Opus");
    assert_eq!(
        (video, audio),
        (3, 3),
        "decoders (VP8, Opus) for 3 participants in 2 broadcasts"
    );

    // `participants` first, then the others in join order; `hide` never drawn.
    a_shows_within(&a, "blue listed first, red next, green hidden", BLUE, RED, Some(GREEN));
    // Without the list, join order: red, then blue.
    let patched = http()
        .patch(&a.status_url)
        .json(&json!({"layout": {"participants": [], "sort": "active"}}))
        .send()
        .expect("PATCH");
    assert_eq!(patched.status().as_u16(), 200);
    a_shows_within(&a, "join order while nobody spoke", RED, BLUE, Some(GREEN));
    // `sort: active`: blue speaks and moves ahead of red.
    say(&mut blue_publisher, "on");
    let changed = wait_event(&events, &mut seen, "speaker.changed", Duration::from_secs(10), |e| {
        e["kind"] == "speaker.changed" && e["broadcast_id"] == a.id.as_str()
    });
    check_envelope(&changed, "speaker.changed", &a.id, since_ms);
    assert_eq!(changed["data"]["participant_id"], blue.as_str(), "{changed}");
    a_shows_within(&a, "the speaker first with sort active", BLUE, RED, Some(GREEN));
    say(&mut blue_publisher, "off");

    // The preset is in the encode, as x264's preset table says (`x264 --fullhelp`): ultrafast turns off CABAC,
    // the deblocking filter, weighted prediction and 8x8 transforms, superfast keeps them; without 8x8 transforms
    // and CABAC the stream is Constrained Baseline, with them High. Read from the stream's headers by ffmpeg.
    let values = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
    for (bc, preset, on, profile) in [
        (&a, "superfast", 1, "High"),
        (&b, "ultrafast", 0, "Constrained Baseline"),
    ] {
        let first = bc.segments().into_iter().next().expect("a segment");
        let fields = h264_header_fields(&first);
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        println!(
            "{preset}: CABAC {:?}, weighted prediction {:?}, deblocking disabled {:?}, 8x8 transform {:?}",
            field("entropy_coding_mode_flag"),
            field("weighted_pred_flag"),
            field("disable_deblocking_filter_idc"),
            field("transform_8x8_mode_flag"),
        );
        assert_eq!(field("entropy_coding_mode_flag"), values(&[on]), "{preset}: CABAC");
        assert_eq!(
            field("weighted_pred_flag"),
            values(&[on]),
            "{preset}: weighted prediction"
        );
        assert_eq!(
            field("disable_deblocking_filter_idc"),
            values(&[1 - on]),
            "{preset}: deblocking"
        );
        // The flag is only written in High profile picture parameter sets.
        let dct8 = if on == 1 { values(&[1]) } else { values(&[]) };
        assert_eq!(field("transform_8x8_mode_flag"), dct8, "{preset}: 8x8 transform");
        assert_eq!(
            crate::support::media::video_profile(first.to_str().expect("path")).1,
            profile,
            "{preset}"
        );
    }

    // Green leaves (its publisher DELETEs its WHIP session on SIGTERM): both broadcasts say so, and its decoders go.
    green_publisher.signal_and_wait("TERM", Duration::from_secs(10));
    for bc in [&a, &b] {
        let left = wait_event(&events, &mut seen, "participant.left", Duration::from_secs(10), |e| {
            e["kind"] == "participant.left" && e["broadcast_id"] == bc.id.as_str()
        });
        check_envelope(&left, "participant.left", &bc.id, since_ms);
        assert_eq!(
            left["data"],
            json!({"participant_id": green, "name": "green"}),
            "{left}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = decoders(&server, &gst_log);
    while after != (2, 2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        after = decoders(&server, &gst_log);
    }
    assert_eq!(after, (2, 2), "decoders (VP8, Opus) once green left");
    assert!(
        !seen
            .iter()
            .any(|e| e["kind"] == "participant.left" && e["data"]["participant_id"] == red.as_str()),
        "red never left: {seen:?}"
    );

    // A source that cannot be joined fails the broadcast, announced with its reason.
    let c = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "janus", "url": "http://127.0.0.1:9/janus", "room": 1},
            "outputs": [{"kind": "hls"}],
        }),
    );
    let failed = wait_event(&events, &mut seen, "broadcast.failed", Duration::from_secs(15), |e| {
        e["kind"] == "broadcast.failed" && e["broadcast_id"] == c.id.as_str()
    });
    check_envelope(&failed, "broadcast.failed", &c.id, since_ms);
    let reason = failed["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot join Janus"), "{failed}");
    assert_eq!(c.status()["reason"], reason);

    for bc in [&a, &b] {
        assert_eq!(bc.stop()["state"], "ended");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs that fail.

/// What the status said when output `out_2`'s reconnect count went up: the retry time it announced, and the
/// window in which the change reached the status (after the previous poll was sent, before this one's answer).
#[derive(Debug, Clone, Copy)]
struct Retry {
    reconnects: u64,
    retry_at_ms: u64,
    after_ms: u64,
    before_ms: u64,
}

/// Polls `out_2` every 20 ms in a thread until `stop`, noting every retry it announces.
fn watch_retries(status_url: String, stop: Arc<AtomicBool>) -> Arc<Mutex<Vec<Retry>>> {
    let retries = Arc::new(Mutex::new(Vec::new()));
    let noted = retries.clone();
    std::thread::spawn(move || {
        let client = http();
        let (mut last, mut previous_sent) = (0, now_ms());
        while !stop.load(Ordering::Relaxed) {
            let sent = now_ms();
            let Ok(status) = client.get(&status_url).send().and_then(|r| r.json::<Value>()) else {
                continue;
            };
            let answered = now_ms();
            let out = Broadcast::output(&status, "out_2");
            let reconnects = out["reconnects"].as_u64().unwrap_or(0);
            if reconnects > last {
                if let Some(retry_at_ms) = out["next_retry_at_ms"].as_u64() {
                    noted.lock().expect("retries").push(Retry {
                        reconnects,
                        retry_at_ms,
                        after_ms: previous_sent,
                        before_ms: answered,
                    });
                }
                last = reconnects;
            }
            previous_sent = sent;
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    retries
}

#[test]
fn max_reconnect_s_gives_up_one_output_the_others_go_on_backoff_doubles() {
    const INITIAL_MS: u64 = 500;
    const CAP_MS: u64 = 2000;
    const MAX_RECONNECT_MS: u64 = 3000;
    let since_ms = now_ms();
    let mut nginx = NginxRtmp::start();
    let server = Server::start(&[]);
    let events = follow_events(&server);
    let mut seen = Vec::new();
    let _red = participant(&server, "gone", "red", RED, false);
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "gone"},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [
                {"kind": "rtmp", "url": nginx.url("gone"), "reconnect_initial_ms": INITIAL_MS,
                 "reconnect_max_interval_s": CAP_MS / 1000, "max_reconnect_s": MAX_RECONNECT_MS / 1000},
                {"kind": "hls", "segment_seconds": 1, "window": 600},
                // Nothing listens on the discard port: refused from the start, retried for as long as it lives.
                {"kind": "rtmp", "url": "rtmp://127.0.0.1:9/live/refused", "reconnect_initial_ms": INITIAL_MS,
                 "reconnect_max_interval_s": CAP_MS / 1000},
            ],
        }),
    );
    let stop_watching = Arc::new(AtomicBool::new(false));
    let retries = watch_retries(bc.status_url.clone(), stop_watching.clone());

    wait_for(
        "the RTMP and HLS outputs live, red on air",
        Duration::from_secs(30),
        || {
            let s = bc.status();
            let sent = Broadcast::output(&s, "out_0")["bytes"].as_u64()?;
            (Broadcast::output(&s, "out_0")["state"] == "live"
                && Broadcast::output(&s, "out_1")["state"] == "live"
                && sent > 20_000
                && s["participants"].as_array()?.len() == 1)
                .then_some(())
        },
    );

    // The ingest goes away for good.
    nginx.kill();
    let reconnecting = wait_event(
        &events,
        &mut seen,
        "output.reconnecting of out_0",
        Duration::from_secs(20),
        |e| e["kind"] == "output.reconnecting" && e["data"]["output_id"] == "out_0",
    );
    check_envelope(&reconnecting, "output.reconnecting", &bc.id, since_ms);
    assert_eq!(reconnecting["data"]["kind"], "rtmp", "{reconnecting}");
    assert!(reconnecting["data"]["reconnects"].as_u64() >= Some(1), "{reconnecting}");
    assert!(
        reconnecting["data"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{reconnecting}"
    );
    let failed = wait_event(
        &events,
        &mut seen,
        "output.failed of out_0",
        Duration::from_secs(20),
        |e| e["kind"] == "output.failed" && e["data"]["output_id"] == "out_0",
    );
    check_envelope(&failed, "output.failed", &bc.id, since_ms);
    assert_eq!(failed["data"]["kind"], "rtmp", "{failed}");
    assert!(
        failed["data"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    // It gives up at its first failure once max_reconnect_s passed: after at least that long, and at most one
    // longest wait and one attempt later (an attempt waits for a keyframe, up to 1 s here, then connects).
    let failing_ms = failed["at_ms"].as_u64().expect("at_ms") - reconnecting["at_ms"].as_u64().expect("at_ms");
    println!("out_0 failed {failing_ms} ms after its first failure (max_reconnect_s 3)");
    assert!(
        (MAX_RECONNECT_MS..=MAX_RECONNECT_MS + CAP_MS + 2000).contains(&failing_ms),
        "gave up {failing_ms} ms after the first failure"
    );

    // The others go on: HLS bytes grow and new segments show red; the refused RTMP output keeps retrying.
    let at_failure = bc.status();
    assert_eq!(at_failure["state"], "live", "{at_failure}");
    assert_eq!(
        Broadcast::output(&at_failure, "out_0")["state"],
        "failed",
        "{at_failure}"
    );
    let hls_bytes = Broadcast::output(&at_failure, "out_1")["bytes"]
        .as_u64()
        .expect("bytes");
    let retried = Broadcast::output(&at_failure, "out_2")["reconnects"]
        .as_u64()
        .expect("reconnects");
    let segments = bc.segments().len();
    wait_for("HLS and the refused output going on", Duration::from_secs(15), || {
        let s = bc.status();
        let (hls, refused) = (Broadcast::output(&s, "out_1"), Broadcast::output(&s, "out_2"));
        let frame = newest_frame(&bc, 320, 180).ok()?;
        (hls["state"] == "live"
            && hls["bytes"].as_u64()? > hls_bytes + 20_000
            && bc.segments().len() >= segments + 2
            && close_to(frame.pixel(160, 90), RED, TOLERANCE)
            && refused["state"] == "reconnecting"
            && refused["reconnects"].as_u64()? > retried)
            .then_some(())
    });

    // The refused output's retries: each announced wait is the one before doubled, from reconnect_initial_ms up
    // to reconnect_max_interval_s. The wait is retry_at_ms less the moment the runner reported the retry: at or
    // before the answer of the poll that saw it, and after the previous poll was sent, less the time the report
    // takes to reach the status (under 250 ms even on a loaded machine). A poll that missed a retry only widens
    // that window.
    stop_watching.store(true, Ordering::Relaxed);
    let retries = retries.lock().expect("retries").clone();
    let expected = |k: u64| (INITIAL_MS << (k - 1)).min(CAP_MS);
    let first: Vec<Retry> = retries.iter().copied().filter(|r| r.reconnects <= 6).collect();
    assert!(first.len() >= 5, "retries seen: {retries:?}");
    for r in &first {
        let shortest = r.retry_at_ms.saturating_sub(r.before_ms);
        let longest = (r.retry_at_ms + 250).saturating_sub(r.after_ms);
        let want = expected(r.reconnects);
        println!(
            "retry {}: waited {shortest}-{longest} ms, expected {want}",
            r.reconnects
        );
        assert!(
            (shortest..=longest).contains(&want),
            "retry {}: waited {shortest}-{longest} ms, not {want}: {retries:?}",
            r.reconnects
        );
    }

    // Stopping ends the outputs still running, each announced; the failed one stays failed.
    let stopped = bc.stop();
    assert_eq!(stopped["state"], "ended");
    for (id, kind) in [("out_1", "hls"), ("out_2", "rtmp")] {
        let ended = wait_event(&events, &mut seen, "output.ended", Duration::from_secs(10), |e| {
            e["kind"] == "output.ended" && e["data"]["output_id"] == id
        });
        check_envelope(&ended, "output.ended", &bc.id, since_ms);
        assert_eq!(ended["data"]["kind"], kind, "{ended}");
    }
    assert_eq!(Broadcast::output(&stopped, "out_0")["state"], "failed", "{stopped}");
    assert!(
        !seen
            .iter()
            .any(|e| e["kind"] == "output.ended" && e["data"]["output_id"] == "out_0"),
        "{seen:?}"
    );
}
