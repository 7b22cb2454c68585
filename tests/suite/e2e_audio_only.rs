//! Audio-only broadcasts (`"video": null`): the call's mix in AAC and nothing else, into HLS segments and an MP4
//! recording, and in Opus to a WHEP listener (Chromium with a third-party client, on another origin, whose video
//! section is answered inactive); participants' pictures never decoded; the active speaker followed; what needs a
//! picture (an RTMP output, in the request or added live, a layout change, a WHEP offer with no sound to
//! receive) refused with the field or reason named.

use crate::support::audio::{mono_samples, tone_level};
use crate::support::broadcast::Broadcast;
use crate::support::child_lines::node_script;
use crate::support::media::streams;
use crate::support::offers::{section, HEAD};
use crate::support::{http, publish_with, wait_for, KillOnDrop, Server};
use base64::Engine;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ROOM: &str = "podcast";
/// Each publisher's tone: who is heard can be read from the output's sound.
const TONES: [(&str, f64); 2] = [("alice", 500.0), ("bob", 800.0)];
/// A frequency nobody sends: the floor a tone must stand well above.
const NOBODY_HZ: f64 = 1700.0;

fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let r = http().post(server.url(path)).json(body).send().expect("POST");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// Streams of a file as (type, codec), from ffprobe.
fn kinds(path: &Path) -> Vec<(String, String)> {
    streams(path.to_str().expect("utf-8 path"))
        .into_iter()
        .map(|(t, c, _, _)| (t, c))
        .collect()
}

/// Both tones well above a frequency nobody sends in `path`'s sound (about `min_s` of it at least); the levels.
fn both_tones_heard(path: &Path, min_s: f64) -> Result<String, String> {
    let samples = mono_samples(path);
    let floor = tone_level(&samples, NOBODY_HZ);
    let levels: Vec<(&str, f64)> = TONES.iter().map(|(n, hz)| (*n, tone_level(&samples, *hz))).collect();
    let report = format!(
        "{levels:?} (500/800 Hz), {NOBODY_HZ} Hz at {floor:.4}, {:.2} s",
        samples.len() as f64 / 48_000.0
    );
    let heard = samples.len() as f64 >= min_s * 48_000.0 && levels.iter().all(|(_, l)| *l > 0.01 && *l > 10.0 * floor);
    if heard {
        Ok(report)
    } else {
        Err(report)
    }
}

#[test]
fn an_audio_only_broadcast_is_the_mix_in_aac_alone_and_refuses_what_needs_a_picture() {
    // Chromium's WebRTC listens on every interface it sees: only loopback here.
    if crate::support::rerun_in_loopback_namespace(
        module_path!(),
        "an_audio_only_broadcast_is_the_mix_in_aac_alone_and_refuses_what_needs_a_picture",
    ) {
        return;
    }
    let server = Server::start(&[]);
    // Publishers send video too: an audio-only broadcast must neither need nor decode it.
    let _publishers: Vec<KillOnDrop> = TONES
        .iter()
        .map(|(name, hz)| {
            publish_with(
                &server.whip_url(ROOM),
                name,
                &["--pattern", "color:ff0000", "--tone", &hz.to_string()],
                Stdio::null(),
            )
        })
        .collect();

    // RTMP in the request: refused before anything starts, naming the output.
    let (code, reply) = post(
        &server,
        "/v1/broadcasts",
        &json!({"source": {"kind": "room", "room": ROOM}, "video": null,
                "outputs": [{"kind": "hls"}, {"kind": "rtmp", "url": "rtmp://127.0.0.1:1935/live/key"}]}),
    );
    assert_eq!(
        (code, reply["field"].as_str()),
        (400, Some("outputs[1].kind")),
        "{reply}"
    );

    let bc = Broadcast::start(
        &server,
        &json!({"source": {"kind": "room", "room": ROOM}, "video": null,
                "outputs": [{"kind": "hls", "segment_seconds": 1}, {"kind": "record"}, {"kind": "whep"}]}),
    );
    let status = wait_for("live with both participants", Duration::from_secs(20), || {
        let s = bc.status();
        (s["state"] == "live" && s["participants"].as_array()?.len() == 2).then_some(s)
    });
    assert!(status["video"].is_null() && status["layout"].is_null(), "{status}");

    // What needs a picture is refused by name: an RTMP output added live, a layout change.
    let (code, reply) = post(
        &server,
        &format!("/v1/broadcasts/{}/outputs", bc.id),
        &json!({"kind": "rtmp", "url": "rtmp://127.0.0.1:1935/live/key"}),
    );
    assert_eq!((code, reply["field"].as_str()), (400, Some("kind")), "{reply}");
    let r = http()
        .patch(&bc.status_url)
        .json(&json!({"layout": {"template": "speaker"}}))
        .send()
        .expect("PATCH");
    let code = r.status().as_u16();
    let reply: Value = r.json().unwrap_or(Value::Null);
    assert_eq!((code, reply["field"].as_str()), (400, Some("layout")), "{reply}");

    // The active speaker is followed from the sound alone.
    let status = wait_for("a speaker", Duration::from_secs(10), || {
        let s = bc.status();
        s["speaker"].is_string().then_some(s)
    });
    let ids: Vec<&str> = status["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&status["speaker"].as_str().unwrap_or("")), "{status}");

    // HLS: segments cut by time hold one AAC stream and no video, with both voices in it. Polled over the newest
    // segments: on a loaded machine one may carry a stretch without someone.
    wait_for("3 HLS segments", Duration::from_secs(15), || {
        (bc.segments().len() >= 3).then_some(())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let heard = loop {
        let newest = bc.segments().pop().expect("a segment");
        assert_eq!(kinds(&newest), [("audio".into(), "aac".into())], "{}", newest.display());
        match both_tones_heard(&newest, 0.5) {
            Ok(report) => break report,
            Err(report) => assert!(Instant::now() < deadline, "not both heard in HLS: {report}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("HLS: {heard}");
    // Nobody's picture was decoded (the status shows a participant's picture size once it is).
    let status = bc.status();
    for p in status["participants"].as_array().into_iter().flatten() {
        assert!(p["video"].is_null() && p["on_screen"] == false, "{status}");
    }

    listen_over_whep(&server, &bc);

    // The recording: once finalised, an MP4 with one AAC stream and no video, both voices in it.
    let ended = bc.stop();
    assert_eq!(ended["state"], "ended", "{ended}");
    // No picture, no frame counts: absent rather than zeros that read as a stalled video.
    for field in ["frames_out", "frames_dropped", "fps_out", "timeline", "passthrough"] {
        assert!(ended.get(field).is_none(), "{field} in {ended}");
    }
    let recording = Broadcast::output(&ended, "out_1");
    assert_eq!(recording["ready"], true, "{recording}");
    let path = PathBuf::from(recording["path"].as_str().expect("recording path"));
    assert_eq!(kinds(&path), [("audio".into(), "aac".into())], "{}", path.display());
    assert!(recording["duration_s"].as_f64().unwrap_or(0.0) > 2.0, "{recording}");
    let heard = both_tones_heard(&path, 2.0).unwrap_or_else(|r| panic!("not both heard in the MP4: {r}"));
    println!("MP4: {heard}");
}

/// WHEP without a picture: an offer with H.264 video and no audio is refused (400, nothing to send it); a page on
/// another origin offering video and audio, as players do, hears both voices in Opus, its video section
/// inactive, and is counted as a viewer until its client's DELETE.
fn listen_over_whep(server: &Server, bc: &Broadcast) {
    let whep_url = server.url(&format!("/v1/broadcasts/{}/whep", bc.id));
    let video_only = format!("{HEAD}{}", section("", 0))
        .replace("a=sendonly", "a=recvonly")
        .replace(
            "a=rtpmap:96 VP8/90000\r\n",
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n",
        );
    let refused = http()
        .post(&whep_url)
        .header("content-type", "application/sdp")
        .body(video_only)
        .send()
        .expect("POST a video-only offer");
    let code = refused.status().as_u16();
    let text = refused.text().unwrap_or_default();
    assert!(code == 400 && text.contains("audio-only"), "{code} {text}");

    let (lines, mut stdin, _node) = node_script("whep_view.mjs", &["--sound".as_ref(), whep_url.as_ref()]);
    let heard: Value = lines.until(Duration::from_secs(40), |l| serde_json::from_str(l).ok());
    assert!(heard["error"].is_null(), "the page could not listen: {heard}");
    assert_eq!(heard["audio"]["codec"], "audio/opus", "{heard}");
    assert_eq!(heard["video_direction"], "inactive", "{heard}");
    assert_eq!(Broadcast::output(&bc.status(), "out_2")["viewers"], 1);
    let recording = base64::engine::general_purpose::STANDARD
        .decode(heard["recording"].as_str().expect("recording"))
        .expect("base64");
    let file = tempfile::Builder::new().suffix(".webm").tempfile().expect("temp file");
    std::fs::write(file.path(), recording).expect("write the page's recording");
    let report = both_tones_heard(file.path(), 1.5).unwrap_or_else(|r| panic!("not both heard over WHEP: {r}"));
    println!("WHEP: {report}");

    writeln!(stdin, "stop").expect("write to node");
    lines.until(Duration::from_secs(15), |l| l.contains("\"stopped\"").then_some(()));
    wait_for("the listener gone from the status", Duration::from_secs(2), || {
        (Broadcast::output(&bc.status(), "out_2")["viewers"] == 0).then_some(())
    });
}
