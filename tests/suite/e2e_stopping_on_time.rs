//! Stopping on time: an output that is not connected (waiting to retry a refused connection) has nothing to
//! drain, so it never holds up a `DELETE` or a SIGTERM.

use crate::support::broadcast::Broadcast;
use crate::support::{free_port, wait_for, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A broadcast with HLS and `refused` RTMP outputs to a port nothing listens on (bound, then let go). Keyframes
/// come every `keyframe_s`: an output's new attempt waits for one before it connects.
fn with_refused_outputs(server: &Server, room: &str, refused: usize, keyframe_s: u32) -> Broadcast {
    let port = free_port();
    let mut outputs = vec![json!({"kind": "hls", "segment_seconds": 1})];
    outputs.extend((0..refused).map(|i| json!({"kind": "rtmp", "url": format!("rtmp://127.0.0.1:{port}/live/k{i}")})));
    Broadcast::start(
        server,
        &json!({
            "source": {"kind": "room", "room": room},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": keyframe_s},
            "outputs": outputs,
        }),
    )
}

/// Waits until HLS is live and every RTMP output has failed at least `tries` times.
fn wait_retrying(bc: &Broadcast, tries: u64) -> Value {
    wait_for(
        "HLS live and every RTMP output retrying",
        Duration::from_secs(40),
        || {
            let s = bc.status();
            let outputs = s["outputs"].as_array()?;
            let retrying = outputs
                .iter()
                .filter(|o| o["kind"] == "rtmp")
                .all(|o| o["state"] == "reconnecting" && o["reconnects"].as_u64().unwrap_or(0) >= tries);
            (retrying && outputs[0]["state"] == "live").then_some(s)
        },
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn playlist_ended(bc: &Broadcast) -> bool {
    std::fs::read_to_string(&bc.playlist).is_ok_and(|t| t.trim_end().ends_with("#EXT-X-ENDLIST"))
}

/// Waits until every RTMP output of `status` is past its next retry time: its new attempt is under way.
fn wait_attempting(status: &Value) {
    let retry_at = status["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["next_retry_at_ms"].as_u64())
        .max()
        .expect("next_retry_at_ms");
    wait_for("the next attempts under way", Duration::from_secs(15), || {
        (now_ms() > retry_at + 300).then_some(())
    });
}

#[test]
fn delete_with_an_output_in_backoff_answers_within_1_s() {
    let server = Server::start(&[]);
    for attempting in [false, true] {
        // Keyframes every 5 s: after its first refusal (at the first keyframe) the output waits 1 s, then its new
        // attempt waits for the next keyframe before it connects.
        let bc = with_refused_outputs(&server, "backoff", 1, 5);
        let status = wait_retrying(&bc, 1);
        let phase = if attempting {
            wait_attempting(&status);
            assert_eq!(
                bc.status()["outputs"][1]["reconnects"],
                1,
                "the attempt is still waiting for a keyframe"
            );
            "waiting for a keyframe to connect"
        } else {
            "waiting to retry"
        };
        let sent = Instant::now();
        let stopped = bc.stop();
        let took = sent.elapsed();
        assert_eq!(stopped["state"], "ended", "{stopped}");
        assert!(
            took < Duration::from_secs(1),
            "DELETE took {took:?} with the output {phase}"
        );
        assert!(playlist_ended(&bc), "{} has no ENDLIST", bc.id);
        println!("DELETE answered in {took:?} with the output {phase}");
    }
    assert!(
        !server.log_text().contains("did not finish in time"),
        "an unconnected output was waited for"
    );
}

#[test]
fn sigterm_with_8_outputs_in_backoff_exits_within_5_s() {
    let mut server = Server::start(&[]);
    // As above: keyframes every 5 s, so after the first refusal and 1 s of backoff each output is in an attempt
    // that has not connected yet (the phase that held a stop for 5 s).
    let broadcasts: Vec<Broadcast> = (0..2)
        .map(|_| with_refused_outputs(&server, "term-backoff", 4, 5))
        .collect();
    let statuses: Vec<Value> = broadcasts.iter().map(|bc| wait_retrying(bc, 1)).collect();
    for status in &statuses {
        wait_attempting(status);
    }
    let sent = Instant::now();
    let exit = server
        .process
        .signal_and_wait("TERM", Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    let took = sent.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    for bc in &broadcasts {
        assert!(playlist_ended(bc), "{} has no ENDLIST", bc.id);
    }
    println!("8 outputs in backoff: the server exited {took:?} after SIGTERM");
}

/// A broadcast stopped the moment it starts, while its mixer is still on its way to PLAYING, ends: its drain
/// once held the pipeline's state lock while a sink still prerolling waited for the pipeline to reach PLAYING,
/// which needs that lock (a deadlock CI met when a test stopped a broadcast it had just started). The stop comes
/// 0 to 300 ms after the start, in 20 ms steps: the window is somewhere in there, its place depending on load.
#[tokio::test]
async fn a_broadcast_stopped_as_it_starts_ends() {
    let (app, _dir) = crate::in_process::app(&[]);
    let json = [("content-type", "application/json")];
    let spec = json!({
        "source": {"kind": "room", "room": "quick"},
        "video": {"width": 320, "height": 180},
        "outputs": [{"kind": "hls", "segment_seconds": 1}],
    })
    .to_string();
    // Participants in the room: their tiles join the mixer as it starts.
    let rtp =
        r#"{"name": "rtp", "tracks": [{"kind": "video", "codec": "VP8", "payload_type": 96, "clock_rate": 90000}]}"#;
    for _ in 0..3 {
        let (code, reply) = crate::in_process::send(&app, "POST", "/v1/rooms/quick/rtp", &json, rtp).await;
        assert_eq!(code, 201, "{reply}");
    }
    for round in 0..16u64 {
        let (code, reply) = crate::in_process::send(&app, "POST", "/v1/broadcasts", &json, &spec).await;
        assert_eq!(code, 201, "{reply}");
        let id = serde_json::from_str::<Value>(&reply).expect("JSON")["id"]
            .as_str()
            .expect("id")
            .to_string();
        // Not a wait for anything: the delay sweeps the start-up window.
        tokio::time::sleep(Duration::from_millis(20 * round)).await;
        let uri = format!("/v1/broadcasts/{id}");
        let stop = crate::in_process::send(&app, "DELETE", &uri, &[], "");
        let (code, reply) = tokio::time::timeout(Duration::from_secs(15), stop)
            .await
            .unwrap_or_else(|_| panic!("round {round}: DELETE of a starting broadcast did not answer in 15 s"));
        assert_eq!(code, 200, "{reply}");
        let status: Value = serde_json::from_str(&reply).expect("JSON");
        assert_eq!(status["state"], "ended", "round {round}: {status}");
    }
}
