//! Per-participant tracks: a `tracks` output writes each participant's video and sound as they sent it (no
//! transcode), one file set per appearance (leaving and joining again starts a new set), each video file from a
//! keyframe, and a manifest placing every file on the outputs' timeline where the test's own clock says the
//! participant was there.

use crate::support::broadcast::Broadcast;
use crate::support::events::{follow_events, wait_event};
use crate::support::media::{first_video_frame, streams};
use crate::support::{publish_with, wait_for, KillOnDrop, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ROOM: &str = "tracks";
/// Each publisher's own picture size: a transcode to the broadcast's canvas (320x180) would not keep it.
const ANN_SIZE: (i64, i64) = (320, 240);
const BOB_SIZE: (i64, i64) = (256, 144);
/// How far a file's start or end may lie from when the test saw its participant join or leave: the join's
/// signalling and first keyframe, the jitter buffer.
const JOIN_TOLERANCE_MS: i64 = 1500;
const LEAVE_TOLERANCE_MS: i64 = 400;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn publisher(server: &Server, name: &str, codec: &str, size: (i64, i64)) -> KillOnDrop {
    let size = format!("{}x{}", size.0, size.1);
    let flags = ["--codec", codec, "--size", &size, "--pattern", "ball", "--tone", "440"];
    publish_with(&server.whip_url(ROOM), name, &flags, Stdio::null())
}

/// The participants listed with video, by name.
fn with_video(bc: &Broadcast) -> Vec<String> {
    let status = bc.status();
    status["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["video"].is_object())
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// The outputs' timeline (ms) at wall-clock `at_ms`, from the status' latest (timeline, wall clock) pair.
fn timeline_at(bc: &Broadcast, at_ms: i64) -> i64 {
    let timeline = bc.status()["timeline"].clone();
    let (Some(media_s), Some(seen_ms)) = (timeline["media_s"].as_f64(), timeline["at_ms"].as_i64()) else {
        panic!("no timeline in the status: {timeline}");
    };
    (media_s * 1000.0) as i64 + (at_ms - seen_ms)
}

/// The container's duration in seconds, as ffprobe reads it.
fn duration_s(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| {
        panic!(
            "ffprobe {}: duration {text:?}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// When (the test's wall clock) a participant came and went.
struct Seen {
    joined_ms: i64,
    on_screen_ms: i64,
    left_ms: Option<i64>,
}

#[test]
fn tracks_keep_each_appearance_as_sent_on_the_broadcasts_timeline() {
    let server = Server::start(&[]);
    let events = follow_events(&server);
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": ROOM},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [{"kind": "tracks"}],
        }),
    );
    wait_for("the broadcast live", Duration::from_secs(15), || {
        (bc.status()["state"] == "live").then_some(())
    });
    // Each appearance: the test's clock when its publisher started, when it showed with video, when it left.
    let join = |name: &str, codec: &str, size| {
        let joined_ms = now_ms();
        let process = publisher(&server, name, codec, size);
        let on_screen_ms = wait_for(&format!("{name} with video"), Duration::from_secs(15), || {
            with_video(&bc).iter().any(|n| n == name).then(now_ms)
        });
        let seen = Seen {
            joined_ms,
            on_screen_ms,
            left_ms: None,
        };
        (process, seen)
    };
    let (mut ann, mut ann_first) = join("Ann", "vp8", ANN_SIZE);
    let (_bob, bob) = join("Bob", "h264", BOB_SIZE);
    std::thread::sleep(Duration::from_secs(2)); // media to record, not synchronisation
    let wall = now_ms();
    let timeline = timeline_at(&bc, wall) - wall; // outputs' timeline = wall clock + this
    ann_first.left_ms = Some(now_ms());
    ann.signal_and_wait("TERM", Duration::from_secs(5)).expect("Ann left");
    wait_for("Ann gone", Duration::from_secs(10), || {
        (!with_video(&bc).contains(&"Ann".to_string())).then_some(())
    });
    let (_ann, mut ann_again) = join("Ann", "vp8", ANN_SIZE);
    std::thread::sleep(Duration::from_secs(2)); // media to record
    ann_again.left_ms = Some(now_ms());
    let ended = bc.stop();
    assert_eq!(ended["state"], "ended", "{ended}");

    let out = Broadcast::output(&ended, "out_0");
    let dir = server
        .data_dir
        .path()
        .join(format!("data/broadcasts/{}/tracks/out_0", bc.id));
    let manifest_path = dir.join("manifest.json");
    assert_eq!(out["path"].as_str(), manifest_path.to_str(), "{out}");
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("JSON");
    assert_eq!(manifest["complete"], true, "{manifest:#}");
    assert_eq!(manifest["timeline"], "outputs", "{manifest:#}");
    let files = manifest["files"].as_array().expect("files").clone();
    assert_eq!(out["files"].as_u64(), Some(files.len() as u64), "{out}");

    // Three sets (Ann, Bob, Ann again), each a video and an audio file, in the codecs they sent.
    let mut sets: Vec<(String, String, u64)> = files
        .iter()
        .map(|f| {
            let id = f["participant_id"].as_str().unwrap_or_default().to_string();
            let name = f["name"].as_str().unwrap_or_default().to_string();
            (id, name, f["appearance"].as_u64().unwrap_or(0))
        })
        .collect();
    sets.sort();
    sets.dedup();
    assert_eq!(sets.len(), 3, "{manifest:#}");
    let names: Vec<&str> = {
        let mut n: Vec<&str> = sets.iter().map(|s| s.1.as_str()).collect();
        n.sort();
        n
    };
    assert_eq!(names, ["Ann", "Ann", "Bob"], "{manifest:#}");
    let file_of = |name: &str, nth: usize, kind: &str| -> Value {
        let mut of_name: Vec<&Value> = files
            .iter()
            .filter(|f| f["name"] == name && f["kind"] == kind)
            .collect();
        of_name.sort_by_key(|f| f["start_ms"].as_u64());
        assert!(of_name.len() > nth, "no {kind} file #{nth} of {name}: {manifest:#}");
        of_name[nth].clone()
    };
    let appearances = [
        ("Ann", 0, "vp8", ANN_SIZE, &ann_first),
        ("Bob", 0, "h264", BOB_SIZE, &bob),
        ("Ann", 1, "vp8", ANN_SIZE, &ann_again),
    ];
    let mut video_starts = Vec::new();
    for (name, nth, codec, size, seen) in appearances {
        for (kind, codec) in [("video", codec), ("audio", "opus")] {
            let file = file_of(name, nth, kind);
            let what = format!("{name} #{nth} {kind}: {file}");
            assert_eq!(file["codec"], codec, "{what}");
            assert_eq!(file["closed"], true, "{what}");
            let path: PathBuf = dir.join(file["file"].as_str().expect("file name"));
            let probed = streams(path.to_str().unwrap());
            let (start, end) = (file["start_ms"].as_i64().unwrap(), file["end_ms"].as_i64().unwrap());
            if kind == "video" {
                assert_eq!(
                    probed,
                    [("video".to_string(), codec.to_string(), size.0, size.1)],
                    "{what}"
                );
                let (_, key, picture) = first_video_frame(path.to_str().unwrap());
                assert!(key, "{what}: the first frame is a {picture} frame");
                video_starts.push(start);
            } else {
                assert_eq!(probed, [("audio".to_string(), "opus".to_string(), 0, 0)], "{what}");
            }
            // The file holds what the manifest says it spans.
            let span_s = (end - start) as f64 / 1000.0;
            let held_s = duration_s(&path);
            assert!(
                (held_s - span_s).abs() < 0.05,
                "{what}: {held_s} s in the file, {span_s} s by its offsets"
            );
            // And it spans the time the participant was there, by the test's clock.
            let joined = seen.joined_ms + timeline;
            let on_screen = seen.on_screen_ms + timeline;
            assert!(
                start >= joined && start <= on_screen + JOIN_TOLERANCE_MS,
                "{what}: starts at {start}, the publisher started at {joined} and was on screen at {on_screen}"
            );
            if let Some(left_ms) = seen.left_ms {
                let left = left_ms + timeline;
                assert!(
                    (end - left).abs() <= LEAVE_TOLERANCE_MS,
                    "{what}: ends at {end}, the participant left at {left}"
                );
            }
        }
    }
    assert!(
        video_starts.windows(2).all(|w| w[0] < w[1]),
        "Ann, Bob, Ann again in that order: {video_starts:?}"
    );

    // An event for each finalised set, naming its files.
    let mut seen = Vec::new();
    for (id, name, appearance) in &sets {
        let ready = wait_event(&events, &mut seen, "tracks.ready", Duration::from_secs(5), |e| {
            e["kind"] == "tracks.ready"
                && e["broadcast_id"] == bc.id.as_str()
                && e["data"]["participant_id"] == id.as_str()
                && e["data"]["appearance"] == *appearance
        });
        assert_eq!(ready["data"]["name"], name.as_str(), "{ready}");
        let mut listed: Vec<&str> = files
            .iter()
            .filter(|f| f["participant_id"] == id.as_str() && f["appearance"] == *appearance)
            .filter_map(|f| f["file"].as_str())
            .collect();
        listed.sort();
        let mut said: Vec<&str> = ready["data"]["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        said.sort();
        assert_eq!(said, listed, "{ready}");
    }
}
