//! Outputs: each is its own pipeline fed from the `EncodedHub`, with its own state and retries.

pub mod config;
pub mod events;
pub mod feed;
pub(crate) mod fmp4;
pub mod hls;
mod hls_audio_cuts;
mod hls_cuts;
pub mod hls_ladder;
pub mod hls_playlist;
mod hls_renditions;
pub mod hls_writer;
pub mod hub;
pub mod ll_hls;
pub mod ll_hls_board;
mod ll_hls_parts;
pub mod ll_hls_playlist;
pub mod record;
pub mod record_parts;
pub mod rtmp;
pub mod runner;
pub mod srt;
pub mod srt_url;
pub mod tls;
pub mod tracks;
pub mod video_switch;
pub mod whep;
mod whep_fanout;
mod whep_feed;
mod whep_offer;
mod whep_send_path;
mod whep_viewer;

use crate::gst_util::make;
use anyhow::Result;
use gst::prelude::*;

/// An output's pipeline: two appsrcs in (one, audio, for an audio-only broadcast), one sink out.
pub struct OutputPipeline {
    pub pipeline: gst::Pipeline,
    pub video: Option<gst_app::AppSrc>,
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
    let h264parse = make("h264parse")?;
    crate::gst_util::add_and_link(pipeline, &[video.upcast_ref(), &h264parse])?;
    let (audio, aacparse) = audio_source(pipeline)?;
    Ok((video, h264parse, audio, aacparse))
}

/// `appsrc ! aacparse`, added to `pipeline`.
fn audio_source(pipeline: &gst::Pipeline) -> Result<(gst_app::AppSrc, gst::Element)> {
    let audio = encoded_appsrc("audio");
    let aacparse = make("aacparse")?;
    crate::gst_util::add_and_link(pipeline, &[audio.upcast_ref(), &aacparse])?;
    Ok((audio, aacparse))
}

/// The tracks an output's pipeline starts from, each an `appsrc ! parser` pair: video (none when the broadcast
/// is audio-only) and audio.
struct Tracks {
    video: Option<(gst_app::AppSrc, gst::Element)>,
    audio: (gst_app::AppSrc, gst::Element),
}

impl Tracks {
    fn add(pipeline: &gst::Pipeline, audio_only: bool) -> Result<Self> {
        if audio_only {
            return Ok(Self {
                video: None,
                audio: audio_source(pipeline)?,
            });
        }
        let (video, h264parse, audio, aacparse) = sources(pipeline)?;
        Ok(Self {
            video: Some((video, h264parse)),
            audio: (audio, aacparse),
        })
    }

    /// The video appsrc, if there is one.
    fn video_src(&self) -> Option<gst_app::AppSrc> {
        self.video.as_ref().map(|(src, _)| src.clone())
    }

    /// The parsed track whose timestamps time the output: the video, or the audio when there is none.
    fn timing(&self) -> &gst::Element {
        self.video.as_ref().map_or(&self.audio.1, |(_, parse)| parse)
    }
}
