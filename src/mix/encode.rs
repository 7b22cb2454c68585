//! The single encode of a broadcast: live backgrounds keep the mixers producing, x264 and AAC encode once.

use super::settings::VideoSettings;
use crate::call::decode::MIX_AUDIO_CAPS;
use crate::gst_util::{add_and_link, make, make_with};
use anyhow::{Context, Result};
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn raw_video_caps(video: &VideoSettings) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", video.width as i32)
        .field("height", video.height as i32)
        .field("framerate", gst::Fraction::new(video.fps as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("colorimetry", super::CANVAS_COLORIMETRY)
        .field("chroma-site", super::CANVAS_CHROMA_SITE)
        .build()
}

fn capsfilter(caps: gst::Caps) -> Result<gst::Element> {
    let filter = make("capsfilter")?;
    filter.set_property("caps", caps);
    Ok(filter)
}

fn encoded_sink(name: &str) -> gst_app::AppSink {
    gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .enable_last_sample(false)
        .build()
}

/// Background (keeps the compositor producing with zero participants) -> compositor -> `overlays` -> x264 ->
/// appsink. Frames reach the encoder only while `encoding` is set (off while a participant's own H.264 is on air).
pub fn build_video(
    pipeline: &gst::Pipeline,
    compositor: &gst::Element,
    overlays: &gst::Element,
    video: &VideoSettings,
    encoding: Arc<AtomicBool>,
) -> Result<gst_app::AppSink> {
    let background = make_with("videotestsrc", &[("is-live", "true"), ("pattern", "solid-color")])?;
    background.set_property("name", BACKGROUND);
    background.set_property("foreground-color", 0xff00_0000u32);
    let background_caps = capsfilter(raw_video_caps(video))?;
    add_and_link(pipeline, &[&background, &background_caps])?;
    pipeline.add(compositor)?;
    let bg_pad = compositor.request_pad_simple("sink_%u").context("compositor pad")?;
    bg_pad.set_property("zorder", 0u32);
    background_caps
        .static_pad("src")
        .expect("capsfilter src")
        .link(&bg_pad)?;

    let out_caps = capsfilter(raw_video_caps(video))?;
    let encoder = make("x264enc")?;
    for (name, value) in x264_settings(video) {
        encoder.set_property_from_str(name, &value);
    }
    let h264_caps = capsfilter(
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
    )?;
    // SPS/PPS before every keyframe: outputs that (re)start mid-stream can decode from their first frame.
    let parse = make_with("h264parse", &[("config-interval", "-1")])?;
    let sink = encoded_sink("video-out");
    add_and_link(
        pipeline,
        &[&out_caps, overlays, &encoder, &h264_caps, &parse, sink.upcast_ref()],
    )?;
    let encoder_sink = encoder.static_pad("sink").context("x264enc sink pad")?;
    encoder_sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if encoding.load(Ordering::Relaxed) {
            gst::PadProbeReturn::Ok
        } else {
            crate::gst_util::swallow(info)
        }
    });
    compositor.link(&out_caps)?;
    Ok(sink)
}

/// The output encoder's settings (also what `callcast bench` gives its encode-only baseline).
pub fn x264_settings(video: &VideoSettings) -> Vec<(&'static str, String)> {
    vec![
        ("tune", "zerolatency".into()),
        ("speed-preset", video.preset.nick().into()),
        ("threads", video.preset.threads().to_string()),
        ("pass", "cbr".into()),
        ("bitrate", video.bitrate_kbps.to_string()),
        ("key-int-max", (video.fps * video.keyframe_interval_s).to_string()),
        ("bframes", "0".into()),
        // Keyframes only at the interval: a layout switch is a "scene cut" to x264, and a keyframe per switch
        // would spike the bitrate and break the fixed cadence HLS segments and ingest servers expect.
        ("option-string", "scenecut=0".into()),
    ]
}

/// How long a mix's audio buffers are, in samples at the mix's 48 kHz: the silence source's and the
/// audiomixer's output. Each buffer wakes the mixer and the encoder once, and a longer one delays the mix by as
/// much (the mixer waits until it is full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioBuffers {
    pub silence: u32,
    pub mixed: u32,
}

impl AudioBuffers {
    /// Beside a picture: 10 ms mixed buffers (the mixer's default) and 20 ms of silence, so the sound keeps close
    /// to the frames it goes with. One AAC frame (1024 samples) per mix cost about 0.0035 core less, but
    /// e2e_av_sync then lost beeps in 3 runs of 5, against none in 3 with this (docs/benchmarks.md, 2026-12-01):
    /// not taken until that is understood.
    pub const WITH_PICTURE: Self = Self {
        silence: 960,
        mixed: 480,
    };
    /// Sound alone, for outputs that cut seconds-long segments or files: 100 ms buffers, a tenth as many wake-ups
    /// of the mixer and the encoder for 90 ms more latency. HLS and recordings do not notice it; an SRT
    /// output carries it on top of its own latency.
    pub const AUDIO_ONLY: Self = Self {
        silence: 4800,
        mixed: 4800,
    };
}

/// The AAC encoder of a mix. Both take the bitrate and give AAC-LC at the mix's rate and channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AacEncoder {
    /// FFmpeg's encoder with its "fast" coder; it takes F32, so the mix is converted from S16 before it.
    Libav,
    /// VisualOn's (gst-plugins-bad): takes the mix's S16 as is.
    VoAac,
}

/// Silence (keeps the mixer producing) -> audiomixer -> AAC-LC 48 kHz stereo -> appsink.
pub fn build_audio(
    pipeline: &gst::Pipeline,
    audiomixer: &gst::Element,
    bitrate_kbps: u32,
    buffers: AudioBuffers,
) -> Result<gst_app::AppSink> {
    build_audio_with(pipeline, audiomixer, bitrate_kbps, buffers, AacEncoder::Libav)
}

/// `build_audio` with a chosen encoder (`benches/audio_path.rs` compares them).
pub fn build_audio_with(
    pipeline: &gst::Pipeline,
    audiomixer: &gst::Element,
    bitrate_kbps: u32,
    buffers: AudioBuffers,
    aac: AacEncoder,
) -> Result<gst_app::AppSink> {
    let silence = make_with("audiotestsrc", &[("is-live", "true"), ("wave", "silence")])?;
    silence.set_property("samplesperbuffer", i32::try_from(buffers.silence)?);
    // As a fraction: whole samples, where nanoseconds would round 1024 samples to 1023 or 1025 now and then.
    audiomixer.set_property(
        "output-buffer-duration-fraction",
        gst::Fraction::new(i32::try_from(buffers.mixed)?, MIX_RATE),
    );
    let silence_caps = capsfilter(MIX_AUDIO_CAPS.parse()?)?;
    let mixed_caps = capsfilter(MIX_AUDIO_CAPS.parse()?)?;
    let encode = aac_encoder(aac, bitrate_kbps)?;
    // Kept although every output parses again after its appsrc: without it (avenc_aac's raw frames straight into
    // the appsink) e2e_av_sync failed once in two runs (docs/benchmarks.md, 2026-12-01).
    let parse = make("aacparse")?;
    let sink = encoded_sink("audio-out");
    add_and_link(pipeline, &[&silence, &silence_caps, audiomixer])?;
    let mut chain: Vec<&gst::Element> = vec![&mixed_caps];
    chain.extend(encode.iter());
    chain.extend([&parse, sink.upcast_ref()]);
    add_and_link(pipeline, &chain)?;
    audiomixer.link(&mixed_caps)?;
    Ok(sink)
}

/// The elements from the mix's S16 to AAC: a conversion first when the encoder needs one.
pub fn aac_encoder(aac: AacEncoder, bitrate_kbps: u32) -> Result<Vec<gst::Element>> {
    let bitrate = i32::try_from(bitrate_kbps * 1000)?;
    Ok(match aac {
        AacEncoder::Libav => {
            let encoder = make("avenc_aac")?;
            encoder.set_property("bitrate", bitrate);
            // The "fast" coder, not avenc_aac's default "twoloop": half the CPU (0.020 against 0.038 core for 48
            // kHz stereo at 128 kb/s here) for 1.2 dB less waveform SNR in our check (docs/benchmarks.md; no
            // listening test). A libav without the property keeps its default rather than failing the broadcast.
            if encoder.find_property("aac-coder").is_some() {
                encoder.set_property_from_str("aac-coder", "fast");
            }
            vec![make("audioconvert")?, encoder]
        }
        AacEncoder::VoAac => {
            let encoder = make("voaacenc")?;
            encoder.set_property("bitrate", bitrate);
            vec![encoder]
        }
    })
}

/// The mix's sample rate (`MIX_AUDIO_CAPS`).
const MIX_RATE: i32 = 48_000;

/// Name of the background source, whose colour follows the layout template.
pub const BACKGROUND: &str = "background";
