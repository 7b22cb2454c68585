//! The program of an audio-only broadcast: everyone in the call heard in one mix, the active speaker followed
//! for the status. Nothing is drawn, so there is no layout and nobody is on screen.

use super::layout_spec::LayoutSpec;
use super::program::Program;
use super::speaker::SpeakerTracker;
use super::state::SceneStatus;
use super::status::ParticipantStatus;
use crate::call::participant::Participant;
use crate::call::source::TileWidths;
use crate::mix::audio_mix::{AudioMix, Heard};
use std::sync::Arc;
use std::time::Instant;

pub struct AudioStage {
    mix: AudioMix,
    heard: Vec<Heard>,
    speaker: SpeakerTracker,
}

impl AudioStage {
    pub fn new(mix: AudioMix) -> Self {
        Self {
            mix,
            heard: Vec::new(),
            speaker: SpeakerTracker::default(),
        }
    }
}

impl Program for AudioStage {
    fn pipeline(&self) -> &gst::Pipeline {
        &self.mix.pipeline
    }

    fn stop(&mut self) {
        use gst::prelude::*;
        for heard in self.heard.drain(..) {
            self.mix.detach(heard);
        }
        let _ = self.mix.pipeline.set_state(gst::State::Null);
    }

    fn join(&mut self, participant: Arc<Participant>) {
        if self.heard.iter().any(|h| h.participant.id == participant.id) {
            return;
        }
        let id = participant.id.clone();
        match self.mix.attach(participant) {
            Ok(heard) => self.heard.push(heard),
            Err(err) => tracing::warn!(participant_id = %id, "cannot add participant: {err:#}"),
        }
    }

    fn leave(&mut self, id: &str) {
        if let Some(pos) = self.heard.iter().position(|h| h.participant.id == id) {
            let heard = self.heard.remove(pos);
            self.mix.detach(heard);
            self.speaker.remove(id);
        }
    }

    fn participant_count(&self) -> usize {
        self.heard.len()
    }

    fn track_speaker(&mut self, now: Instant) -> bool {
        let levels: Vec<(String, f32)> = self
            .heard
            .iter()
            .map(|h| (h.participant.id.clone(), h.participant.audio.level()))
            .collect();
        self.speaker.update(now, &levels)
    }

    fn relayout(&mut self) {}

    fn scene(&self) -> SceneStatus {
        let speaker = self.speaker.current().map(str::to_string);
        let participants = self
            .heard
            .iter()
            .map(|h| ParticipantStatus {
                id: h.participant.id.clone(),
                name: h.participant.name.clone(),
                on_screen: false,
                // Nobody subscribes to their picture, so it is never decoded: this stays None (tests check it).
                video: super::stage::decoded_size(&h.participant),
                speaking: speaker.as_deref() == Some(h.participant.id.as_str()),
            })
            .collect();
        SceneStatus {
            participants,
            speaker,
            passthrough: None,
            overlays: Vec::new(),
        }
    }

    fn tile_widths(&self) -> TileWidths {
        TileWidths::new()
    }

    fn layout(&self) -> Option<&LayoutSpec> {
        None
    }

    fn set_layout(&mut self, _layout: LayoutSpec, _fade_ms: Option<u32>) {}

    fn set_overlays(&mut self, _overlays: Vec<super::overlays::Overlay>) -> Result<(), super::spec::SpecError> {
        Err(super::spec::SpecError::new("overlays", super::spec::NO_PICTURE))
    }

    fn passthrough_allowed(&self) -> bool {
        false
    }

    fn passthrough_stalled(&self) -> bool {
        false
    }
}
