//! The mixer pipeline: participants' decoded tracks in (appsrcs), one compositor and one audiomixer, one encode,
//! and the encoded tracks out through two appsinks to the outputs. An audio-only broadcast has the audiomixer
//! and its encode alone (`audio_mix`).

pub mod audio_mix;
mod background_image;
pub mod encode;
pub mod overlay_band;
pub mod overlay_clock;
mod overlay_fade;
pub mod overlay_fonts;
pub mod overlay_label;
pub(crate) mod overlay_layer;
mod overlay_planes;
pub mod overlay_render;
mod overlay_text;
pub mod placeholder;
pub mod preset;
pub mod scaling;
pub mod settings;
pub mod still;
mod tile;
mod voice;
pub use voice::input_src;

pub use overlay_layer::Layered;
pub use tile::{Tile, TileLook};

use crate::call::participant::Participant;
use anyhow::{Context, Result};
use background_image::BackgroundImage;
use gst::prelude::*;
use overlay_layer::OverlayLayer;
use settings::MixSettings;
use std::sync::Arc;

/// The canvas' colorimetry: what VP8 and most WebRTC decoders output. A canvas in another one (HD sizes default
/// to BT.709) would run a colour-matrix conversion over every participant's picture on every frame.
pub const CANVAS_COLORIMETRY: &str = "bt601";
pub const CANVAS_CHROMA_SITE: &str = "jpeg";

/// Extra time the mixers wait for participants' media beyond their jitter buffers (decode, scheduling).
const MIX_MARGIN_MS: u64 = 60;

pub struct Mixer {
    pub pipeline: gst::Pipeline,
    compositor: gst::Element,
    audiomixer: gst::Element,
    background: gst::Element,
    /// A template's background image over the background colour (z 1); transparent when there is none.
    background_image: BackgroundImage,
    /// Titles and logos over everything, blended after the compositor.
    overlays: OverlayLayer,
    pub video_out: gst_app::AppSink,
    pub audio_out: gst_app::AppSink,
    /// Whether the video encoder gets frames (the outputs' hub turns it off during zero-transcode).
    pub video_encoding: Arc<std::sync::atomic::AtomicBool>,
    /// Latency we tell the mixers a participant's media has when it reaches them.
    input_latency: gst::ClockTime,
    /// A participant's video silent this long gives way to their placeholder (their last frame shows until then).
    video_timeout: std::time::Duration,
}

/// Sends end-of-stream into `pipeline` once it is PLAYING, waiting up to `settle` for a state change under way;
/// false if it did not settle in PLAYING. Not before: `send_event` holds the pipeline's state lock until each live
/// source has taken the EOS, a source pushing into a mixer whose sink still prerolls cannot take it, and that sink
/// waits for the pipeline to finish going to PLAYING, which needs the same lock (a broadcast stopped while starting
/// hung there for good).
pub fn end_stream(pipeline: &gst::Pipeline, settle: std::time::Duration) -> bool {
    let wait = gst::ClockTime::from_nseconds(settle.as_nanos() as u64);
    let (changed, current, _) = pipeline.state(Some(wait));
    let settled = changed.is_ok_and(|c| c != gst::StateChangeSuccess::Async);
    settled && current == gst::State::Playing && pipeline.send_event(gst::event::Eos::new())
}

/// A compositor or audiomixer that leaves out pads that never had data (a participant without media must not
/// hold the mix back) and starts its clock only with its first buffer: with the default start time (zero), a
/// first deadline passing before the background's first buffer leaves every pad "inactive", which GStreamer 1.22
/// takes for end-of-stream; the mixer then sends EOS and pauses for good while the pipeline says PLAYING.
pub fn live_mixer(factory: &str) -> Result<gst::Element> {
    let mixer = crate::gst_util::make(factory)?;
    mixer.set_property("ignore-inactive-pads", true);
    mixer.set_property_from_str("start-time-selection", "first");
    Ok(mixer)
}

impl Mixer {
    pub fn new(settings: &MixSettings) -> Result<Self> {
        let video = &settings.video;
        let pipeline = gst::Pipeline::with_name("mixer");
        let compositor = live_mixer("compositor")?;
        let audiomixer = live_mixer("audiomixer")?;
        let video_encoding = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let overlays = OverlayLayer::new()?;
        let video_out = encode::build_video(
            &pipeline,
            &compositor,
            overlays.element(),
            video,
            video_encoding.clone(),
        )?;
        let audio_out = encode::build_audio(
            &pipeline,
            &audiomixer,
            settings.audio_bitrate_kbps,
            encode::AudioBuffers::WITH_PICTURE,
        )?;
        let background = pipeline.by_name(encode::BACKGROUND).context("background source")?;
        let background_image = BackgroundImage::new(video.width, video.height);
        Ok(Self {
            pipeline,
            compositor,
            audiomixer,
            background,
            background_image,
            overlays,
            video_out,
            audio_out,
            video_encoding,
            input_latency: gst::ClockTime::from_mseconds(u64::from(settings.participant_latency_ms) + MIX_MARGIN_MS),
            video_timeout: settings.video_timeout,
        })
    }

    pub fn play(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .context("starting the mixer pipeline")?;
        Ok(())
    }

    /// Canvas colour behind the tiles, 0xRRGGBB.
    pub fn set_background(&self, rgb: u32) {
        let argb = 0xff00_0000 | rgb;
        if self.background.property::<u32>("foreground-color") == argb {
            return;
        }
        // videotestsrc paints a solid colour once and copies that picture into the frames after it; a colour set
        // while its streaming thread copied raced with that cache (GStreamer-Video CRITICALs mapping a freed
        // buffer, then a segfault, 1 run in 17 of a test that changes the layout). Its stream lock, held while it
        // makes and pushes each frame, puts the change between two frames.
        let pad = self.background.static_pad("src").expect("videotestsrc has a src pad");
        let _between_frames = pad.stream_lock();
        self.background.set_property("foreground-color", argb);
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

    /// Draws `overlays` (pictures from `overlay_render` and `overlay_band`) over the canvas from the next frame,
    /// those added fading in and those left out fading out; empty: none.
    pub fn set_overlays(&self, overlays: &[Layered]) {
        if let Err(e) = self.overlays.show(overlays) {
            tracing::warn!("overlays not shown: {e:#}");
        }
    }

    /// Takes the next frame (before overlays) as a picture beneath every overlay that fades out over `ms`: what
    /// the next arrangement cross-fades from. The receiver hears once it is taken (change the arrangement then).
    pub fn cross_fade(&self, ms: u32) -> std::sync::mpsc::Receiver<()> {
        self.overlays.cross_fade(ms)
    }

    /// Adds a participant's video and audio to the mix; the tile stays hidden until `Tile::show`.
    pub fn attach(&self, participant: Arc<Participant>) -> Result<Tile> {
        Tile::attach(self, participant)
    }

    /// The mixer's running time now: timestamps for pictures we make ourselves.
    pub fn running_time(&self) -> Option<gst::ClockTime> {
        self.pipeline.current_running_time()
    }

    /// The running time at which the mixer's clock reaches the wall-clock time `at` (frames carry running times);
    /// None before the mixer runs.
    pub fn running_time_at(&self, at: std::time::SystemTime) -> Option<gst::ClockTime> {
        let now = std::time::SystemTime::now();
        let running = self.running_time()?;
        Some(match at.duration_since(now) {
            Ok(ahead) => running + gst::ClockTime::from_nseconds(ahead.as_nanos() as u64),
            Err(behind) => running.saturating_sub(gst::ClockTime::from_nseconds(behind.duration().as_nanos() as u64)),
        })
    }

    /// Removes a participant without a glitch: stop its input, release the mixer pads, then remove elements.
    pub fn detach(&self, tile: Tile) {
        tile.detach(self);
    }
}
