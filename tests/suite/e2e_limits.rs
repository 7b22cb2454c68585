//! Limits: a broadcast beyond the CPU budget or the broadcast count is refused with 503 and Retry-After while
//! the running one keeps full frame rate; broadcasts end by themselves at `max_duration_s` and when idle.

use crate::support::broadcast::Broadcast;
use crate::support::{http, publish, wait_for, KillOnDrop, Server};
use serde_json::{json, Value};
use std::time::Duration;

fn request(room: &str, extra: Value) -> Value {
    let mut body = json!({
        "source": {"kind": "room", "room": room},
        "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
        "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 60}],
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

fn post(server: &Server, body: &Value) -> (u16, Option<String>, Value) {
    let response = http()
        .post(server.url("/v1/broadcasts"))
        .json(body)
        .send()
        .expect("POST");
    let code = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (code, retry, response.json().unwrap_or(Value::Null))
}

#[test]
fn beyond_capacity_is_503_and_the_running_broadcast_keeps_its_frame_rate() {
    // One 640x360 broadcast is estimated at 0.25 + 0.25 x 0.25 + 4 x 0.07 = 0.59 cores (4 participants at least:
    // people join later), so a budget of 0.9 holds one and not two.
    let server = Server::start(&["--cpu-budget", "0.9", "--max-broadcasts", "3"]);
    let _red: KillOnDrop = publish(&server.whip_url("adm"), "red", "color:ff0000");
    wait_for("the participant in the room", Duration::from_secs(20), || {
        (crate::support::get_json(&server.url("/v1/rooms/adm"))["participants"]
            .as_array()?
            .len()
            == 1)
            .then_some(())
    });
    let first = Broadcast::start(&server, &request("adm", json!({})));
    wait_for("4 segments", Duration::from_secs(30), || {
        (first.segments().len() >= 4).then_some(())
    });

    for _ in 0..3 {
        let (code, retry, body) = post(&server, &request("adm", json!({})));
        assert_eq!(code, 503, "{body}");
        assert!(
            retry.is_some_and(|r| r.parse::<u32>().is_ok_and(|s| s > 0)),
            "Retry-After"
        );
        assert!(body["error"].as_str().is_some_and(|e| e.contains("CPU")), "{body}");
    }
    let listed = crate::support::get_json(&server.url("/v1/broadcasts"))["broadcasts"]
        .as_array()
        .map_or(0, |a| a.len());
    assert_eq!(listed, 1, "a refused broadcast leaves nothing behind");

    // The running broadcast kept full frame rate through the refusals.
    let (frames, fps) = first.frame_rate_over_next_segments(4);
    assert!(frames >= 100, "{frames} frames in 4 one-second segments");
    assert!(fps >= 29.0, "{fps:.1} fps over the next 4 segments");

    // Capacity comes back when the broadcast ends.
    assert_eq!(first.stop()["state"], "ended");
    let (code, _, body) = post(&server, &request("adm", json!({})));
    assert_eq!(code, 201, "{body}");
}

/// The figure after "needs about " in a refusal.
fn needed_cores(text: &str) -> Option<f64> {
    let rest = text.split("needs about ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn readiness_and_admission_estimate_a_broadcast_alike() {
    // Less than a default broadcast needs: /readyz says not ready, and a default POST is refused, both naming
    // the same cost, whether the room is empty (people join later) or nobody can see the call (Janus).
    let server = Server::start(&["--cpu-budget", "0.5"]);
    let ready = http().get(server.url("/readyz")).send().expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    let ready: Value = ready.json().expect("JSON");
    let readiness = needed_cores(&ready["problems"].to_string()).unwrap_or_else(|| panic!("{ready}"));
    for source in [
        json!({"kind": "room", "room": "empty"}),
        json!({"kind": "janus", "url": "http://127.0.0.1:9/janus", "room": 1234}),
    ] {
        let (code, _, body) = post(&server, &json!({"source": source, "outputs": [{"kind": "hls"}]}));
        assert_eq!(code, 503, "{body}");
        let admission = needed_cores(body["error"].as_str().unwrap_or_default()).unwrap_or_else(|| panic!("{body}"));
        assert_eq!(
            admission, readiness,
            "POST {source} and /readyz estimate the same broadcast differently"
        );
    }
}

#[test]
fn broadcast_count_limit() {
    let server = Server::start(&["--max-broadcasts", "1"]);
    let _first = Broadcast::start(&server, &request("count", json!({})));
    let (code, _, body) = post(&server, &request("count", json!({})));
    assert_eq!(code, 503, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("max_broadcasts")),
        "{body}"
    );
}

#[test]
fn broadcasts_end_at_their_duration_limit_and_when_idle() {
    let server = Server::start(&[]);
    let _red: KillOnDrop = publish(&server.whip_url("busy"), "red", "color:ff0000");
    let limited = Broadcast::start(&server, &request("busy", json!({"max_duration_s": 3})));
    let idle = Broadcast::start(&server, &request("nobody", json!({"idle_timeout_s": 2})));
    for (bc, reason) in [(&limited, "limit_reached"), (&idle, "idle")] {
        let status = wait_for(reason, Duration::from_secs(20), || {
            let s = bc.status();
            (s["state"] == "ended").then_some(s)
        });
        assert_eq!(status["reason"], reason, "{status}");
        let playlist = std::fs::read_to_string(&bc.playlist).unwrap_or_default();
        assert!(playlist.trim_end().ends_with("#EXT-X-ENDLIST"), "{reason}: {playlist}");
    }
    let (code, _, body) = post(&server, &request("busy", json!({"max_duration_s": 0})));
    assert_eq!((code, body["field"].as_str()), (400, Some("max_duration_s")), "{body}");
}
