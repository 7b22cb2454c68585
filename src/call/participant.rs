//! A participant of the call as a broadcast sees it: who they are and their decoded tracks.

use super::encoded_tap::EncodedTap;
use super::keyframes::KeyframeRequester;
use super::tap::Tap;
use std::sync::Arc;

pub struct Participant {
    pub id: String,
    pub name: String,
    pub video: Tap,
    pub audio: Tap,
    /// Their video before decoding, when it is H.264 (forwarded as is by the zero-transcode path).
    pub h264: EncodedTap,
    /// Their video and sound as received, whatever the codec (depayloaded and parsed, before any decoder):
    /// what per-participant track recordings write.
    pub encoded_video: EncodedTap,
    pub encoded_audio: EncodedTap,
}

impl Participant {
    pub fn new(id: String, name: String) -> Arc<Self> {
        let video = Tap::default();
        Arc::new(Self {
            id,
            name,
            h264: EncodedTap::new(video.keyframes().clone()),
            encoded_video: EncodedTap::new(video.keyframes().clone()),
            // Sound has no keyframes: a requester never attached to a track asks nobody.
            encoded_audio: EncodedTap::new(KeyframeRequester::default()),
            video,
            audio: Tap::default(),
        })
    }

    /// Wall-clock ms of the newest decoded buffer on any track (0 if none yet).
    pub fn last_media_ms(&self) -> u64 {
        self.video.last_buffer_ms().max(self.audio.last_buffer_ms())
    }
}

/// What a broadcast hears from the call it watches.
#[derive(Clone)]
pub enum CallEvent {
    Joined(Arc<Participant>),
    Left(String),
    /// The call is over (room destroyed): the broadcast ends with this reason.
    Ended(String),
    /// The call cannot be joined: the broadcast fails with this reason.
    Failed(String),
    /// Stream `index` of a source that pulls several (WHEP) changed state: `pulling`, or `retrying` with why.
    Stream {
        index: usize,
        state: &'static str,
        error: Option<String>,
    },
}
