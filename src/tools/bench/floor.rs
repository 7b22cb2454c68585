//! The floor baseline: a broadcast's media work without WebRTC or callcast. One `gst-launch-1.0` pipeline decodes
//! N copies of a pre-recorded VP8/Opus clip (what the bench publisher sends), composites them in the grid
//! callcast would draw (same rectangles, same trimming and scaler settings), mixes the audio, encodes with the output's x264
//! settings and AAC, and sends FLV to the same RTMP server. The files are paced by the sink's clock, as live.

use super::baseline::{measure, video_spec, x264_launch};
use super::scenario::Scenario;
use crate::layout::engine::{place, Scene};
use crate::layout::template::Templates;
use crate::layout::Canvas;
use crate::tools::publish::{FPS, HEIGHT, WIDTH};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Records `seconds` of the bench publisher's media (640x360@30 VP8 ~500 kbit/s with a moving ball, Opus tone)
/// to `dir/clip.webm`, as fast as the machine goes.
pub fn record_clip(dir: &Path, seconds: u64) -> Result<PathBuf> {
    let clip = dir.join("clip.webm");
    let frames = seconds * FPS as u64;
    let audio_buffers = seconds * 50;
    let description = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width={WIDTH},height={HEIGHT},framerate={FPS}/1 \
         ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=60 target-bitrate=500000 ! webmmux name=m \
         ! filesink location={clip} \
         audiotestsrc num-buffers={audio_buffers} samplesperbuffer=960 freq=440 volume=0.3 \
         ! audio/x-raw,rate=48000,channels=2 ! opusenc ! m.",
        clip = clip.display()
    );
    let status = Command::new("gst-launch-1.0")
        .args(super::baseline::launch_args(&description))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("gst-launch-1.0 (gstreamer1.0-tools)")?;
    anyhow::ensure!(status.success(), "recording the floor clip failed ({status})");
    Ok(clip)
}

/// The floor pipeline for `sc`, reading `clip` and publishing to `rtmp_url`.
pub fn pipeline(sc: &Scenario, clip: &Path, rtmp_url: &str) -> String {
    let grid = Templates::builtin()
        .get("grid")
        .cloned()
        .expect("the grid template is built in");
    let canvas = Canvas {
        width: sc.width as i32,
        height: sc.height as i32,
    };
    let scene = Scene {
        order: (0..sc.participants).map(|i| i.to_string()).collect(),
        ..Scene::default()
    };
    let mut compositor = String::from("compositor name=c background=black");
    let mut inputs = String::new();
    for (i, tile) in place(&grid, canvas, &scene).iter().enumerate() {
        let r = tile.rect;
        // The same trim-or-scale choice as a broadcast's tile.
        let trim = crate::mix::scaling::trim_to_tile((WIDTH, HEIGHT), (r.w, r.h));
        let (crop, src) = match trim {
            Some([left, right, top, bottom]) => (
                format!("videocrop left={left} right={right} top={top} bottom={bottom} ! "),
                (WIDTH - left - right, HEIGHT - top - bottom),
            ),
            None => (String::new(), (WIDTH, HEIGHT)),
        };
        let scaling = crate::mix::scaling::converter_config(src, (r.w, r.h));
        compositor.push_str(&format!(
            " sink_{i}::xpos={} sink_{i}::ypos={} sink_{i}::width={} sink_{i}::height={} \
             sink_{i}::converter-config=\"{}\"",
            r.x,
            r.y,
            r.w,
            r.h,
            scaling.to_string().trim_end_matches(';')
        ));
        inputs.push_str(&format!(
            " filesrc location={clip} ! matroskademux name=d{i} \
             d{i}.video_0 ! queue ! vp8dec ! {crop}c.sink_{i} \
             d{i}.audio_0 ! queue ! opusdec ! audioconvert ! audioresample \
             ! audio/x-raw,format=S16LE,rate=48000,channels=2 ! a.sink_{i}",
            clip = clip.display()
        ));
    }
    format!(
        "{compositor} ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1,pixel-aspect-ratio=1/1,\
         colorimetry=bt601,chroma-site=jpeg \
         ! {x264} ! h264parse ! queue ! m. \
         audiomixer name=a ! audio/x-raw,format=S16LE,rate=48000,channels=2 ! audioconvert \
         ! avenc_aac bitrate=128000 ! aacparse ! queue ! m. \
         flvmux name=m streamable=true ! rtmp2sink location={rtmp_url}{inputs}",
        w = sc.width,
        h = sc.height,
        fps = sc.fps,
        x264 = x264_launch(&video_spec(sc)),
    )
}

/// Cores the floor pipeline takes for `sc`, measured like the broadcast (warm-up, then the window).
pub fn floor_cores(sc: &Scenario, rtmp_url: &str) -> Result<f64> {
    let dir = tempfile::tempdir().context("temporary directory for the floor clip")?;
    let warmup = sc.warmup.min(Duration::from_secs(5));
    let clip = record_clip(dir.path(), (warmup + sc.window).as_secs() + 5)?;
    measure(&pipeline(sc, &clip, rtmp_url), warmup, sc.window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_pipeline_parses_with_a_tile_per_participant() {
        let _glib = crate::glib_watch::watch();
        let sc = Scenario {
            participants: 4,
            broadcasts: 1,
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 2500,
            preset: Default::default(),
            max_tiles: None,
            zero_transcode: false,
            janus: false,
            via: crate::tools::bench::scenario::Via::Whip,
            passthrough: true,
            tracks: false,
            record: false,
            hls_renditions: Vec::new(),
            overlays: false,
            publisher: Default::default(),
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(1),
        };
        let description = pipeline(
            &sc,
            Path::new("/nonexistent/clip.webm"),
            "rtmp://127.0.0.1:1/live/floor",
        );
        if std::env::var_os("PRINT_FLOOR").is_some() {
            println!("{description}");
        }
        let args = super::super::baseline::launch_args(&description);
        gst::parse::launchv(&args[1..].iter().map(String::as_str).collect::<Vec<_>>())
            .expect("the floor pipeline parses");
        assert_eq!(description.matches("matroskademux").count(), 4);
        assert_eq!(
            description.matches("videocrop").count(),
            4,
            "640x360 pictures are trimmed into 619x348 tiles"
        );
    }
}
