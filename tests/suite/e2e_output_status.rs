//! An output's status says what is true: HLS counts the bytes it writes, an RTMP server that never completes the
//! handshake never makes the output `live`.

use crate::support::broadcast::Broadcast;
use crate::support::events::follow_events;
use crate::support::{wait_for, Server};
use serde_json::{json, Value};
use std::time::Duration;

/// Bytes of the segment files on disk now.
fn segment_bytes(bc: &Broadcast) -> u64 {
    let dir = bc.playlist.parent().expect("hls dir");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".ts"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn hls_bytes_grow_with_the_segments_on_disk() {
    let server = Server::start(&[]);
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "bytes"},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 60}],
        }),
    );
    wait_for("3 segments", Duration::from_secs(30), || {
        (bc.segments().len() >= 3).then_some(())
    });
    let written = segment_bytes(&bc);
    assert!(written > 10_000, "{written} bytes of segments");
    // Both figures reach at least what was on disk a moment ago (they are reported about once a second).
    let (status, metric) = wait_for(
        "the byte count to reach the segments' size",
        Duration::from_secs(10),
        || {
            let status = Broadcast::output(&bc.status(), "out_0")["bytes"].as_u64()?;
            let metric = bc.bytes_metric(&server, "out_0")?;
            (status >= written && metric >= written).then_some((status, metric))
        },
    );
    println!("{written} bytes of segments on disk; status {status}, /metrics {metric}");
    assert_eq!(bc.stop()["state"], "ended");
}

/// A TCP server that accepts connections and never says a word (nor closes them).
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn an_rtmp_server_that_never_shakes_hands_is_never_live() {
    let server = Server::start(&[]);
    let events = follow_events(&server);
    let port = silent_server();
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "silent"},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [
                {"kind": "rtmp", "url": format!("rtmp://127.0.0.1:{port}/live/key"),
                 "reconnect_initial_ms": 200, "reconnect_max_interval_s": 1},
                {"kind": "hls", "segment_seconds": 1},
                // Gives up after failing for 1 s without going live in between: at its second failure.
                {"kind": "rtmp", "url": format!("rtmp://127.0.0.1:{port}/live/other"),
                 "reconnect_initial_ms": 200, "reconnect_max_interval_s": 1, "max_reconnect_s": 1},
            ],
        }),
    );
    // rtmp2sink gives up a handshake after 5 s: two attempts take about 11 s. Watched every 100 ms meanwhile.
    let mut states = Vec::new();
    let last = wait_for("the RTMP outputs to fail twice", Duration::from_secs(40), || {
        let s = bc.status();
        let rtmp = Broadcast::output(&s, "out_0");
        states.push(rtmp["state"].as_str().unwrap_or_default().to_string());
        states.push(
            Broadcast::output(&s, "out_2")["state"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        (rtmp["reconnects"].as_u64()? >= 2 && Broadcast::output(&s, "out_2")["state"] == "failed").then_some(s)
    });
    assert!(
        !states.iter().any(|s| s == "live"),
        "went live without a handshake: {states:?}"
    );
    assert_eq!(Broadcast::output(&last, "out_0")["state"], "reconnecting", "{last}");
    assert_eq!(Broadcast::output(&last, "out_1")["state"], "live", "{last}");

    // Stopping it while it waits for a handshake is immediate: nothing was sent, so there is nothing to finish.
    let sent = std::time::Instant::now();
    assert_eq!(bc.stop()["state"], "ended");
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "DELETE took {took:?}");
    let mut seen: Vec<Value> = Vec::new();
    wait_for("the broadcast.ended event", Duration::from_secs(10), || {
        seen.extend(events.try_iter());
        seen.iter().any(|e| e["kind"] == "broadcast.ended").then_some(())
    });
    let live_outputs: Vec<&Value> = seen
        .iter()
        .filter(|e| e["kind"] == "output.live")
        .map(|e| &e["data"]["output_id"])
        .collect();
    assert_eq!(live_outputs, [&json!("out_1")], "only HLS went live: {seen:?}");
    let reconnecting = seen
        .iter()
        .filter(|e| e["kind"] == "output.reconnecting" && e["data"]["output_id"] == "out_0")
        .count();
    assert!(reconnecting >= 1, "{seen:?}");
}
