//! The mixer pipeline: participants' decoded tracks in (appsrcs), one compositor and one audiomixer, one encode,
//! and the encoded tracks out through two appsinks to the outputs.

use crate::broadcast::spec::{AudioSpec, VideoSpec};
use crate::call::decode::MIX_AUDIO_CAPS;
use crate::call::participant::Participant;
use crate::call::tap::Subscription;
use crate::gst_util::{add_and_link, make, make_with};
use crate::layout::Rect;
use anyhow::{Context, Result};
use gst::prelude::*;

/// Extra time the mixers wait for participants' media beyond their jitter buffers (decode, scheduling).
const MIX_MARGIN_MS: u64 = 60;

pub struct Mixer {
    pub pipeline: gst::Pipeline,
    compositor: gst::Element,
    audiomixer: gst::Element,
    pub video_out: gst_app::AppSink,
    pub audio_out: gst_app::AppSink,
    /// Latency we tell the mixers a participant's media has when it reaches them.
    input_latency: gst::ClockTime,
}

/// One participant's place in the mixer; dropping it does not detach: call `Mixer::detach`.
pub struct Attachment {
    pub participant_id: String,
    video_src: gst_app::AppSrc,
    video_pad: gst::Pad,
    audio_src: gst_app::AppSrc,
    audio_pad: gst::Pad,
    subscriptions: Vec<Subscription>,
}

impl Mixer {
    pub fn new(video: &VideoSpec, audio: &AudioSpec, participant_latency_ms: u32) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name("mixer");
        let compositor = make("compositor")?;
        compositor.set_property("ignore-inactive-pads", true);
        let audiomixer = make("audiomixer")?;
        audiomixer.set_property("ignore-inactive-pads", true);
        let video_out = build_video(&pipeline, &compositor, video)?;
        let audio_out = build_audio(&pipeline, &audiomixer, audio)?;
        Ok(Self {
            pipeline,
            compositor,
            audiomixer,
            video_out,
            audio_out,
            input_latency: gst::ClockTime::from_mseconds(u64::from(participant_latency_ms) + MIX_MARGIN_MS),
        })
    }

    pub fn play(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .context("starting the mixer pipeline")?;
        Ok(())
    }

    fn input_src(&self, name: String, max_buffers: u64) -> gst_app::AppSrc {
        let src = gst_app::AppSrc::builder()
            .name(name)
            .format(gst::Format::Time)
            .is_live(true)
            .min_latency(self.input_latency.nseconds() as i64)
            .max_buffers(max_buffers)
            .build();
        src.set_property_from_str("leaky-type", "downstream");
        src
    }

    /// Adds a participant's video and audio to the mix, placed at `rect` (letterboxed inside it).
    pub fn attach(&self, leg: &Participant, rect: Rect) -> Result<Attachment> {
        let video_src = self.input_src(format!("video-{}", leg.id), 3);
        let audio_src = self.input_src(format!("audio-{}", leg.id), 10);
        self.pipeline
            .add_many([video_src.upcast_ref::<gst::Element>(), audio_src.upcast_ref()])?;
        let video_pad = self
            .compositor
            .request_pad_simple("sink_%u")
            .context("compositor pad")?;
        video_pad.set_property_from_str("sizing-policy", "keep-aspect-ratio");
        video_pad.set_property("zorder", 1u32);
        place(&video_pad, rect);
        let audio_pad = self
            .audiomixer
            .request_pad_simple("sink_%u")
            .context("audiomixer pad")?;
        video_src.static_pad("src").expect("appsrc src").link(&video_pad)?;
        audio_src.static_pad("src").expect("appsrc src").link(&audio_pad)?;
        video_src.sync_state_with_parent()?;
        audio_src.sync_state_with_parent()?;
        let subscriptions = vec![
            leg.video.subscribe(video_src.clone()),
            leg.audio.subscribe(audio_src.clone()),
        ];
        Ok(Attachment {
            participant_id: leg.id.clone(),
            video_src,
            video_pad,
            audio_src,
            audio_pad,
            subscriptions,
        })
    }

    pub fn place(&self, attachment: &Attachment, rect: Rect) {
        place(&attachment.video_pad, rect);
    }

    /// Removes a participant without a glitch: stop its input, release the mixer pads, then remove elements.
    pub fn detach(&self, attachment: Attachment) {
        let Attachment {
            video_src,
            video_pad,
            audio_src,
            audio_pad,
            subscriptions,
            ..
        } = attachment;
        drop(subscriptions);
        for src in [&video_src, &audio_src] {
            let _ = src.set_state(gst::State::Null);
        }
        self.compositor.release_request_pad(&video_pad);
        self.audiomixer.release_request_pad(&audio_pad);
        let _ = self
            .pipeline
            .remove_many([video_src.upcast_ref::<gst::Element>(), audio_src.upcast_ref()]);
    }
}

fn place(pad: &gst::Pad, rect: Rect) {
    pad.set_property("xpos", rect.x);
    pad.set_property("ypos", rect.y);
    pad.set_property("width", rect.w);
    pad.set_property("height", rect.h);
}

fn raw_video_caps(video: &VideoSpec) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", video.width as i32)
        .field("height", video.height as i32)
        .field("framerate", gst::Fraction::new(video.fps as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
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

/// Background (keeps the compositor producing with zero participants) -> compositor -> x264 -> appsink.
fn build_video(pipeline: &gst::Pipeline, compositor: &gst::Element, video: &VideoSpec) -> Result<gst_app::AppSink> {
    let background = make_with("videotestsrc", &[("is-live", "true"), ("pattern", "black")])?;
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
    encoder.set_property_from_str("tune", "zerolatency");
    encoder.set_property_from_str("speed-preset", "veryfast");
    encoder.set_property_from_str("pass", "cbr");
    encoder.set_property("bitrate", video.bitrate_kbps);
    encoder.set_property("key-int-max", video.fps * video.keyframe_interval_s);
    encoder.set_property("bframes", 0u32);
    let h264_caps = capsfilter(
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
    )?;
    // SPS/PPS before every keyframe: outputs that (re)start mid-stream can decode from their first frame.
    let parse = make_with("h264parse", &[("config-interval", "-1")])?;
    let sink = encoded_sink("video-out");
    add_and_link(pipeline, &[&out_caps, &encoder, &h264_caps, &parse, sink.upcast_ref()])?;
    compositor.link(&out_caps)?;
    Ok(sink)
}

/// Silence (keeps the mixer producing) -> audiomixer -> AAC-LC 48 kHz stereo -> appsink.
fn build_audio(pipeline: &gst::Pipeline, audiomixer: &gst::Element, audio: &AudioSpec) -> Result<gst_app::AppSink> {
    let silence = make_with(
        "audiotestsrc",
        &[("is-live", "true"), ("wave", "silence"), ("samplesperbuffer", "960")],
    )?;
    let silence_caps = capsfilter(MIX_AUDIO_CAPS.parse()?)?;
    let mixed_caps = capsfilter(MIX_AUDIO_CAPS.parse()?)?;
    let convert = make("audioconvert")?;
    let encoder = make("avenc_aac")?;
    encoder.set_property("bitrate", i32::try_from(audio.bitrate_kbps * 1000)?);
    let parse = make("aacparse")?;
    let sink = encoded_sink("audio-out");
    add_and_link(pipeline, &[&silence, &silence_caps, audiomixer])?;
    add_and_link(pipeline, &[&mixed_caps, &convert, &encoder, &parse, sink.upcast_ref()])?;
    audiomixer.link(&mixed_caps)?;
    Ok(sink)
}
