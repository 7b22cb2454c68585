//! A participant on a bad network: 5% of its packets lost. Receivers ask for repairs and keyframes, at worst its
//! tile freezes for a moment; the broadcast's output keeps full frame rate with no gap.

mod support;

use serde_json::json;
use std::time::Duration;
use support::broadcast::Broadcast;
use support::media::{close_to, decode_last_frame, max_gap, video_pts};
use support::{publish_with, wait_for, KillOnDrop, Server};

#[test]
fn five_percent_loss_never_reaches_the_viewers() {
    let server = Server::start(&[]);
    let _lossy: KillOnDrop = publish_with(
        &server.whip_url("lossy"),
        "lossy",
        &["--pattern", "color:00ff00", "--tone", "440", "--loss", "0.05"],
        std::process::Stdio::null(),
    );
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "lossy"},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 60}],
        }),
    );
    // The lossy participant is on screen (its colour decoded despite the loss)...
    wait_for("the lossy participant's picture", Duration::from_secs(30), || {
        let newest = bc.segments().last()?.clone();
        let frame = decode_last_frame(&newest, 640, 360).ok()?;
        close_to(frame.pixel(320, 180), [0, 255, 0], 60).then_some(())
    });
    // ...and over the next 8 seconds the output keeps its frame rate.
    let seen = bc.segments().len();
    wait_for("8 more segments", Duration::from_secs(30), || {
        (bc.segments().len() >= seen + 8).then_some(())
    });
    assert_eq!(bc.stop()["state"], "ended");
    let recent: Vec<String> = bc.segments()[seen..].iter().map(|p| p.display().to_string()).collect();
    let mut pts: Vec<f64> = recent.iter().flat_map(|s| video_pts(s)).collect();
    pts.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let span = pts.last().expect("frames") - pts.first().expect("frames");
    let fps = (pts.len() as f64 - 1.0) / span;
    assert!(fps >= 29.0, "{fps:.2} fps under 5% loss");
    let gap = max_gap(&pts);
    assert!(gap < 0.1, "gap of {gap:.3} s under 5% loss");
    println!("5% loss: {fps:.2} fps out, largest gap {gap:.3} s over {span:.1} s");
}
