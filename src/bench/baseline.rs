//! Encode-only baseline, measured in the same run as callcast so ratios hold on a noisy machine: a moving test
//! picture at the canvas size through x264 with the output's own settings, into fakesink (gst-launch-1.0).

use super::peer::Peer;
use super::scenario::Scenario;
use crate::procstat::usage;
use anyhow::{Context, Result};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Cores `gst-launch-1.0` uses to encode the scenario's canvas alone.
pub fn encode_only_cores(sc: &Scenario) -> Result<f64> {
    let video = crate::broadcast::spec::VideoSpec {
        width: sc.width,
        height: sc.height,
        fps: sc.fps,
        bitrate_kbps: sc.bitrate_kbps,
        keyframe_interval_s: crate::broadcast::spec::DEFAULT_KEYFRAME_INTERVAL_S,
    };
    let mut args: Vec<String> = vec![
        "-q".into(),
        "videotestsrc".into(),
        "is-live=true".into(),
        "pattern=ball".into(),
        "!".into(),
        format!(
            "video/x-raw,format=I420,width={},height={},framerate={}/1",
            sc.width, sc.height, sc.fps
        ),
        "!".into(),
        "x264enc".into(),
    ];
    args.extend(
        crate::mix::encode::x264_settings(&video)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    args.extend(["!".into(), "fakesink".into()]);
    let child = Command::new("gst-launch-1.0")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("gst-launch-1.0 (gstreamer1.0-tools)")?;
    let peer = Peer(child);
    let pid = peer.0.id().to_string();
    std::thread::sleep(sc.warmup.min(Duration::from_secs(5)));
    let u0 = usage(&pid).context("baseline usage")?;
    let t0 = Instant::now();
    std::thread::sleep(sc.window);
    let u1 = usage(&pid).context("baseline usage")?;
    Ok(((u1.cpu_s - u0.cpu_s) / t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0)
}
