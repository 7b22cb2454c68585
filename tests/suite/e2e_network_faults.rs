//! A participant on a bad network: 5% of its packets lost. Receivers ask for repairs and keyframes, at worst its
//! tile freezes for a moment; the broadcast's output keeps full frame rate with no gap.

use crate::support::broadcast::Broadcast;
use crate::support::media::{close_to, decode_last_frame, max_gap, video_pts};
use crate::support::{publish_with, wait_for, KillOnDrop, Server};
use serde_json::json;
use std::time::Duration;

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

/// Colour at the centre of the newest segment of `bc` (a 320x180 canvas with one tile).
fn centre(bc: &Broadcast) -> Option<[u8; 3]> {
    let newest = bc.segments().last()?.clone();
    Some(decode_last_frame(&newest, 320, 180).ok()?.pixel(160, 90))
}

#[test]
fn a_dead_camera_freezes_then_gives_way_to_the_placeholder_after_video_timeout() {
    const RED: [u8; 3] = [255, 0, 0];
    let server = Server::start(&[]);
    // Video stops after 6 s; the participant's audio goes on, so they stay in the call.
    let _camera: KillOnDrop = publish_with(
        &server.whip_url("dead-camera"),
        "camera",
        &[
            "--pattern",
            "color:ff0000",
            "--tone",
            "440",
            "--video-stops-after-s",
            "6",
        ],
        std::process::Stdio::null(),
    );
    let broadcast = |video_timeout_s: u32| {
        Broadcast::start(
            &server,
            &json!({
                "source": {"kind": "room", "room": "dead-camera"},
                "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
                "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 60}],
                "video_timeout_s": video_timeout_s,
            }),
        )
    };
    let (quick, patient) = (broadcast(1), broadcast(60));
    wait_for("the camera on both broadcasts", Duration::from_secs(30), || {
        (close_to(centre(&quick)?, RED, 60) && close_to(centre(&patient)?, RED, 60)).then_some(())
    });
    // The quick one gives the dead camera its placeholder a second after it stopped...
    let placeholder = wait_for(
        "the placeholder on the quick broadcast",
        Duration::from_secs(30),
        || {
            let pixel = centre(&quick)?;
            (!close_to(pixel, RED, 60) && !close_to(pixel, [0, 0, 0], 30)).then_some(pixel)
        },
    );
    let expected = callcast::mix::placeholder::colour_for("camera").to_be_bytes();
    assert!(
        close_to(placeholder, [expected[1], expected[2], expected[3]], 60),
        "{placeholder:?}"
    );
    // ...while the patient one, 3 s of output later, still shows its last frame.
    let seen = patient.segments().len();
    wait_for("3 more segments", Duration::from_secs(20), || {
        (patient.segments().len() >= seen + 3).then_some(())
    });
    let frozen = centre(&patient).expect("a frame");
    assert!(close_to(frozen, RED, 60), "the last frame stays: {frozen:?}");
    for bc in [&quick, &patient] {
        let status = bc.status();
        assert_eq!(status["participants"].as_array().map(Vec::len), Some(1), "{status}");
        assert!(status["fps_out"].as_f64().is_some_and(|f| f >= 25.0), "{status}");
        assert_eq!(bc.stop()["state"], "ended");
        // Read once the playlist is closed: a live one is followed forever.
        let pts = video_pts(bc.playlist.to_str().expect("path"));
        assert!(max_gap(&pts) < 1.0, "output gap {:.2} s", max_gap(&pts));
    }
}
