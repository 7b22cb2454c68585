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
    }
}

/// `x264enc` with the output encoder's settings, as gst-launch syntax.
pub fn x264_launch(video: &VideoSpec) -> String {
    let mut element = String::from("x264enc");
    for (name, value) in crate::mix::encode::x264_settings(video) {
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

/// Runs the pipelines side by side and returns each one's cores (CPU seconds per wall second) over a window
/// after a warm-up; a pipeline that ends early is an error.
pub fn measure(pipelines: &[String], warmup: Duration, window: Duration) -> Result<Vec<f64>> {
    let peers = pipelines
        .iter()
        .map(|p| {
            Command::new("gst-launch-1.0")
                .args(launch_args(p))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(Peer)
                .context("gst-launch-1.0 (gstreamer1.0-tools)")
        })
        .collect::<Result<Vec<_>>>()?;
    let pids: Vec<String> = peers.iter().map(|p| p.0.id().to_string()).collect();
    std::thread::sleep(warmup);
    let read = |pid: &String| usage(pid).with_context(|| format!("baseline pipeline {pid} ended early"));
    let before = pids.iter().map(read).collect::<Result<Vec<_>>>()?;
    let t0 = Instant::now();
    std::thread::sleep(window);
    let after = pids.iter().map(read).collect::<Result<Vec<_>>>()?;
    let secs = t0.elapsed().as_secs_f64();
    Ok(before
        .iter()
        .zip(&after)
        .map(|(b, a)| ((a.cpu_s - b.cpu_s) / secs * 1000.0).round() / 1000.0)
        .collect())
}

/// Cores x264 alone takes to encode the scenario's canvas: a moving test picture (drawing it at 720p costs about
/// as much as a fast encode) is handed through a queue, so the encoder runs in threads of its own, and only those
/// are counted.
pub fn encode_only_cores(sc: &Scenario) -> Result<f64> {
    let description = format!(
        "videotestsrc name=picture is-live=true pattern=ball \
         ! video/x-raw,format=I420,width={},height={},framerate={}/1 ! queue max-size-buffers=2 ! {} ! fakesink",
        sc.width,
        sc.height,
        sc.fps,
        x264_launch(&video_spec(sc))
    );
    let child = Command::new("gst-launch-1.0")
        .args(launch_args(&description))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Peer)
        .context("gst-launch-1.0 (gstreamer1.0-tools)")?;
    let pid = child.0.id().to_string();
    // Every thread but the test source's own streaming thread (named after its pad, `picture:src`).
    let encoding = || -> f64 {
        threads_cpu(&pid)
            .iter()
            .filter(|(name, _)| !name.starts_with("picture"))
            .map(|(_, cpu)| cpu)
            .sum()
    };
    std::thread::sleep(sc.warmup.min(Duration::from_secs(5)));
    anyhow::ensure!(usage(&pid).is_some(), "the encode-only pipeline ended early");
    let before = encoding();
    let t0 = Instant::now();
    std::thread::sleep(sc.window);
    anyhow::ensure!(usage(&pid).is_some(), "the encode-only pipeline ended early");
    let cores = (encoding() - before) / t0.elapsed().as_secs_f64();
    Ok((cores * 1000.0).round() / 1000.0)
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
