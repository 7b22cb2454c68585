//! Zero-transcode: a lone participant sending H.264 in the `single` template goes out as they send it (their
//! SPS, keyframes asked for at the broadcast's interval), and switching to `grid` and back keeps the output one
//! continuous stream. When the participant vanishes, the mixer takes over within a second.

use crate::support::broadcast::Broadcast;
use crate::support::{http, publish_with, wait_for, Server};
use callcast::tools::bench::ingest::NginxRtmp;
use serde_json::json;
use std::time::Duration;

fn patch_template(bc: &Broadcast, template: &str) {
    let reply = http()
        .patch(&bc.status_url)
        .json(&json!({"layout": {"template": template}}))
        .send()
        .expect("PATCH");
    assert_eq!(reply.status(), 200, "PATCH {template}");
}

/// Waits until the status says `passthrough` is (or is not) on, then for `frames` more output frames.
fn wait_for_path(bc: &Broadcast, passthrough: bool, frames: u64) {
    let at = wait_for(&format!("passthrough {passthrough}"), Duration::from_secs(20), || {
        let status = bc.status();
        (status["passthrough"].is_string() == passthrough).then(|| status["frames_out"].as_u64().unwrap_or(0))
    });
    wait_for("frames on this path", Duration::from_secs(20), || {
        (bc.status()["frames_out"].as_u64()? >= at + frames).then_some(())
    });
}

#[test]
fn a_lone_h264_participant_goes_out_untouched_and_switches_with_the_layout() {
    let nginx = NginxRtmp::start();
    let server = Server::start(&[]);
    let mut camera = publish_with(
        &server.whip_url("zero"),
        "camera",
        &["--codec", "h264", "--pattern", "color:ffff00", "--tone", "0"],
        std::process::Stdio::null(),
    );
    let key = "passthrough-3f2a";
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "zero"},
            "layout": {"template": "single"},
            "video": {"width": 1280, "height": 720, "keyframe_interval_s": 1},
            "outputs": [
                {"kind": "rtmp", "url": nginx.url(key)},
                {"kind": "hls", "segment_seconds": 1, "window": 120},
            ],
        }),
    );
    wait_for_path(&bc, true, 120);
    patch_template(&bc, "grid");
    wait_for_path(&bc, false, 90);
    patch_template(&bc, "single");
    wait_for_path(&bc, true, 90);
    // The camera dies: the mixer's picture (their last frame, then their placeholder) takes over.
    camera.signal_and_wait("KILL", Duration::from_secs(5));
    wait_for_path(&bc, false, 60);
    let stopped = bc.stop();
    assert_eq!(stopped["state"], "ended", "{stopped}");

    let recording = nginx.recording(key);
    let frames = crate::support::media::video_frames(recording.to_str().expect("path"));
    assert!(frames.len() > 200, "{} frames recorded", frames.len());
    // Forwarded: the publisher's 640x360; composited: our 1280x720. In that order, without a hole.
    let mut runs: Vec<(i64, Vec<(f64, bool)>)> = Vec::new();
    for &(pts, key, width) in &frames {
        match runs.last_mut() {
            Some((w, run)) if *w == width => run.push((pts, key)),
            _ => runs.push((width, vec![(pts, key)])),
        }
    }
    let widths: Vec<i64> = runs.iter().map(|(w, _)| *w).collect();
    for (width, run) in &runs {
        let keys: Vec<String> = run.iter().filter(|f| f.1).map(|f| format!("{:.2}", f.0)).collect();
        println!(
            "{width} px: {} frames from {:.2} s, keyframes at {keys:?}",
            run.len(),
            run[0].0
        );
    }
    assert!(
        widths.ends_with(&[640, 1280, 640, 1280]),
        "widths over time: {widths:?}"
    );
    assert!(widths.len() <= 5, "widths over time: {widths:?}");
    let pts: Vec<f64> = frames.iter().map(|f| f.0).collect();
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "timestamps go forward");
    // Layout switches leave no hole; the camera's death leaves less than a second.
    let killed_at = runs[runs.len() - 1].1[0].0;
    let before_kill: Vec<f64> = pts.iter().copied().filter(|t| *t < killed_at).collect();
    let switching_gap = crate::support::media::max_gap(&before_kill);
    let gap = crate::support::media::max_gap(&pts);
    println!("largest gap between frames: {switching_gap:.3} s while switching, {gap:.3} s overall");
    assert!(
        switching_gap < 0.25,
        "largest gap between frames while switching: {switching_gap:.3} s"
    );
    assert!(gap < 1.0, "largest gap between frames: {gap:.3} s");
    for (width, run) in runs.iter().filter(|(w, _)| *w == 640) {
        // Every switch starts on a keyframe; then keyframes come at the 1 s interval (the publisher's own are
        // 2 s apart), asked for with PLI.
        assert!(run[0].1, "a {width} px run starts with a keyframe");
        let mut keys: Vec<f64> = run.iter().filter(|f| f.1).map(|f| f.0).collect();
        // The one exception, at the start of a run: the switch asks for a keyframe (PLI, again after 500 ms if none
        // came) and cuts at the first that arrives; when a second answer (or the sender's own cadence) lands a frame
        // later, the run starts with two keyframes a frame apart. Seen in about one run in three; counted, not
        // hidden: any further extra keyframe fails below.
        if keys.len() > 2 && keys[1] - keys[0] < 0.1 {
            println!(
                "{width} px run from {:.2} s: a second keyframe a frame after the first",
                keys[0]
            );
            keys.remove(0);
        }
        let intervals: Vec<f64> = keys.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(!intervals.is_empty(), "keyframes {keys:?}");
        assert!(
            intervals.iter().all(|i| (0.6..=1.3).contains(i)),
            "keyframe intervals while forwarded: {intervals:?}"
        );
    }

    // The publisher's own stream parameters (constrained baseline), not our encoder's (high).
    let segments = bc.segments();
    // A switch between the mixer and the camera starts a segment: each has one resolution throughout.
    for segment in &segments {
        let widths: Vec<i64> = crate::support::media::video_frames(segment.to_str().expect("path"))
            .iter()
            .map(|f| f.2)
            .collect();
        assert!(
            !widths.is_empty() && widths.iter().all(|w| *w == widths[0]),
            "{}: frame widths {widths:?}",
            segment.display()
        );
    }
    let profiles: Vec<(i64, String)> = segments
        .iter()
        .map(|s| crate::support::media::video_profile(s.to_str().expect("path")))
        .collect();
    // Forwarded or composited, the picture is the camera's (yellow): from the first forwarded segment (before it,
    // the camera's first frames may not be in yet) up to the camera's death (the last seconds).
    let first_forwarded = profiles.iter().position(|(w, _)| *w == 640).unwrap_or(0);
    let checked = segments.iter().zip(&profiles).take(profiles.len().saturating_sub(3));
    for (segment, (width, _)) in checked.skip(first_forwarded) {
        let (w, h) = (*width as usize, *width as usize * 9 / 16);
        let frame = crate::support::media::last_frame(segment, w, h).expect("decodable segment");
        let centre = frame.pixel(w as i32 / 2, h as i32 / 2);
        assert!(
            crate::support::media::close_to(centre, [255, 255, 0], 48),
            "{}: {centre:?} at the centre",
            segment.display()
        );
    }
    assert!(profiles.contains(&(640, "Constrained Baseline".into())), "{profiles:?}");
    assert!(profiles.contains(&(1280, "High".into())), "{profiles:?}");
}
