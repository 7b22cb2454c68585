//! A participant that starts publishing as the broadcast starts (its publisher spawned within the broadcast's
//! first second; its WHIP join lands while the broadcast's outputs are still coming up, 1-3 s in here) is handled
//! like any later join: shown in its tile, and the output runs at full frame rate.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::media::{close_to, last_frame};
use crate::support::{publish, wait_for, Server};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_participant_publishing_as_the_broadcast_starts_is_shown_at_full_frame_rate() {
    let server = Server::start(&[]);
    let broadcast = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "early"},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 60}],
        }),
    );
    let started = Instant::now();
    let _red = publish(&server.whip_url("early"), "red", "color:ff0000");
    let spawned_after = started.elapsed();
    assert!(
        spawned_after < Duration::from_secs(1),
        "the publisher started {spawned_after:?} after the broadcast"
    );
    let joined = wait_for("red in the broadcast", Duration::from_secs(20), || {
        (participant_names(&broadcast.status()) == ["red"]).then(|| started.elapsed())
    });
    println!("red joined {joined:?} after the broadcast started");

    // Shown: one participant fills the canvas, so the centre is theirs.
    wait_for("red on air", Duration::from_secs(15), || {
        let newest = broadcast.segments().pop()?;
        let frame = last_frame(&newest, 640, 360)?;
        close_to(frame.pixel(320, 180), [255, 0, 0], 48).then_some(())
    });

    // Full frame rate over the next four one-second segments once red is on air.
    let (frames, fps) = broadcast.frame_rate_over_next_segments(4);
    assert!(frames >= 100, "{frames} frames in 4 one-second segments");
    assert!(fps >= 29.0, "{fps:.2} fps over 4 segments");
    assert_eq!(broadcast.stop()["state"], "ended");
}
