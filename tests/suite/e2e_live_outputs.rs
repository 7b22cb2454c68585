//! Outputs on a live broadcast: added and removed without touching the others, and an RTMP server that dies and
//! comes back on the same port gets the stream again (from a keyframe) while the other outputs never gap.

use crate::support::broadcast::Broadcast;
use crate::support::media::{keyframe_pts, max_gap, streams, video_pts};
use crate::support::{get_json, http, publish, wait_for, KillOnDrop, Server};
use callcast::tools::bench::ingest::NginxRtmp;
use serde_json::{json, Value};
use std::time::Duration;

fn start(server: &Server, room: &str, outputs: Value) -> Broadcast {
    Broadcast::start(
        server,
        &json!({
            "source": {"kind": "room", "room": room},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": outputs,
        }),
    )
}

fn output(status: &Value, id: &str) -> Value {
    status["outputs"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Video frames recorded so far (ffprobe reads a growing FLV fine).
fn frames(path: &std::path::Path) -> usize {
    path.to_str().map_or(0, |p| video_pts(p).len())
}

#[test]
fn outputs_are_added_and_removed_live() {
    let nginx = NginxRtmp::start();
    let server = Server::start(&[]);
    let _red: KillOnDrop = publish(&server.whip_url("live-out"), "red", "color:ff0000");
    let bc = start(
        &server,
        "live-out",
        json!([{"kind": "hls", "segment_seconds": 1, "window": 120}]),
    );
    wait_for("HLS live", Duration::from_secs(30), || {
        (bc.segments().len() >= 2).then_some(())
    });

    let key = "added-key-9c1f";
    let outputs_url = server.url(&format!("/v1/broadcasts/{}/outputs", bc.id));
    let added = http()
        .post(&outputs_url)
        .json(&json!({"kind": "rtmp", "url": nginx.url(key)}))
        .send()
        .expect("POST output");
    assert_eq!(added.status().as_u16(), 201);
    let added: Value = added.json().expect("JSON");
    assert_eq!(added["id"], "out_1");
    assert!(!added.to_string().contains(key), "{added}");

    let recording = nginx.recording(key);
    wait_for("the added output live and recording", Duration::from_secs(20), || {
        (output(&bc.status(), "out_1")["state"] == "live" && frames(&recording) > 30).then_some(())
    });

    // Mistakes are refused, naming the field; nothing changes.
    for (body, field) in [
        (json!({"kind": "hls"}), "kind"),
        (json!({"kind": "rtmp", "url": "http://x/app/key"}), "url"),
        (json!({"kind": "srt"}), "kind"),
    ] {
        let response = http().post(&outputs_url).json(&body).send().expect("POST");
        let code = response.status().as_u16();
        let reply: Value = response.json().expect("JSON");
        assert_eq!((code, reply["field"].as_str()), (400, Some(field)), "{body}: {reply}");
    }
    let missing = http().delete(format!("{outputs_url}/out_7")).send().expect("DELETE");
    assert_eq!(missing.status().as_u16(), 404);

    let removed = http()
        .delete(format!("{outputs_url}/out_1"))
        .send()
        .expect("DELETE output");
    assert_eq!(removed.status().as_u16(), 200);
    let after: Value = removed.json().expect("JSON");
    assert_eq!(output(&after, "out_1")["state"], "ended", "{after}");
    assert_eq!(output(&after, "out_0")["state"], "live", "{after}");
    assert_eq!(after["state"], "live");

    // The removed output was finalised: a complete recording with both tracks.
    let kinds: Vec<String> = streams(recording.to_str().expect("path"))
        .into_iter()
        .map(|s| s.1)
        .collect();
    assert!(
        kinds.contains(&"h264".to_string()) && kinds.contains(&"aac".to_string()),
        "{kinds:?}"
    );
    assert!(video_pts(recording.to_str().expect("path")).len() > 30);

    let seen = bc.segments().len();
    wait_for("HLS going on", Duration::from_secs(10), || {
        (bc.segments().len() >= seen + 2).then_some(())
    });
    assert_eq!(bc.stop()["state"], "ended");
    let gap = max_gap(&video_pts(bc.playlist.to_str().expect("path")));
    assert!(gap < 0.1, "HLS gapped {gap:.3} s while an output came and went");
}

/// The flaky output's byte counts seen so far; each check asserts neither went down.
#[derive(Default)]
struct ByteCounts {
    status: u64,
    metric: u64,
}

impl ByteCounts {
    /// Reads both counts of `out_0` again; returns the status figure.
    fn check(&mut self, server: &Server, bc: &Broadcast) -> u64 {
        let status = output(&bc.status(), "out_0")["bytes"].as_u64().unwrap_or(0);
        assert!(
            status >= self.status,
            "status bytes went down: {} -> {status}",
            self.status
        );
        self.status = status;
        if let Some(metric) = bc.bytes_metric(server, "out_0") {
            assert!(
                metric >= self.metric,
                "callcast_output_bytes_total went down: {} -> {metric}",
                self.metric
            );
            self.metric = metric;
        }
        status
    }
}

#[test]
fn an_rtmp_server_restart_is_ridden_out() {
    let mut flaky = NginxRtmp::start();
    let steady = NginxRtmp::start();
    let server = Server::start(&[]);
    let _red: KillOnDrop = publish(&server.whip_url("restart"), "red", "color:ff0000");
    let bc = start(
        &server,
        "restart",
        json!([
            {"kind": "rtmp", "url": flaky.url("flaky")},
            {"kind": "rtmp", "url": steady.url("steady")},
            {"kind": "hls", "segment_seconds": 1, "window": 120},
        ]),
    );
    wait_for("every output live", Duration::from_secs(30), || {
        let s = bc.status();
        s["outputs"]
            .as_array()?
            .iter()
            .all(|o| o["state"] == "live")
            .then_some(())
    });

    // The flaky output's byte counters (status and /metrics) are watched across the restart: they never go down.
    let mut counted = ByteCounts::default();
    let first_recording = flaky.recording("flaky");
    wait_for("the flaky server recording", Duration::from_secs(20), || {
        (counted.check(&server, &bc) > 50_000 && frames(&first_recording) > 30).then_some(())
    });
    flaky.kill();
    let status = wait_for(
        "the killed server's output reconnecting",
        Duration::from_secs(20),
        || {
            counted.check(&server, &bc);
            let s = bc.status();
            (output(&s, "out_0")["state"] == "reconnecting").then_some(s)
        },
    );
    assert_eq!(output(&status, "out_1")["state"], "live", "{status}");
    assert!(output(&status, "out_0")["next_retry_at_ms"].is_u64(), "{status}");
    flaky.restart();
    let recording = flaky.recording("flaky");
    let before_restart = counted.status;
    let back = wait_for(
        "the output back on the restarted server",
        Duration::from_secs(30),
        || {
            counted.check(&server, &bc);
            let s = bc.status();
            let back = output(&s, "out_0");
            (back["state"] == "live" && back["reconnects"].as_u64()? >= 1 && frames(&recording) > 30).then_some(back)
        },
    );
    // Live again: no retry is pending any more, and the counter went on from where it was.
    assert!(back.get("next_retry_at_ms").is_none_or(Value::is_null), "{back}");
    wait_for(
        "the counter past its value before the restart",
        Duration::from_secs(10),
        || (counted.check(&server, &bc) > before_restart && counted.metric > before_restart).then_some(()),
    );
    let url = server.url(&format!("/v1/broadcasts/{}", bc.id));
    assert_eq!(get_json(&url)["state"], "live");
    assert_eq!(bc.stop()["state"], "ended");

    // What the restarted server recorded starts with a keyframe; the others never gapped.
    let flaky_path = recording.to_str().expect("path").to_string();
    let first = video_pts(&flaky_path)
        .first()
        .copied()
        .expect("video in the new recording");
    assert_eq!(
        keyframe_pts(&flaky_path).first().copied(),
        Some(first),
        "first frame is not a keyframe"
    );
    for other in [
        steady.recording("steady").to_str().expect("path").to_string(),
        bc.playlist.to_str().expect("path").to_string(),
    ] {
        let pts = video_pts(&other);
        assert!(pts.len() > 60, "{other}: {} frames", pts.len());
        let gap = max_gap(&pts);
        assert!(gap < 1.0, "{other} gapped {gap:.3} s while another output reconnected");
    }
}
