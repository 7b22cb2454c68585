//! One participant's sound in a mix: their decoded audio, through an appsrc, into an audiomixer pad. Both mixers
//! use it: the full one (inside a `Tile`) and the audio-only one.

use crate::call::participant::Participant;
use crate::call::tap::Subscription;
use anyhow::{Context, Result};
use gst::prelude::*;

/// Audio buffers a participant's input may hold before it drops the oldest (about 200 ms of Opus frames).
const AUDIO_INPUT_BUFFERS: u64 = 10;

pub struct Voice {
    src: gst_app::AppSrc,
    pad: gst::Pad,
    subscription: Subscription,
}

/// A live appsrc for a participant's decoded track: it tells the mixer the latency the media has when it
/// arrives, and drops its oldest buffers rather than ever block the participant's decoder.
pub fn input_src(name: String, latency: gst::ClockTime, max_buffers: u64) -> gst_app::AppSrc {
    let src = gst_app::AppSrc::builder()
        .name(name)
        .format(gst::Format::Time)
        .is_live(true)
        .min_latency(latency.nseconds() as i64)
        .max_buffers(max_buffers)
        .build();
    src.set_property_from_str("leaky-type", "downstream");
    src
}

impl Voice {
    /// Adds `participant`'s sound to `audiomixer` (in the PLAYING `pipeline`).
    pub(super) fn attach(
        pipeline: &gst::Pipeline,
        audiomixer: &gst::Element,
        participant: &Participant,
        latency: gst::ClockTime,
    ) -> Result<Self> {
        let src = input_src(format!("audio-{}", participant.id), latency, AUDIO_INPUT_BUFFERS);
        pipeline.add(&src)?;
        let pad = audiomixer.request_pad_simple("sink_%u").context("audiomixer pad")?;
        src.static_pad("src").expect("appsrc src").link(&pad)?;
        src.sync_state_with_parent()?;
        let subscription = participant.audio.subscribe(src.clone());
        Ok(Self { src, pad, subscription })
    }

    /// Stops the input (no more buffers from the participant), then releases the mixer pad and removes it.
    pub(super) fn detach(self, pipeline: &gst::Pipeline, audiomixer: &gst::Element) {
        drop(self.subscription);
        crate::gst_util::retire(pipeline, &[self.src.upcast_ref()]);
        audiomixer.release_request_pad(&self.pad);
    }
}
