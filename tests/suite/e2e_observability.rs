//! What operators watch: `/v1/events` (SSE) tells a broadcast's story as it happens, `/metrics` has the figures
//! in Prometheus format, `/readyz` says whether another broadcast would be taken.

use crate::support::broadcast::Broadcast;
use crate::support::events::follow_events;
use crate::support::{http, publish, wait_for, KillOnDrop, Server};
use serde_json::{json, Value};
use std::sync::mpsc;
use std::time::Duration;

/// Waits (with a deadline) until an event of each of `kinds` arrived, in any order; returns them in that order.
fn expect_events(events: &mpsc::Receiver<Value>, kinds: &[&str], seen: &mut Vec<Value>) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<Option<Value>> = kinds
            .iter()
            .map(|k| seen.iter().find(|e| e["kind"] == *k).cloned())
            .collect();
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let event = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("not all of {kinds:?} within 30 s; saw {seen:?}"));
        seen.push(event);
    }
}

#[test]
fn events_metrics_and_readiness() {
    let server = Server::start(&["--max-broadcasts", "1"]);
    let ready = http().get(server.url("/readyz")).send().expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);

    let events = follow_events(&server);
    let _red: KillOnDrop = publish(&server.whip_url("watched"), "red", "color:ff0000");
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "watched"},
            "video": {"width": 320, "height": 180},
            "outputs": [{"kind": "hls", "segment_seconds": 1}],
        }),
    );
    let mut seen = Vec::new();
    let got = expect_events(
        &events,
        &[
            "broadcast.started",
            "participant.joined",
            "broadcast.live",
            "output.live",
        ],
        &mut seen,
    );
    assert_eq!(got[0]["broadcast_id"], bc.id.as_str());
    assert_eq!(got[1]["data"]["name"], "red");
    assert_eq!(got[3]["data"]["output_id"], "out_0");

    // Metrics once bytes flowed.
    wait_for("output bytes in /metrics", Duration::from_secs(20), || {
        let text = http().get(server.url("/metrics")).send().ok()?.text().ok()?;
        let bytes_line = text.lines().find(|l| l.starts_with("callcast_output_bytes_total{"))?;
        let bytes: f64 = bytes_line.rsplit(' ').next()?.parse().ok()?;
        let fps_line = text.lines().find(|l| l.starts_with("callcast_output_fps{"))?;
        let fps: f64 = fps_line.rsplit(' ').next()?.parse().ok()?;
        (bytes > 0.0
            && fps > 20.0
            && text.contains("callcast_frames_dropped_total{")
            && text.contains("callcast_broadcasts{state=\"live\"} 1")
            && text.contains("callcast_participants{broadcast_id=")
            && text.contains("callcast_start_seconds_count 1")
            && text.contains("process_resident_memory_bytes"))
        .then_some(())
    });

    // At the broadcast limit the server is not ready for another: 503, naming the limit.
    let busy = http().get(server.url("/readyz")).send().expect("readyz");
    assert_eq!(busy.status().as_u16(), 503);
    let busy: Value = busy.json().expect("JSON");
    assert_eq!(busy["ready"], false, "{busy}");
    assert!(busy["problems"].to_string().contains("max_broadcasts"), "{busy}");

    assert_eq!(bc.stop()["state"], "ended");
    let ended = expect_events(&events, &["broadcast.ended"], &mut seen);
    assert_eq!(ended[0]["data"]["reason"], "stopped");
    let ids: Vec<u64> = seen.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "event ids increase: {ids:?}");
    let ready = http().get(server.url("/readyz")).send().expect("readyz");
    assert_eq!(ready.status().as_u16(), 200, "ready again once the broadcast ended");
}
