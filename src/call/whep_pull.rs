//! One stream pulled from a WHEP server (RFC 9725's playback mirror: MediaMTX, Cloudflare Stream, SRS, another
//! callcast): a webrtcbin that offers to receive H.264 or VP8 and Opus, POSTs its offer with the stream's bearer
//! token, applies the answer, and decodes what arrives into one participant's taps. `WhepPull::leave` sends the
//! resource's DELETE. Errors never carry the token, nor the URL (its path or query may be a stream key).

use super::participant::Participant;
use super::peer_wiring;
use super::webrtc::{self, IceConfig};
use crate::wall_clock::now_ms;
use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;
use gst_webrtc::{WebRTCPeerConnectionState, WebRTCRTPTransceiverDirection, WebRTCSDPType};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;

/// What we offer to receive: H.264 as browsers and callcast send it, VP8, and Opus.
const RECEIVE_CAPS: [&str; 2] = [
    "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=102,\
     packetization-mode=(string)1,profile-level-id=(string)42e01f;\
     application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96",
    "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111,encoding-params=(string)2",
];
/// How long the server may take to answer the offer, and to take the DELETE.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
const DELETE_TIMEOUT: Duration = Duration::from_secs(1);

/// A stream to pull: the WHEP endpoint, its bearer token (secret) and the name its participant shows.
#[derive(Clone, Debug)]
pub struct WhepStream {
    pub url: reqwest::Url,
    pub token: Option<SecretString>,
    pub name: String,
}

/// A connected (or connecting) pull: its pipeline, and the participant its tracks decode into.
pub struct WhepPull {
    pub participant: Arc<Participant>,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    /// The server's resource for this session (its DELETE ends it).
    resource: Option<reqwest::Url>,
    token: Option<SecretString>,
    answered_ms: u64,
}

impl WhepPull {
    /// Offers, POSTs and applies the answer. The participant joins once this returns; its media follows ICE.
    pub async fn connect(stream: &WhepStream, id: String, ice: &IceConfig, latency_ms: u32) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name(&format!("whep-pull-{id}"));
        let webrtc = webrtc::new_webrtcbin("webrtc", ice, latency_ms)?;
        pipeline.add(&webrtc)?;
        for caps in RECEIVE_CAPS {
            let caps: gst::Caps = caps.parse().map_err(|_| anyhow!("receive caps"))?;
            webrtc.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
                "add-transceiver",
                &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
            );
        }
        let participant = Participant::new(id, stream.name.clone());
        let owner = participant.clone();
        {
            let _span = tracing::info_span!("participant", participant_id = %participant.id).entered();
            peer_wiring::decode_tracks(&pipeline, &webrtc, move |_| Ok(owner.clone()));
        }
        let mut pull = Self {
            participant,
            pipeline,
            webrtc,
            resource: None,
            token: stream.token.clone(),
            answered_ms: now_ms(),
        };
        pull.pipeline
            .set_state(gst::State::Playing)
            .context("starting a WHEP pull")?;
        webrtc::create_local(&pull.webrtc, WebRTCSDPType::Offer).await?;
        let offer = webrtc::gathered_local_sdp(&pull.webrtc).await?;
        let (resource, answer) = post_offer(stream, offer).await?;
        pull.resource = resource;
        webrtc::set_remote(&pull.webrtc, &answer, WebRTCSDPType::Answer).await?;
        pull.answered_ms = now_ms();
        Ok(pull)
    }

    /// Why this pull is over, if it is: its connection failed or closed, or nothing arrived for `silence`
    /// (counted from the answer).
    pub fn gone(&self, silence: Duration) -> Option<String> {
        use WebRTCPeerConnectionState as S;
        let state = self.webrtc.property::<S>("connection-state");
        if matches!(state, S::Failed | S::Closed) {
            return Some(format!("connection {state:?}"));
        }
        let last = self.participant.last_media_ms().max(self.answered_ms);
        let silent = Duration::from_millis(now_ms().saturating_sub(last));
        (silent >= silence).then(|| format!("no media for {} s", silent.as_secs()))
    }

    /// Ends the session at the server (best effort, briefly) and stops the pipeline.
    pub async fn leave(self) {
        if let Some(resource) = &self.resource {
            let mut request = reqwest::Client::new().delete(resource.clone()).timeout(DELETE_TIMEOUT);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose_secret());
            }
            let _ = request.send().await;
        }
        let pipeline = self.pipeline.clone();
        // A state change to NULL waits for streaming threads: not on the async threads.
        let _ = tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Null)).await;
    }
}

impl Drop for WhepPull {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// POSTs the offer; the resource URL (from `Location`, relative to the endpoint) and the answer.
async fn post_offer(stream: &WhepStream, offer: String) -> Result<(Option<reqwest::Url>, String)> {
    let mut request = reqwest::Client::new()
        .post(stream.url.clone())
        .timeout(POST_TIMEOUT)
        .header("content-type", "application/sdp")
        .body(offer);
    if let Some(token) = &stream.token {
        request = request.bearer_auth(token.expose_secret());
    }
    // reqwest's errors name the URL: not ours to show.
    let response = request
        .send()
        .await
        .map_err(|e| anyhow!("the WHEP server did not answer: {}", e.without_url()))?;
    let status = response.status();
    let resource = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| stream.url.join(l).ok());
    if status != reqwest::StatusCode::CREATED {
        bail!("the WHEP server answered {status}");
    }
    let answer = response
        .text()
        .await
        .map_err(|e| anyhow!("reading the WHEP answer: {}", e.without_url()))?;
    Ok((resource, answer))
}
