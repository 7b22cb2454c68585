//! SRT output against a real SRT peer (ffmpeg's libsrt listener): added live, the receiver gets H.264 + AAC in
//! MPEG-TS; the receiver killed and started again on the same port -> the output reconnects and is live again
//! while HLS never gaps; a receiver with another passphrase -> a clear error in that output's status while the
//! others go on; the passphrase and stream id appear in no response, status or log line. An audio-only broadcast
//! of the same call sends its AAC alone over SRT.

use crate::support::broadcast::Broadcast;
use crate::support::media::{streams, video_pts, window_max_gap};
use crate::support::{free_port, http, publish, wait_for, KillOnDrop, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "srt-pass-4e8b1d";
const STREAM_ID: &str = "sid_live_93a7c2";
const OTHER_PASSPHRASE: &str = "not-the-same-passphrase";

/// `ffmpeg` listening for one SRT caller on `port`, copying what it receives into `into` (MPEG-TS).
fn listener(port: u16, passphrase: &str, into: &Path) -> KillOnDrop {
    let url = format!("srt://127.0.0.1:{port}?mode=listener&passphrase={passphrase}");
    KillOnDrop(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", &url])
            // Written packet by packet: by default ffmpeg writes a file in 256 KiB blocks, 20 s of this stream.
            .args(["-map", "0", "-c", "copy", "-flush_packets", "1", "-f", "mpegts"])
            .arg(into)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ffmpeg (deploy/install-deps.sh installs it, with libsrt)"),
    )
}

/// The codec names ffprobe finds in what a listener wrote so far (none while the file is empty).
fn codecs(path: &Path) -> Vec<String> {
    // About 2 s of this stream: a keyframe with its SPS and PPS, and audio.
    if std::fs::metadata(path).map_or(0, |m| m.len()) < 25_000 {
        return Vec::new();
    }
    let mut names: Vec<String> = streams(path.to_str().expect("path")).into_iter().map(|s| s.1).collect();
    names.sort();
    names
}

fn output(status: &Value, id: &str) -> Value {
    Broadcast::output(status, id)
}

#[test]
fn srt_reaches_a_listener_rides_out_its_restart_and_reports_a_wrong_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, wrong_port, audio_port) = (free_port(), free_port(), free_port());
    let received: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("received-{i}.ts"))).collect();
    let mut receiver = listener(port, PASSPHRASE, &received[0]);
    let _other = listener(wrong_port, OTHER_PASSPHRASE, &dir.path().join("never.ts"));
    let _audio_receiver = listener(audio_port, PASSPHRASE, &received[2]);
    let server = Server::start(&[]);
    let _red: KillOnDrop = publish(&server.whip_url("srt"), "red", "color:ff0000");
    let srt_url =
        |port: u16| format!("srt://127.0.0.1:{port}?streamid={STREAM_ID}&passphrase={PASSPHRASE}&latency=120");
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "srt"},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [
                {"kind": "hls", "segment_seconds": 1, "window": 120},
                {"kind": "srt", "url": srt_url(wrong_port), "reconnect_initial_ms": 200, "reconnect_max_interval_s": 1},
            ],
        }),
    );
    let audio_only = Broadcast::start(
        &server,
        &json!({"source": {"kind": "room", "room": "srt"}, "video": null,
                "outputs": [{"kind": "srt", "url": srt_url(audio_port)}]}),
    );
    let outputs_url = server.url(&format!("/v1/broadcasts/{}/outputs", bc.id));
    let mut seen: Vec<String> = Vec::new();

    // Mistakes are refused naming the field, without quoting the URL.
    for bad in [
        format!("rtmp://127.0.0.1:{port}/live/{STREAM_ID}"),
        format!("srt://127.0.0.1?passphrase={PASSPHRASE}"),
        format!("srt://127.0.0.1:{port}?passphrase=short_pw9"),
        format!("srt://127.0.0.1:{port}?passphrase={}", "p".repeat(80)),
        format!("srt://127.0.0.1:{port}?passphrase={PASSPHRASE}&mode=rendezvous"),
        format!("srt://127.0.0.1:{port}?passphrase={PASSPHRASE}&mode=listener"),
    ] {
        let response = http()
            .post(&outputs_url)
            .json(&json!({"kind": "srt", "url": bad}))
            .send()
            .expect("POST");
        let code = response.status().as_u16();
        let reply: Value = response.json().expect("JSON");
        assert_eq!((code, reply["field"].as_str()), (400, Some("url")), "{bad}: {reply}");
        seen.push(reply.to_string());
    }

    // The SRT output added live, with a short backoff (200 ms doubling to 1 s).
    let response = http()
        .post(&outputs_url)
        .json(&json!({"kind": "srt", "url": srt_url(port), "reconnect_initial_ms": 200, "reconnect_max_interval_s": 1}))
        .send()
        .expect("POST output");
    assert_eq!(response.status().as_u16(), 201);
    let added: Value = response.json().expect("JSON");
    seen.push(added.to_string());
    let id = added["id"].as_str().expect("id").to_string();
    let expected_url = format!("srt://127.0.0.1:{port}?streamid=***&passphrase=***&latency=120");
    assert_eq!(added["url"], expected_url.as_str(), "{added}");

    // Live, and what the listener got is H.264 + AAC; the other passphrase is refused in its own output.
    let status = wait_for("the SRT output live and received", Duration::from_secs(30), || {
        let s = bc.status();
        let live = output(&s, &id)["state"] == "live" && output(&s, "out_0")["state"] == "live";
        (live && codecs(&received[0]) == ["aac", "h264"]).then_some(s)
    });
    seen.push(status.to_string());
    let on_air = Instant::now();
    wait_for(
        "the audio-only broadcast's AAC received",
        Duration::from_secs(15),
        || {
            let live = output(&audio_only.status(), "out_0")["state"] == "live";
            (live && codecs(&received[2]) == ["aac"]).then_some(())
        },
    );
    assert_eq!(audio_only.stop()["state"], "ended");
    let refused = wait_for("the wrong passphrase reported", Duration::from_secs(20), || {
        let s = bc.status();
        let refused = output(&s, "out_1");
        (refused["state"] == "reconnecting" && refused["reconnects"].as_u64()? >= 2).then_some(refused)
    });
    seen.push(refused.to_string());
    let error = refused["error"].as_str().unwrap_or_default();
    // srtsink words it "Incorrect passphrase" or, when the refusal came before its first send (on loopback,
    // most of the time), "Connection does not exist": either way the status says what to check.
    assert!(
        error.contains("srtsink")
            && (error.contains("refused the passphrase") || error.contains("refused the connection: a passphrase")),
        "{refused}"
    );

    // The listener dies and comes back on the same port: the output reconnects and is live again.
    let bytes_before = output(&bc.status(), &id)["bytes"].as_u64().unwrap_or(0);
    assert!(bytes_before > 50_000, "{bytes_before} bytes counted");
    drop(receiver);
    let retrying = wait_for("the SRT output retrying", Duration::from_secs(20), || {
        let s = bc.status();
        (output(&s, &id)["state"] == "reconnecting").then_some(s)
    });
    seen.push(retrying.to_string());
    assert_eq!(output(&retrying, "out_0")["state"], "live", "{retrying}");
    receiver = listener(port, PASSPHRASE, &received[1]);
    let back = wait_for("the SRT output live again", Duration::from_secs(20), || {
        let s = bc.status();
        let back = output(&s, &id);
        (back["state"] == "live" && back["reconnects"].as_u64()? >= 1 && codecs(&received[1]) == ["aac", "h264"])
            .then_some(back)
    });
    seen.push(back.to_string());
    assert!(back["bytes"].as_u64().unwrap_or(0) > bytes_before, "{back}");

    // Removed live: it ends, the broadcast goes on.
    let removed = http()
        .delete(format!("{outputs_url}/{id}"))
        .send()
        .expect("DELETE output");
    assert_eq!(removed.status().as_u16(), 200);
    let after: Value = removed.json().expect("JSON");
    seen.push(after.to_string());
    assert_eq!(output(&after, &id)["state"], "ended", "{after}");
    assert_eq!(output(&after, "out_0")["state"], "live", "{after}");
    drop(receiver);

    let stopped = bc.stop();
    seen.push(stopped.to_string());
    let on_air_s = on_air.elapsed().as_secs_f64();
    let pts = video_pts(bc.playlist.to_str().expect("path"));
    let gap = window_max_gap("HLS", &pts, on_air_s, 30.0);
    assert!(gap < 0.1, "HLS gapped {gap:.3} s while the SRT output reconnected");

    let log = server.log_text();
    assert!(log.contains("output failed"), "the log has the retries: {log}");
    for secret in [PASSPHRASE, STREAM_ID, OTHER_PASSPHRASE] {
        assert!(!log.contains(secret), "{secret} in the server log");
        for body in &seen {
            assert!(!body.contains(secret), "{secret} in an API response: {body}");
        }
    }
    server.check_log();
}
