//! The mixer pipeline: participants' decoded tracks in (appsrcs), one compositor and one audiomixer, one encode,
//! and the encoded tracks out through two appsinks to the outputs.

mod background_image;
mod encode;
pub mod placeholder;
pub mod still;
mod tile;

pub use tile::{Tile, TileLook};

use crate::broadcast::spec::{AudioSpec, VideoSpec};
use crate::call::participant::Participant;
use anyhow::{Context, Result};
use background_image::BackgroundImage;
use gst::prelude::*;
use std::sync::Arc;

/// Extra time the mixers wait for participants' media beyond their jitter buffers (decode, scheduling).
const MIX_MARGIN_MS: u64 = 60;

pub struct Mixer {
    pub pipeline: gst::Pipeline,
    compositor: gst::Element,
    audiomixer: gst::Element,
    background: gst::Element,
    /// A template's background image over the background colour (z 1); transparent when there is none.
    background_image: BackgroundImage,
    pub video_out: gst_app::AppSink,
    pub audio_out: gst_app::AppSink,
    /// Latency we tell the mixers a participant's media has when it reaches them.
    input_latency: gst::ClockTime,
    /// A participant's video silent this long gives way to their placeholder (their last frame shows until then).
    video_timeout: std::time::Duration,
}

impl Mixer {
    pub fn new(video: &VideoSpec, audio: &AudioSpec, participant_latency_ms: u32) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name("mixer");
        let compositor = crate::gst_util::make("compositor")?;
        compositor.set_property("ignore-inactive-pads", true);
        let audiomixer = crate::gst_util::make("audiomixer")?;
        audiomixer.set_property("ignore-inactive-pads", true);
        let video_out = encode::build_video(&pipeline, &compositor, video)?;
        let audio_out = encode::build_audio(&pipeline, &audiomixer, audio)?;
        let background = pipeline.by_name(encode::BACKGROUND).context("background source")?;
        let background_image = BackgroundImage::new(video.width, video.height);
        Ok(Self {
            pipeline,
            compositor,
            audiomixer,
            background,
            background_image,
            video_out,
            audio_out,
            input_latency: gst::ClockTime::from_mseconds(u64::from(participant_latency_ms) + MIX_MARGIN_MS),
            video_timeout: tile::DEFAULT_VIDEO_TIMEOUT,
        })
    }

    pub fn with_video_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.video_timeout = timeout;
        self
    }

    pub fn play(&self) -> Result<()> {
        crate::gst_util::set_state_serialized(&self.pipeline, gst::State::Playing)
            .context("starting the mixer pipeline")?;
        Ok(())
    }

    /// Restarts a mixer that has produced nothing yet (READY, then PLAYING; nothing is lost). Now and then, when
    /// several pipelines start at once, a mixer's compositor and background tasks were seen paused for good right
    /// after the start, the pipeline saying PLAYING.
    pub fn restart_idle(&self, attempt: u32) {
        let (_, current, pending) = self.pipeline.state(gst::ClockTime::ZERO);
        tracing::warn!(?current, ?pending, attempt, "mixer produced nothing yet: restarting it");
        let _ = crate::gst_util::set_state_serialized(&self.pipeline, gst::State::Ready);
        let _ = crate::gst_util::set_state_serialized(&self.pipeline, gst::State::Playing);
    }

    /// Canvas colour behind the tiles, 0xRRGGBB.
    pub fn set_background(&self, rgb: u32) {
        self.background.set_property("foreground-color", 0xff00_0000 | rgb);
    }

    /// Draws `image` (canvas-sized, from `still::decode_image`) over the background colour, or nothing.
    pub fn set_background_image(&self, image: Option<(gst::Buffer, gst::Caps)>) {
        self.background_image.set(image);
        self.keep_background_image();
    }

    /// Pushes the background image again (about once a second), as tiles do with placeholders.
    pub fn keep_background_image(&self) {
        self.background_image
            .refresh(&self.pipeline, &self.compositor, self.running_time());
    }

    /// Adds a participant's video and audio to the mix; the tile stays hidden until `Tile::show`.
    pub fn attach(&self, participant: Arc<Participant>) -> Result<Tile> {
        Tile::attach(self, participant)
    }

    /// The mixer's running time now: timestamps for pictures we make ourselves.
    pub fn running_time(&self) -> Option<gst::ClockTime> {
        self.pipeline.current_running_time()
    }

    /// Removes a participant without a glitch: stop its input, release the mixer pads, then remove elements.
    pub fn detach(&self, tile: Tile) {
        tile.detach(self);
    }
}
