//! `callcast publish --replay`: participants sending a clip encoded once and looped show in the composite like
//! live ones, and the clock stamp in their picture moves on with the output (as the send time modulo the clip's
//! 10 s), so the bench can still read latency and skipped pictures from it.

use crate::support::broadcast::Broadcast;
use crate::support::media::{close_to, decode_last_frame, video_pts};
use crate::support::{publish_with, wait_for, KillOnDrop, Server};
use callcast::layout::Rect;
use callcast::tools::clock_stamp;
use serde_json::json;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The two tiles of a 2-participant grid on a 640x360 canvas, worked out by hand: two columns of
/// (640 - 3 x 4 px gap) / 2 = 314 px, the even 16:9 height of that, 176 px, centred: (360 - 176) / 2 = 92.
const LEFT: Rect = Rect {
    x: 4,
    y: 92,
    w: 314,
    h: 176,
};
const RIGHT: Rect = Rect {
    x: 322,
    y: 92,
    w: 314,
    h: 176,
};
/// Below each tile's stamp (its top third), in the picture's solid colour.
const LEFT_COLOUR_AT: (i32, i32) = (161, 220);
const RIGHT_COLOUR_AT: (i32, i32) = (479, 220);
const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const PUBLISHED: (usize, usize) = (640, 360);
/// Segments (1 s each) whose every frame is read.
const READ_SEGMENTS: usize = 3;

#[test]
fn replayed_participants_show_in_the_composite_with_a_moving_clock_stamp() {
    let server = Server::start(&[]);
    let whip = server.whip_url("replay");
    let publisher = |colour: &str| -> KillOnDrop {
        let pattern = format!("color:{colour}");
        let flags = ["--replay", "--clock-stamp", "--tone", "0", "--pattern", &pattern];
        publish_with(&whip, colour, &flags, Stdio::null())
    };
    let _red = publisher("ff0000");
    let _blue = publisher("0000ff");
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "replay"},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 30}],
        }),
    );
    // Both pictures in the composite, one in each tile (in the order they joined, which is not fixed).
    wait_for("a red and a blue tile", Duration::from_secs(20), || {
        let newest = bc.segments().last()?.clone();
        let frame = decode_last_frame(&newest, 640, 360).ok()?;
        let (left, right) = (
            frame.pixel(LEFT_COLOUR_AT.0, LEFT_COLOUR_AT.1),
            frame.pixel(RIGHT_COLOUR_AT.0, RIGHT_COLOUR_AT.1),
        );
        let both = |a, b| close_to(left, a, 60) && close_to(right, b, 60);
        (both(RED, BLUE) || both(BLUE, RED)).then_some(())
    });
    let seen = bc.segments().len();
    wait_for("3 more segments", Duration::from_secs(15), || {
        (bc.segments().len() > seen + READ_SEGMENTS).then_some(())
    });
    let segments: Vec<String> = bc.segments()[seen..seen + READ_SEGMENTS]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let pts = segments.iter().flat_map(|s| video_pts(s)).collect::<Vec<f64>>();
    let frames = luma_frames(&segments);
    assert_eq!(frames.len(), pts.len(), "every frame decoded");
    let output_span_ms =
        (pts.iter().cloned().fold(f64::MIN, f64::max) - pts.iter().cloned().fold(f64::MAX, f64::min)) * 1000.0;
    for (name, tile) in [("left", LEFT), ("right", RIGHT)] {
        let stamps: Vec<u64> = frames
            .iter()
            .filter_map(|luma| clock_stamp::read(luma, 640, tile, PUBLISHED))
            .collect();
        assert!(
            stamps.len() * 10 >= frames.len() * 9,
            "the {name} tile's stamp read in {} of {} frames",
            stamps.len(),
            frames.len()
        );
        // The clip's time, not a wall clock: the send time modulo 10 s.
        assert!(
            stamps.iter().all(|&s| s < clock_stamp::LOOPED_PERIOD_MS),
            "{name}: {stamps:?}"
        );
        // Each step forward (modulo the loop), never back; over the window as far as the output. A step back shows
        // as nearly a whole loop. Frames a loaded machine drops (the publisher's encoder, the tile's leaky input)
        // make a step of a few frames now and then: one of at most a second is load, more are a fault.
        let step = |a: u64, b: u64| (b + clock_stamp::LOOPED_PERIOD_MS - a) % clock_stamp::LOOPED_PERIOD_MS;
        let steps: Vec<u64> = stamps.windows(2).map(|w| step(w[0], w[1])).collect();
        let jumps = steps.iter().filter(|&&s| s > 200).count();
        assert!(
            steps.iter().all(|&s| s <= 1000) && jumps <= 1,
            "{name}: a step back or jumps in {steps:?}"
        );
        let moved = steps.iter().sum::<u64>() as f64;
        assert!(
            (moved - output_span_ms).abs() <= 300.0,
            "{name}: the stamp moved {moved} ms over {output_span_ms:.0} ms of output"
        );
        println!(
            "{name} tile: {} of {} stamps read, moved {moved} ms over {output_span_ms:.0} ms",
            stamps.len(),
            frames.len()
        );
    }
    assert_eq!(bc.stop()["state"], "ended");
}

/// Every frame of `segments` (played back to back) as a 640x360 luma plane.
fn luma_frames(segments: &[String]) -> Vec<Vec<u8>> {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(format!("concat:{}", segments.join("|")))
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "pipe:1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg");
    let mut out = child.stdout.take().expect("stdout");
    let mut frames = Vec::new();
    let mut frame = vec![0u8; 640 * 360];
    while out.read_exact(&mut frame).is_ok() {
        frames.push(frame.clone());
    }
    assert!(child.wait().expect("ffmpeg").success(), "ffmpeg decoded the segments");
    frames
}
