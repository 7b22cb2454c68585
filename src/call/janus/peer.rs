//! The one PeerConnection a broadcast holds with Janus: a webrtcbin that receives every subscribed stream and
//! routes each new pad, by its mid, to the participant whose feed Janus put there.

use crate::call::decode::{link_decoder, link_discard, TrackKind};
use crate::call::participant::Participant;
use crate::call::webrtc::{self, IceConfig};
use anyhow::{Context, Result};
use gst::prelude::*;
use gst_webrtc::WebRTCSDPType;
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
        webrtc::set_remote(&self.webrtc, offer, WebRTCSDPType::Offer).await?;
        webrtc::create_local(&self.webrtc, WebRTCSDPType::Answer).await?;
        webrtc::gathered_local_sdp(&self.webrtc).await
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
        let pipeline = self.pipeline.downgrade();
        let mids = self.mids.clone();
        self.webrtc.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline.upgrade() else { return };
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let mid = pad
                .property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
                .and_then(|t| t.mid())
                .map(|m| m.to_string());
            let participant = mid.as_ref().and_then(|m| mids.lock().unwrap().get(m).cloned());
            let linked = match participant {
                Some(p) => link_decoder(&pipeline, pad).map(|track| {
                    tracing::debug!(participant_id = %p.id, ?mid, "decoding {:?}", track.kind);
                    match track.kind {
                        TrackKind::Video => {
                            p.video.attach(&track.appsink);
                            p.video.gate_decoder(&track);
                        }
                        TrackKind::Audio => p.audio.attach(&track.appsink),
                    }
                    if let Some(parsed) = &track.h264 {
                        p.h264.attach(parsed);
                    }
                }),
                None => Err(anyhow::anyhow!("no participant for mid {mid:?}")),
            };
            if let Err(err) = linked {
                tracing::warn!("not decoding a Janus stream: {err:#}");
                let _ = link_discard(&pipeline, pad);
            }
        });
    }
}

impl Drop for SubscriberPeer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
