//! The mixer of an audio-only broadcast: every participant's sound into one audiomixer and one AAC encode. No
//! compositor and no video encode; nobody subscribes to participants' pictures, so their video is not decoded
//! (a track's decoder is gated while nobody shows it).

use super::settings::AudioMixSettings;
use super::voice::Voice;
use crate::call::participant::Participant;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::sync::Arc;

pub struct AudioMix {
    pub pipeline: gst::Pipeline,
    audiomixer: gst::Element,
    /// The mixed sound in AAC, for the outputs' hub.
    pub audio_out: gst_app::AppSink,
    /// Latency we tell the mixer a participant's sound has when it reaches it.
    input_latency: gst::ClockTime,
}

/// One participant heard in the mix.
pub struct Heard {
    pub participant: Arc<Participant>,
    voice: Voice,
}

impl AudioMix {
    pub fn new(settings: &AudioMixSettings) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name("audio-mixer");
        let audiomixer = super::live_mixer("audiomixer")?;
        let audio_out = super::encode::build_audio(
            &pipeline,
            &audiomixer,
            settings.bitrate_kbps,
            super::encode::AudioBuffers::AUDIO_ONLY,
        )?;
        Ok(Self {
            pipeline,
            audiomixer,
            audio_out,
            input_latency: gst::ClockTime::from_mseconds(
                u64::from(settings.participant_latency_ms) + super::MIX_MARGIN_MS,
            ),
        })
    }

    pub fn play(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .context("starting the audio mixer pipeline")?;
        Ok(())
    }

    /// Adds a participant's sound to the mix.
    pub fn attach(&self, participant: Arc<Participant>) -> Result<Heard> {
        let voice = Voice::attach(&self.pipeline, &self.audiomixer, &participant, self.input_latency)?;
        Ok(Heard { participant, voice })
    }

    /// Takes a participant's sound out of the mix.
    pub fn detach(&self, heard: Heard) {
        heard.voice.detach(&self.pipeline, &self.audiomixer);
    }
}
