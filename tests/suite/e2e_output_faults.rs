//! Outputs are independent: an RTMP(S) target that refuses us never stops HLS, and its key never leaks.
//! Also covers a broadcast that starts with nobody in the room and an H.264 participant joining later.

use crate::support::broadcast::Broadcast;
use crate::support::media::{close_to, last_frame};
use crate::support::{get_json, publish_with, wait_for, Server};
use callcast::layout::{grid, Canvas, TILE_GAP};
use serde_json::json;
use std::time::Duration;

const ROOM: &str = "faults";

fn segment_count(playlist: &std::path::Path) -> usize {
    std::fs::read_to_string(playlist)
        .map(|t| t.lines().filter(|l| l.ends_with(".ts")).count())
        .unwrap_or(0)
}

#[test]
fn refused_rtmp_outputs_retry_while_hls_keeps_going() {
    let server = Server::start(&[]);
    // Nothing listens on these ports: one plain RTMP, one RTMPS target.
    let key = "sk_live_never_print_me";
    // The discard port: nothing listens on it here, and unlike an ephemeral port nothing can take it meanwhile.
    let dead_port = 9;
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": ROOM},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": [
                {"kind": "rtmp", "url": format!("rtmp://127.0.0.1:{dead_port}/live/{key}")},
                {"kind": "rtmp", "url": format!("rtmps://127.0.0.1:{dead_port}/live/{key}")},
                {"kind": "hls", "segment_seconds": 1, "window": 30},
                // Retries on its own, shorter backoff: 200 ms doubling up to 1 s.
                {"kind": "rtmp", "url": format!("rtmp://127.0.0.1:{dead_port}/live/{key}"),
                 "reconnect_initial_ms": 200, "reconnect_max_interval_s": 1}
            ]
        }),
    );
    let (status_url, playlist) = (bc.status_url.clone(), bc.playlist.clone());

    // With nobody in the room the broadcast is live (black + silence) and HLS flows.
    let status = wait_for("HLS live while RTMP outputs reconnect", Duration::from_secs(20), || {
        let s = get_json(&status_url);
        let outputs = s["outputs"].as_array()?;
        let rtmp_retrying = outputs[..2]
            .iter()
            .all(|o| o["state"] == "reconnecting" && o["reconnects"].as_u64().unwrap_or(0) >= 1);
        let ok =
            s["state"] == "live" && rtmp_retrying && outputs[2]["state"] == "live" && segment_count(&playlist) >= 3;
        ok.then_some(s)
    });
    let text = status.to_string();
    assert!(!text.contains(key), "key leaked in status: {text}");
    // When the next attempt comes: within the longest backoff (10 s) of now.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let next = status["outputs"][0]["next_retry_at_ms"]
        .as_u64()
        .expect("next_retry_at_ms");
    assert!(next + 1_000 >= now_ms && next <= now_ms + 10_500, "{next} vs {now_ms}");
    // The output with the short backoff tries more often than the one with the default (1 s doubling to 10 s).
    let reconnects = |s: &serde_json::Value, i: usize| s["outputs"][i]["reconnects"].as_u64().unwrap_or(0);
    wait_for("the short backoff to retry more often", Duration::from_secs(15), || {
        let s = get_json(&status_url);
        (reconnects(&s, 3) >= reconnects(&s, 0) + 3).then_some(())
    });
    assert!(
        status["outputs"][0]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{text}"
    );

    // An H.264 participant joins the running broadcast and fills the canvas.
    let _publisher = publish_with(
        &server.whip_url(ROOM),
        "h264",
        &["--codec", "h264", "--pattern", "color:ffff00", "--tone", "0"],
        std::process::Stdio::null(),
    );
    wait_for("the H.264 participant on screen", Duration::from_secs(20), || {
        let s = get_json(&status_url);
        (s["participants"].as_array()?.len() == 1).then_some(())
    });
    let (x, y) = grid(
        1,
        Canvas {
            width: 640,
            height: 360,
        },
        TILE_GAP,
    )[0]
    .center();
    wait_for(
        "yellow at the centre of the newest segment",
        Duration::from_secs(15),
        || {
            let text = std::fs::read_to_string(&playlist).ok()?;
            let newest = text.lines().rfind(|l| l.ends_with(".ts"))?;
            let frame = last_frame(&playlist.parent()?.join(newest), 640, 360)?;
            close_to(frame.pixel(x, y), [255, 255, 0], 48).then_some(())
        },
    );

    let stopped = bc.stop();
    assert_eq!(stopped["state"], "ended");
    assert_eq!(stopped["outputs"][2]["state"], "ended");
    let text = std::fs::read_to_string(&playlist).expect("playlist");
    assert!(text.contains("#EXT-X-ENDLIST"));
    assert!(!server.log_text().contains(key), "key leaked in the server log");
}
