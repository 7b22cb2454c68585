//! Baselines measured in the same run as callcast, so ratios hold on a noisy machine: plain `gst-launch-1.0`
//! pipelines doing part of a broadcast's work, their CPU read from `/proc` over the same kind of window.
//! - encode-only: a moving test picture at the canvas size through x264 with the output's own settings, counting
//!   the encoder's threads only.
//! - floor (`floor.rs`): decode + composite + mix + encode + FLV to the same RTMP server, from files.

use super::peer::Peer;
use super::scenario::Scenario;
use crate::broadcast::spec::VideoSpec;
use crate::procstat::{threads_cpu, usage};
use anyhow::{Context, Result};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scenario's output video settings, as a broadcast would have them.
pub fn video_spec(sc: &Scenario) -> VideoSpec {
    VideoSpec {
        width: sc.width,
        height: sc.height,
        fps: sc.fps,
        bitrate_kbps: sc.bitrate_kbps,
        keyframe_interval_s: super::scenario::KEYFRAME_INTERVAL_S,
        preset: sc.preset,
        passthrough: true,
    }
}

/// `x264enc` with the output encoder's settings, as gst-launch syntax.
pub fn x264_launch(video: &VideoSpec) -> String {
    let mut element = String::from("x264enc");
    for (name, value) in crate::mix::encode::x264_settings(&video.encode_settings()) {
        element.push_str(&format!(" {name}=\"{value}\""));
    }
    element
}

/// A pipeline description as gst-launch-1.0's arguments: it takes one token per argument and escapes the
/// spaces inside one, so the description is split at spaces outside double quotes.
pub fn launch_args(description: &str) -> Vec<String> {
    let mut args = vec!["-q".to_string()];
    let mut token = String::new();
    let mut quoted = false;
    for c in description.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                token.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !token.is_empty() {
                    args.push(std::mem::take(&mut token));
                }
            }
            c => token.push(c),
        }
    }
    if !token.is_empty() {
        args.push(token);
    }
    args
}

/// Runs the pipeline and returns the cores (CPU seconds per wall second) of its threads that `counted` accepts
/// by name, over a window after a warm-up; a pipeline that ends early is an error.
fn measure_threads(
    description: &str,
    warmup: Duration,
    window: Duration,
    counted: impl Fn(&str) -> bool,
) -> Result<f64> {
    let child = Command::new("gst-launch-1.0")
        .args(launch_args(description))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Peer)
        .context("gst-launch-1.0 (gstreamer1.0-tools)")?;
    let pid = child.0.id().to_string();
    let cpu = || -> Result<f64> {
        anyhow::ensure!(usage(&pid).is_some(), "the baseline pipeline ended early");
        Ok(threads_cpu(&pid)
            .iter()
            .filter(|(name, _)| counted(name))
            .map(|(_, cpu)| cpu)
            .sum())
    };
    std::thread::sleep(warmup);
    let before = cpu()?;
    let t0 = Instant::now();
    std::thread::sleep(window);
    let cores = (cpu()? - before) / t0.elapsed().as_secs_f64();
    Ok((cores * 1000.0).round() / 1000.0)
}

/// Cores the whole pipeline uses over the window.
pub fn measure(description: &str, warmup: Duration, window: Duration) -> Result<f64> {
    measure_threads(description, warmup, window, |_| true)
}

/// Cores x264 alone takes to encode the scenario's canvas: a moving test picture (drawing it at 720p costs about
/// as much as a fast encode) is handed through a queue, so the encoder runs in threads of its own, and only those
/// are counted (every thread but the source's streaming thread, named after its pad `picture:src`).
pub fn encode_only_cores(sc: &Scenario) -> Result<f64> {
    let description = format!(
        "videotestsrc name=picture is-live=true pattern=ball \
         ! video/x-raw,format=I420,width={},height={},framerate={}/1 ! queue max-size-buffers=2 ! {} ! fakesink",
        sc.width,
        sc.height,
        sc.fps,
        x264_launch(&video_spec(sc))
    );
    let warmup = sc.warmup.min(Duration::from_secs(5));
    measure_threads(&description, warmup, sc.window, |name| !name.starts_with("picture"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptions_split_at_spaces_outside_quotes() {
        assert_eq!(
            super::launch_args("a  b=\"x, y\" ! c"),
            ["-q", "a", "b=\"x, y\"", "!", "c"]
        );
    }
}
