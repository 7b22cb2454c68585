//! The one PeerConnection a broadcast holds with Janus: a webrtcbin that receives every subscribed stream and
//! routes each new pad, by its mid, to the participant whose feed Janus put there.

use crate::call::participant::Participant;
use crate::call::peer_wiring;
use crate::call::webrtc::{self, IceConfig};
use anyhow::{Context, Result};
use gst::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// mid -> the participant whose stream Janus currently sends on it.
pub type MidMap = Arc<Mutex<HashMap<String, Arc<Participant>>>>;

/// Video mids as Janus described them in its last offer.
pub type VideoMids = Arc<Mutex<std::collections::HashSet<String>>>;

pub struct SubscriberPeer {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    pub mids: MidMap,
    pub video_mids: VideoMids,
}

impl SubscriberPeer {
    pub fn new(ice: &IceConfig, latency_ms: u32) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name("janus-subscriber");
        let webrtc = webrtc::new_webrtcbin("webrtc", ice, latency_ms)?;
        pipeline.add(&webrtc)?;
        let peer = Self {
            pipeline,
            webrtc,
            mids: MidMap::default(),
            video_mids: VideoMids::default(),
        };
        peer.route_pads();
        peer.pipeline
            .set_state(gst::State::Playing)
            .context("starting the Janus subscriber pipeline")?;
        Ok(peer)
    }

    /// Answers Janus' (re)offer; the answer carries our candidates.
    pub async fn answer(&self, offer: &str) -> Result<String> {
        webrtc::answer(&self.webrtc, offer).await
    }

    /// (mid, participant) of every video stream.
    pub fn video_mids(&self) -> Vec<(String, Arc<Participant>)> {
        let video = self.video_mids.lock().unwrap();
        self.mids
            .lock()
            .unwrap()
            .iter()
            .filter(|(mid, _)| video.contains(*mid))
            .map(|(mid, p)| (mid.clone(), p.clone()))
            .collect()
    }

    fn route_pads(&self) {
        let mids = self.mids.clone();
        peer_wiring::decode_tracks(&self.pipeline, &self.webrtc, move |track| {
            let mid = track.mid.as_ref().ok_or("a Janus stream without a mid")?;
            mids.lock()
                .unwrap()
                .get(mid)
                .cloned()
                .ok_or_else(|| format!("no participant for mid {mid}"))
        });
    }
}

impl Drop for SubscriberPeer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
