//! Recordings: a `record` output's MP4 is finalised with its index at the front and holds the whole show from a
//! keyframe, or in parts by length or size that add up to it; a server SIGKILLed mid-recording leaves an MP4 that plays up to about the kill; an HLS output with
//! `window: 0` keeps and lists every segment (`EVENT`, then `VOD` with its end list, also when a restarted server
//! closes what a killed one left).

use crate::support::broadcast::Broadcast;
use crate::support::events::{follow_events, wait_event};
use crate::support::media::{
    assert_decodes_cleanly, close_to, duration_s, first_video_frame, listed_segments, packet_counts, streams, video_pts,
};
use crate::support::{get_json, http, publish, publish_with, wait_for, KillOnDrop, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WIDTH: usize = 320;
const HEIGHT: usize = 180;
const RED: [u8; 3] = [255, 0, 0];
/// The length of each part of the recording that is split.
const PART_S: u64 = 3;
/// AAC at 48 kHz: 1024 samples a packet.
const AUDIO_PACKETS_PER_S: f64 = 48_000.0 / 1024.0;

fn start(server: &Server, room: &str, outputs: Value) -> Broadcast {
    Broadcast::start(
        server,
        &json!({
            "source": {"kind": "room", "room": room},
            "video": {"width": WIDTH, "height": HEIGHT, "fps": 30, "keyframe_interval_s": 1},
            "outputs": outputs,
        }),
    )
}

/// The top-level boxes of an MP4 file as (type, size), read from their 8- or 16-byte headers.
fn top_level_boxes(path: &Path) -> Vec<(String, u64)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let size = match size32 {
            // A 64-bit size follows the type.
            1 => u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
            // The box runs to the end of the file.
            0 => (bytes.len() - at) as u64,
            n => n,
        };
        boxes.push((kind, size));
        if size < 8 {
            break;
        }
        at += size as usize;
    }
    boxes
}

/// The first decoded video frame's pixel at (x, y), in RGB.
fn first_frame_pixel(path: &Path, x: usize, y: usize) -> [u8; 3] {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!("scale={WIDTH}:{HEIGHT}"))
        .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg");
    assert_eq!(
        out.stdout.len(),
        WIDTH * HEIGHT * 3,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let i = (y * WIDTH + x) * 3;
    [out.stdout[i], out.stdout[i + 1], out.stdout[i + 2]]
}

/// `max_file_mb: 1`.
const MB: u64 = 1_000_000;

/// What a file's packets hold, as ffprobe reads them.
#[derive(Debug, Default)]
struct Media {
    /// Every packet's bytes (what a size split counts).
    bytes: u64,
    /// The most any GOP's packets (video from one keyframe to the next, with the sound between) hold.
    largest_gop: u64,
    /// (video, audio) packets.
    packets: (u64, u64),
    /// The first video packet is a keyframe.
    starts_on_a_keyframe: bool,
}

fn media_bytes(path: &Path) -> Media {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,size,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let mut media = Media::default();
    let mut gop = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(kind), Some(size), Some(flags)) = (fields.first(), fields.get(1), fields.get(2)) else {
            continue;
        };
        let size: u64 = size
            .parse()
            .unwrap_or_else(|_| panic!("ffprobe {}: {line}", path.display()));
        if *kind == "video" {
            let key = flags.starts_with('K');
            if media.packets.0 == 0 {
                media.starts_on_a_keyframe = key;
            }
            if key {
                gop = 0;
            }
            media.packets.0 += 1;
        } else {
            media.packets.1 += 1;
        }
        gop += size;
        media.bytes += size;
        media.largest_gop = media.largest_gop.max(gop);
    }
    media
}

/// How many files a recording output finalised, from its final status.
fn final_out_parts(status: &Value, id: &str) -> u64 {
    let out = output(status, id);
    out["parts"].as_u64().unwrap_or_else(|| panic!("no parts: {out}"))
}

fn output(status: &Value, id: &str) -> Value {
    Broadcast::output(status, id)
}

#[test]
fn a_recording_and_a_keep_all_hls_hold_the_whole_show() {
    let server = Server::start(&[]);
    let events = follow_events(&server);
    let _red: KillOnDrop = publish(&server.whip_url("rec"), "red", "color:ff0000");
    // Red on the left, then snow on the right: noise x264 spends its whole bitrate on (2.5 Mbit/s), so the
    // recording split at 1 MB has a part every few seconds.
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "rec"},
            "video": {"width": WIDTH, "height": HEIGHT, "fps": 30, "keyframe_interval_s": 1},
            "layout": {"template": "side-by-side"},
            "outputs": [
                {"kind": "hls", "segment_seconds": 1, "window": 0},
                {"kind": "record", "format": "mp4"},
                {"kind": "record", "max_file_s": PART_S},
                {"kind": "record", "format": "mkv"},
                {"kind": "record", "max_file_mb": 1},
            ],
        }),
    );
    wait_for("red in the call", Duration::from_secs(20), || {
        (bc.status()["participants"].as_array().map(Vec::len) == Some(1)).then_some(())
    });
    // (A picture the size of its tile: cheap to encode and decode, all noise still.)
    let flags = ["--pattern", "snow", "--tone", "0", "--size", "160x90"];
    let _snow: KillOnDrop = publish_with(&server.whip_url("rec"), "snow", &flags, Stdio::null());
    // More segments than the default window of 6, so a sliding playlist would have dropped the first.
    wait_for("9 HLS segments", Duration::from_secs(30), || {
        (bc.segments().len() >= 9).then_some(())
    });
    // A second recording added live once the participant is on screen: it starts on a keyframe of them.
    wait_for("red on screen", Duration::from_secs(20), || {
        bc.status()["participants"][0]["video"].is_object().then_some(())
    });
    let response = http()
        .post(server.url(&format!("/v1/broadcasts/{}/outputs", bc.id)))
        .json(&json!({"kind": "record"}))
        .send()
        .expect("POST output");
    assert_eq!(response.status().as_u16(), 201);
    let added: Value = response.json().expect("JSON");
    assert_eq!(
        (added["id"].as_str(), added["kind"].as_str()),
        (Some("out_5"), Some("record")),
        "{added}"
    );
    wait_for("the added recording live", Duration::from_secs(10), || {
        (output(&bc.status(), "out_5")["state"] == "live").then_some(())
    });
    let live = std::fs::read_to_string(&bc.playlist).expect("playlist");
    assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "live playlist:\n{live}");
    assert!(!live.contains("#EXT-X-ENDLIST"), "live playlist:\n{live}");
    assert_eq!(
        listed_segments(&live).first().map(String::as_str),
        Some("segment00000.ts"),
        "the live playlist starts from the first segment:\n{live}"
    );
    let recording = output(&bc.status(), "out_1");
    let path = PathBuf::from(
        recording["path"]
            .as_str()
            .unwrap_or_else(|| panic!("no path: {recording}")),
    );
    let expected_dir = server
        .data_dir
        .path()
        .join(format!("data/broadcasts/{}/recordings", bc.id));
    assert_eq!(path.parent(), Some(expected_dir.as_path()), "{recording}");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        name.starts_with("out_1-20") && name.ends_with("Z.mp4"),
        "file name {name}"
    );
    assert!(recording["duration_s"].as_f64().unwrap_or(0.0) > 3.0, "{recording}");

    let ended = bc.stop();
    assert_eq!(ended["state"], "ended", "{ended}");
    let on_air_s = (ended["ended_at_ms"].as_u64().expect("ended_at_ms")
        - ended["live_at_ms"].as_u64().expect("live_at_ms")) as f64
        / 1000.0;

    // The recording: finalised, index at the front, the show's length from a keyframe.
    let mut seen = Vec::new();
    let ready = wait_event(&events, &mut seen, "recording.ready", Duration::from_secs(10), |e| {
        e["kind"] == "recording.ready" && e["broadcast_id"] == bc.id.as_str() && e["data"]["output_id"] == "out_1"
    });
    assert_eq!(ready["data"]["path"].as_str(), path.to_str(), "{ready}");
    let final_out = output(&ended, "out_1");
    assert_eq!(final_out["ready"], true, "{final_out}");
    let bytes = std::fs::metadata(&path).expect("recording").len();
    assert_eq!(final_out["bytes"].as_u64(), Some(bytes), "{final_out}");
    let boxes = top_level_boxes(&path);
    let position = |kind: &str| boxes.iter().position(|(k, _)| k == kind);
    let (Some(moov), Some(mdat)) = (position("moov"), position("mdat")) else {
        panic!("no moov or mdat among {boxes:?}");
    };
    assert!(moov < mdat, "moov after mdat: {boxes:?}");
    assert_eq!(
        boxes.iter().map(|(_, s)| s).sum::<u64>(),
        bytes,
        "boxes do not fill the file: {boxes:?}"
    );
    let path_str = path.to_str().expect("utf-8 path");
    let recorded = assert_the_whole_show(&path, on_air_s);
    let status_duration = final_out["duration_s"].as_f64().unwrap_or(0.0);
    assert!(
        (status_duration - recorded).abs() <= 0.5,
        "status says {status_duration} s, the file {recorded} s"
    );
    assert_starts_on_a_keyframe_and_decodes(path_str);

    // The one added live: its own file, finalised too, from a keyframe showing the participant.
    let added_path = ready_path(&events, &mut seen, &bc.id, "out_5");
    assert_ne!(added_path, path);
    let added_str = added_path.to_str().expect("utf-8 path");
    let (_, key, pict_type) = first_video_frame(added_str);
    assert!(
        key && pict_type == "I",
        "added: first frame is {pict_type} (key_frame {key})"
    );
    // The centre of the left half, where red's picture is.
    let centre = first_frame_pixel(&added_path, WIDTH / 4, HEIGHT / 2);
    assert!(
        close_to(centre, RED, 40),
        "added: first frame's centre of the left half is {centre:?}, not the participant's red"
    );
    assert_decodes_cleanly(added_str);

    // The recording in parts: each part ends at the first keyframe at or after PART_S, starts on a keyframe and
    // decodes; together they hold exactly the packets of the one-file recording of the same feed (out_1).
    let parts = final_out_parts(&ended, "out_2");
    assert!(parts >= 3, "{parts} parts of {PART_S} s in {on_air_s:.1} s on air");
    let mut part_paths = Vec::new();
    for part in 1..=parts {
        let ready = wait_event(
            &events,
            &mut seen,
            "recording.ready of a part",
            Duration::from_secs(10),
            |e| {
                e["kind"] == "recording.ready"
                    && e["broadcast_id"] == bc.id.as_str()
                    && e["data"]["output_id"] == "out_2"
                    && e["data"]["part"] == part
            },
        );
        part_paths.push(PathBuf::from(ready["data"]["path"].as_str().expect("path")));
    }
    let mut sorted = part_paths.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, part_paths, "parts are distinct files whose names sort in order");
    let mut summed = (0, 0);
    for (i, part) in part_paths.iter().enumerate() {
        let text = part.to_str().expect("utf-8 path");
        let length = duration_s(part);
        let last = i + 1 == part_paths.len();
        // Keyframes every second: a part is PART_S up to PART_S + 1 s (plus a frame); the last one is what was left.
        assert!(
            length <= PART_S as f64 + 1.1 && (last || length >= PART_S as f64 - 0.1),
            "part {} is {length:.2} s long",
            i + 1
        );
        let (_, key, pict_type) = first_video_frame(text);
        assert!(key && pict_type == "I", "part {}: first frame is {pict_type}", i + 1);
        assert_decodes_cleanly(text);
        let (video, audio) = packet_counts(part);
        summed = (summed.0 + video, summed.1 + audio);
    }
    assert_same_feed(packet_counts(&path), summed, "the parts");

    // The recording split by size: every part but the last holds at least the limit of media and at most what
    // one check (once a second) and one GOP (1 s) add to it; together they hold the one-file recording's packets.
    let parts = final_out_parts(&ended, "out_4");
    assert!(parts >= 2, "{parts} parts of 1 MB");
    let mut summed = (0, 0);
    for part in 1..=parts {
        let ready = wait_event(
            &events,
            &mut seen,
            "recording.ready of a 1 MB part",
            Duration::from_secs(10),
            |e| {
                e["kind"] == "recording.ready"
                    && e["broadcast_id"] == bc.id.as_str()
                    && e["data"]["output_id"] == "out_4"
                    && e["data"]["part"] == part
            },
        );
        let file = PathBuf::from(ready["data"]["path"].as_str().expect("path"));
        let media = media_bytes(&file);
        assert!(
            (part == parts || media.bytes >= MB) && media.bytes <= MB + 2 * media.largest_gop,
            "part {part}: {media:?} for a limit of {MB}"
        );
        assert!(
            media.starts_on_a_keyframe,
            "1 MB part {part} does not start on a keyframe"
        );
        summed = (summed.0 + media.packets.0, summed.1 + media.packets.1);
    }
    assert_same_feed(packet_counts(&path), summed, "the 1 MB parts");

    // The Matroska recording of the same feed: finalised, the show's length, the same packets.
    let mkv = ready_path(&events, &mut seen, &bc.id, "out_3");
    let mkv_str = mkv.to_str().expect("utf-8 path");
    assert!(mkv_str.ends_with("Z.mkv") && mkv.parent() == path.parent(), "{mkv_str}");
    assert_the_whole_show(&mkv, on_air_s);
    assert_starts_on_a_keyframe_and_decodes(mkv_str);
    assert_same_feed(packet_counts(&path), packet_counts(&mkv), "the mkv");

    // The keep-all playlist: VOD with its end list, every segment from the first, each on disk.
    let vod = std::fs::read_to_string(&bc.playlist).expect("playlist");
    assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "final playlist:\n{vod}");
    assert!(!vod.contains("EVENT"), "final playlist:\n{vod}");
    assert!(vod.trim_end().ends_with("#EXT-X-ENDLIST"), "final playlist:\n{vod}");
    let listed = listed_segments(&vod);
    let expected: Vec<String> = (0..listed.len()).map(|i| format!("segment{i:05}.ts")).collect();
    assert_eq!(
        listed, expected,
        "the final playlist lists every segment from the first"
    );
    assert!(listed.len() >= 9, "{} segments", listed.len());
    let hls_dir = bc.playlist.parent().expect("hls dir");
    for segment in &listed {
        assert!(hls_dir.join(segment).exists(), "{segment} listed but not on disk");
    }
    println!(
        "recorded {recorded:.2} s of {on_air_s:.2} s on air; {} segments kept",
        listed.len()
    );
}

/// The file of the one-file recording `output_id` of broadcast `id`, once its `recording.ready` came.
fn ready_path(events: &std::sync::mpsc::Receiver<Value>, seen: &mut Vec<Value>, id: &str, output_id: &str) -> PathBuf {
    let ready = wait_event(
        events,
        seen,
        &format!("recording.ready of {output_id}"),
        Duration::from_secs(10),
        |e| e["kind"] == "recording.ready" && e["broadcast_id"] == id && e["data"]["output_id"] == output_id,
    );
    PathBuf::from(ready["data"]["path"].as_str().expect("path"))
}

/// `path` holds H.264 and AAC for the length of a show on air for `on_air_s` (to a second); returns its length.
fn assert_the_whole_show(path: &Path, on_air_s: f64) -> f64 {
    let kinds: Vec<(String, String)> = streams(path.to_str().expect("utf-8 path"))
        .into_iter()
        .map(|(t, c, _, _)| (t, c))
        .collect();
    assert!(
        kinds.contains(&("video".into(), "h264".into())) && kinds.contains(&("audio".into(), "aac".into())),
        "{}: {kinds:?}",
        path.display()
    );
    let recorded = duration_s(path);
    assert!(
        (recorded - on_air_s).abs() <= 1.0,
        "{recorded:.2} s in {} of a broadcast live for {on_air_s:.2} s",
        path.display()
    );
    recorded
}

/// `path` starts on an I frame and decodes with no error.
fn assert_starts_on_a_keyframe_and_decodes(path: &str) {
    let (_, key, pict_type) = first_video_frame(path);
    assert!(
        key && pict_type == "I",
        "{path}: first frame is {pict_type} (key_frame {key})"
    );
    assert_decodes_cleanly(path);
}

/// `other` holds the packets (video, audio) of the recording `whole` of the same feed: every one, or all but
/// whole GOPs at the start when its output registered with the hub after the broadcast's first keyframe (the
/// mixer starts first), and the audio of those GOPs with them.
fn assert_same_feed(whole: (u64, u64), other: (u64, u64), what: &str) {
    let late_frames = whole
        .0
        .checked_sub(other.0)
        .unwrap_or_else(|| panic!("{what} {other:?} have more frames than the whole {whole:?}"));
    assert_eq!(
        late_frames % 30,
        0,
        "{what} {other:?} against the whole {whole:?}: frames lost"
    );
    // A late start's audio starts with its keyframe's delivery, give or take how far the mixer's audio runs
    // ahead of its video (about 0.1 s); with no late start the audio must match to the packet.
    let late_audio = late_frames as f64 / 30.0 * AUDIO_PACKETS_PER_S;
    let slack = if late_frames == 0 { 0.0 } else { 6.0 };
    assert!(
        (whole.1 as f64 - other.1 as f64 - late_audio).abs() <= slack,
        "{what} {other:?} against the whole {whole:?}: audio lost or doubled"
    );
}

#[test]
fn sigkill_leaves_a_playable_recording_and_a_restart_ends_the_keep_all_playlist_as_vod() {
    let mut server = Server::start(&[]);
    let _red: KillOnDrop = publish(&server.whip_url("reckill"), "red", "color:ff0000");
    let bc = start(
        &server,
        "reckill",
        json!([
            {"kind": "record"},
            {"kind": "hls", "segment_seconds": 1, "window": 0},
            {"kind": "record", "format": "mkv"},
        ]),
    );
    let url = server.url(&format!("/v1/broadcasts/{}", bc.id));
    // The output is live once its first data reached the file: the recording's start, to within a poll.
    let (path, started) = wait_for("the recording live", Duration::from_secs(30), || {
        let out = output(&get_json(&url), "out_0");
        (out["state"] == "live").then(|| (PathBuf::from(out["path"].as_str().expect("path")), Instant::now()))
    });
    let mkv = wait_for("the mkv recording live", Duration::from_secs(10), || {
        let out = output(&get_json(&url), "out_2");
        (out["state"] == "live").then(|| PathBuf::from(out["path"].as_str().expect("path")))
    });
    std::thread::sleep(Duration::from_secs(6));
    let killed_after = started.elapsed().as_secs_f64();
    server
        .process
        .signal_and_wait("KILL", Duration::from_secs(5))
        .expect("killed");

    let recorded = duration_s(&path);
    let lost = killed_after - recorded;
    println!("SIGKILL after {killed_after:.2} s of recording: {recorded:.2} s in the file, {lost:.2} s lost");
    assert!(
        (-0.5..=2.5).contains(&lost),
        "{recorded:.2} s in the file of a recording killed after {killed_after:.2} s"
    );
    let path_str = path.to_str().expect("utf-8 path");
    let (_, key, pict_type) = first_video_frame(path_str);
    assert!(key && pict_type == "I", "first frame is {pict_type} (key_frame {key})");
    assert_decodes_cleanly(path_str);
    // The Matroska one, started with it: no index to keep, a cluster a second.
    // A file cut off before its end has no duration in its header: its video frames say how much it holds.
    let mkv_str = mkv.to_str().expect("utf-8 path");
    let frames = video_pts(mkv_str);
    let mkv_recorded = frames
        .last()
        .zip(frames.first())
        .map_or(0.0, |(l, f)| l - f + 1.0 / 30.0);
    println!("the mkv: {mkv_recorded:.2} s of video in the file");
    assert_decodes_cleanly(mkv_str);
    assert!(
        (-0.5..=2.5).contains(&(killed_after - mkv_recorded)),
        "{mkv_recorded:.2} s in the mkv of a recording killed after {killed_after:.2} s"
    );

    // The keep-every-segment playlist the dead server left as an EVENT: the restarted server ends it as VOD.
    let left = std::fs::read_to_string(&bc.playlist).expect("playlist");
    assert!(
        left.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n") && !left.contains("ENDLIST"),
        "{left}"
    );
    server.restart(&[]);
    let closed = std::fs::read_to_string(&bc.playlist).expect("playlist");
    assert!(
        closed.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && !closed.contains("EVENT"),
        "{closed}"
    );
    assert!(closed.trim_end().ends_with("#EXT-X-ENDLIST"), "{closed}");
    assert_eq!(
        listed_segments(&closed),
        listed_segments(&left),
        "closing changed the segment list"
    );
    let status = get_json(&server.url(&format!("/v1/broadcasts/{}", bc.id)));
    assert_eq!(output(&status, "out_0")["path"].as_str(), Some(path_str), "{status}");
}

#[tokio::test]
async fn bad_record_and_hls_window_requests_name_the_field() {
    let (app, _dir) = crate::in_process::app(&[]);
    let post = |uri: String, body: &'static str| {
        let app = app.clone();
        async move {
            let (code, text) =
                crate::in_process::send(&app, "POST", &uri, &[("content-type", "application/json")], body).await;
            (
                code.as_u16(),
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    for (body, field) in [
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls"},{"kind":"record","format":"avi"}]}"#,
            "outputs[1].format",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls","window":1}]}"#,
            "outputs[0].window",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"video":{"passthrough":true},"outputs":[{"kind":"record"}]}"#,
            "video.passthrough",
        ),
    ] {
        let (code, reply) = post("/v1/broadcasts".into(), body).await;
        assert_eq!((code, reply["field"].as_str()), (400, Some(field)), "{body}: {reply}");
    }
    // Added live: the same check, the field named without a prefix.
    let (code, created) = post(
        "/v1/broadcasts".into(),
        r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls","window":0}]}"#,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let first = format!("/v1/broadcasts/{}", created["id"].as_str().expect("id"));
    let outputs = format!("{first}/outputs");
    let (code, reply) = post(outputs.clone(), r#"{"kind":"record","format":"webm"}"#).await;
    assert_eq!((code, reply["field"].as_str()), (400, Some("format")), "{reply}");
    // Zero-transcode is on by default: a recording cannot join a broadcast that may switch to it.
    let (code, reply) = post(outputs, r#"{"kind":"record"}"#).await;
    assert_eq!(
        (code, reply["field"].as_str()),
        (400, Some("video.passthrough")),
        "{reply}"
    );
    let (code, created) = post(
        "/v1/broadcasts".into(),
        r#"{"source":{"kind":"room","room":"b"},"video":{"passthrough":false},"outputs":[{"kind":"hls"}]}"#,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let outputs = format!("/v1/broadcasts/{}/outputs", created["id"].as_str().expect("id"));
    let (code, reply) = post(outputs, r#"{"kind":"record"}"#).await;
    assert_eq!((code, reply["kind"].as_str()), (201, Some("record")), "{reply}");
    // Room for one more broadcast on the CPU budget.
    let (code, _) = crate::in_process::send(&app, "DELETE", &first, &[], "").await;
    assert_eq!(code, 200);
    let (code, created) = post(
        "/v1/broadcasts".into(),
        r#"{"source":{"kind":"room","room":"c"},"video":{"width":320,"height":180},"outputs":[{"kind":"whep"}]}"#,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let outputs = format!("/v1/broadcasts/{}/outputs", created["id"].as_str().expect("id"));
    // A low-latency HLS output's one init segment cannot follow a switch either.
    let (code, reply) = post(outputs, r#"{"kind":"hls","low_latency":true}"#).await;
    assert_eq!(
        (code, reply["field"].as_str()),
        (400, Some("video.passthrough")),
        "{reply}"
    );

    // The OpenAPI document describes the kind and its formats.
    let (_, text) = crate::in_process::send(&app, "GET", "/v1/openapi.json", &[], "").await;
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let kinds: Vec<Value> = doc["components"]["schemas"]["OutputRequest"]["oneOf"]
        .as_array()
        .expect("OutputRequest is a oneOf")
        .iter()
        .map(|v| v["properties"]["kind"]["enum"][0].clone())
        .collect();
    assert!(kinds.contains(&json!("record")), "{kinds:?}");
    assert_eq!(
        doc["components"]["schemas"]["RecordFormatName"]["enum"],
        json!(["mp4", "mkv"]),
        "{text}"
    );
}
