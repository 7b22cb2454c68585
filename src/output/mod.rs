//! Outputs: each is its own pipeline fed from the `EncodedHub`, with its own state and retries.

pub mod config;
pub mod events;
pub mod hls;
mod hls_cuts;
pub mod hls_vod;
pub mod hub;
pub mod record;
pub mod rtmp;
pub mod runner;
pub mod tls;
pub mod video_switch;

use crate::gst_util::make;
use anyhow::Result;
use gst::prelude::*;

/// An output's pipeline: two appsrcs in, one sink out.
pub struct OutputPipeline {
    pub pipeline: gst::Pipeline,
    pub video: gst_app::AppSrc,
    pub audio: gst_app::AppSrc,
    /// The element that writes or sends; bytes and liveness are measured on its sink pad(s).
    pub sink: gst::Element,
    /// The file a recording output writes (None for the others).
    pub recording: Option<record::Recording>,
}

/// How much encoded media an output may hold before it drops its oldest data rather than slow anyone down.
const OUTPUT_QUEUE_NS: u64 = 3_000_000_000;

fn encoded_appsrc(name: &str) -> gst_app::AppSrc {
    let src = gst_app::AppSrc::builder()
        .name(name)
        .format(gst::Format::Time)
        .is_live(false)
        .max_time(gst::ClockTime::from_nseconds(OUTPUT_QUEUE_NS))
        .max_bytes(0)
        .max_buffers(0)
        .build();
    src.set_property_from_str("leaky-type", "downstream");
    src
}

/// `appsrc ! parser` pairs for the two tracks, added to `pipeline`; returns the appsrcs and parser outputs.
fn sources(pipeline: &gst::Pipeline) -> Result<(gst_app::AppSrc, gst::Element, gst_app::AppSrc, gst::Element)> {
    let video = encoded_appsrc("video");
    let audio = encoded_appsrc("audio");
    let h264parse = make("h264parse")?;
    let aacparse = make("aacparse")?;
    crate::gst_util::add_and_link(pipeline, &[video.upcast_ref(), &h264parse])?;
    crate::gst_util::add_and_link(pipeline, &[audio.upcast_ref(), &aacparse])?;
    Ok((video, h264parse, audio, aacparse))
}
