//! What a broadcast puts on air from its call: the composited picture and the mix (`Stage`), or, for an
//! audio-only broadcast, the mix alone (`AudioStage`). The actor drives either through this trait.

use super::audio_stage::AudioStage;
use super::layout_spec::LayoutSpec;
use super::overlays::Overlay;
use super::spec::{BroadcastSpec, SpecError};
use super::stage::Stage;
use super::state::SceneStatus;
use crate::call::participant::Participant;
use crate::call::source::TileWidths;
use crate::layout::template::Templates;
use crate::layout::Canvas;
use crate::mix::audio_mix::AudioMix;
use crate::mix::Mixer;
use crate::output::hub::EncodedHub;
use gst::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub trait Program: Send {
    /// The mixer pipeline (its bus reports its errors; its end-of-stream drains the outputs).
    fn pipeline(&self) -> &gst::Pipeline;

    /// Starts the mix; its bus reports the pipeline's errors.
    fn play(&self) -> anyhow::Result<gst::bus::BusStream> {
        use anyhow::Context;
        let pipeline = self.pipeline();
        pipeline
            .set_state(gst::State::Playing)
            .context("starting the mixer pipeline")?;
        Ok(pipeline.bus().expect("pipeline has a bus").stream())
    }

    /// End of stream through the mixer (the encoders drain, then the hub ends every output), as a job for a
    /// blocking thread: it may wait up to `settle` for a state change under way. False when the mixer did not
    /// get the EOS (it never settled in PLAYING): there is nothing to wait for then.
    fn drain(&self, settle: Duration) -> Box<dyn FnOnce() -> bool + Send + 'static> {
        let pipeline = self.pipeline().clone();
        Box::new(move || crate::mix::end_stream(&pipeline, settle))
    }

    /// Takes every participant off and stops the mix.
    fn stop(&mut self);
    fn join(&mut self, participant: Arc<Participant>);
    fn leave(&mut self, id: &str);
    fn participant_count(&self) -> usize;
    /// Follows the speaker from the latest audio levels; true when the speaker changed.
    fn track_speaker(&mut self, now: Instant) -> bool;
    /// Places every participant according to the layout (nothing to place without a picture).
    fn relayout(&mut self);
    /// Who is in the program now, for the status.
    fn scene(&self) -> SceneStatus;
    /// Width of each participant's tile on screen now (none without a picture).
    fn tile_widths(&self) -> TileWidths;
    /// The layout as last asked for; None without a picture (audio-only).
    fn layout(&self) -> Option<&LayoutSpec>;
    /// A new layout, on air at once or, with `fade_ms`, cross-faded from the current picture.
    fn set_layout(&mut self, layout: LayoutSpec, fade_ms: Option<u32>);
    /// Draws `overlays` over the picture from the next frame, instead of the current ones.
    fn set_overlays(&mut self, overlays: Vec<Overlay>) -> Result<(), SpecError>;
    /// The broadcast went live at `at` (what a `timer` overlay counts from).
    fn went_live(&mut self, _at: std::time::SystemTime) {}
    /// When to bring `clock` and `timer` overlays up to date next (`tick_clocks`); None: there are none.
    fn clock_tick_due(&self) -> Option<std::time::SystemTime> {
        None
    }
    /// Brings `clock` and `timer` overlays up to date at `now`: each text drawn once, ahead of its second.
    fn tick_clocks(&mut self, _now: std::time::SystemTime) {}
    /// Whether zero-transcode may happen in this broadcast (`video.passthrough`).
    fn passthrough_allowed(&self) -> bool;
    /// True when the participant on air as is stopped sending: the mixer must take over now.
    fn passthrough_stalled(&self) -> bool;
}

/// The program `spec` asks for, feeding `hub`.
pub fn build(
    spec: &BroadcastSpec,
    hub: &EncodedHub,
    templates: &Arc<Templates>,
    overlay_assets: Arc<crate::mix::overlay_render::Assets>,
    participant_latency_ms: u32,
) -> anyhow::Result<Box<dyn Program>> {
    let (Some(video), Some(settings)) = (spec.video, spec.mix_settings(participant_latency_ms)) else {
        let mix = AudioMix::new(&spec.audio_mix_settings(participant_latency_ms))?;
        hub.attach_audio_only(&mix.audio_out);
        return Ok(Box::new(AudioStage::new(mix)));
    };
    let mixer = Mixer::new(&settings)?;
    hub.attach(&mixer.video_out, &mixer.audio_out, mixer.video_encoding.clone());
    let canvas = Canvas {
        width: video.width as i32,
        height: video.height as i32,
    };
    let mut stage = Stage::new(
        mixer,
        hub.clone(),
        canvas,
        spec.layout.clone(),
        templates.clone(),
        overlay_assets,
    )
    .with_passthrough(video.passthrough);
    stage.set_overlays(spec.overlays.clone())?;
    Ok(Box::new(stage))
}
