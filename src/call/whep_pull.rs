//! One stream pulled from a WHEP server (RFC 9725's playback mirror: MediaMTX, Cloudflare Stream, SRS, another
//! callcast): a webrtcbin that offers to receive H.264 or VP8 and Opus, POSTs its offer with the stream's bearer
//! token, applies the answer, and decodes what arrives into one participant's taps. `WhepPull::leave` sends the
//! resource's DELETE. Errors never carry the token, nor the URL (its path or query may be a stream key).

use super::participant::Participant;
use super::peer_wiring;
use super::webrtc::{self, IceConfig};
use crate::wall_clock::now_ms;
use anyhow::{anyhow, Context, Result};
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
#[derive(Clone)]
pub struct WhepStream {
    pub url: reqwest::Url,
    pub token: Option<SecretString>,
    pub name: String,
}

/// The URL's origin only: its path or query may be a stream key.
impl std::fmt::Debug for WhepStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhepStream")
            .field("url", &format!("{}/***", self.url.origin().ascii_serialization()))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("name", &self.name)
            .finish()
    }
}

/// A connected (or connecting) pull: its pipeline, and the participant its tracks decode into.
pub struct WhepPull {
    pub participant: Arc<Participant>,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    /// The server's resource for this session (its DELETE ends it).
    resource: Option<reqwest::Url>,
    /// The token, for the DELETE: sent only to the endpoint's own origin.
    token: Option<SecretString>,
    origin: url::Origin,
    client: reqwest::Client,
    answered_ms: u64,
}

impl WhepPull {
    /// Offers, POSTs and applies the answer; the media follows ICE. On an error the session the server may have
    /// made is ended (DELETE) and the pipeline stopped.
    pub async fn connect(
        stream: &WhepStream,
        id: String,
        ice: &IceConfig,
        latency_ms: u32,
        client: &reqwest::Client,
    ) -> Result<Self> {
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
            origin: stream.url.origin(),
            client: client.clone(),
            answered_ms: now_ms(),
        };
        match pull.negotiate(stream).await {
            Ok(()) => Ok(pull),
            Err(e) => {
                pull.leave().await;
                Err(e)
            }
        }
    }

    async fn negotiate(&mut self, stream: &WhepStream) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .context("starting a WHEP pull")?;
        webrtc::create_local(&self.webrtc, WebRTCSDPType::Offer).await?;
        let offer = webrtc::gathered_local_sdp(&self.webrtc).await?;
        let (resource, answer) = post_offer(&self.client, stream, offer).await;
        self.resource = resource;
        webrtc::set_remote(&self.webrtc, &answer?, WebRTCSDPType::Answer).await?;
        self.answered_ms = now_ms();
        Ok(())
    }

    /// Whether media flows: the connection is up or something was decoded.
    pub fn connected(&self) -> bool {
        self.participant.last_media_ms() > 0
            || self.webrtc.property::<WebRTCPeerConnectionState>("connection-state")
                == WebRTCPeerConnectionState::Connected
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
    pub async fn leave(&mut self) {
        if let Some(resource) = self.resource.take() {
            let mut request = self.client.delete(resource.clone()).timeout(DELETE_TIMEOUT);
            // A `Location` on another host does not get the token.
            if let Some(token) = self.token.as_ref().filter(|_| resource.origin() == self.origin) {
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
    /// Dropped without `leave` (its connect cancelled by the broadcast's stop): stopped off the async threads.
    fn drop(&mut self) {
        if self.pipeline.current_state() == gst::State::Null {
            return;
        }
        let pipeline = self.pipeline.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || pipeline.set_state(gst::State::Null))),
            Err(_) => drop(pipeline.set_state(gst::State::Null)),
        }
    }
}

/// POSTs the offer; the resource URL (from `Location`, relative to the endpoint: any the server made, to DELETE
/// even when the answer is refused) and the answer.
async fn post_offer(
    client: &reqwest::Client,
    stream: &WhepStream,
    offer: String,
) -> (Option<reqwest::Url>, Result<String>) {
    let mut request = client
        .post(stream.url.clone())
        .timeout(POST_TIMEOUT)
        .header("content-type", "application/sdp")
        .body(offer);
    if let Some(token) = &stream.token {
        request = request.bearer_auth(token.expose_secret());
    }
    // reqwest's errors name the URL: not ours to show (their sources say why: refused, DNS, TLS, timeout).
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            return (
                None,
                Err(anyhow::Error::new(e.without_url()).context("the WHEP server did not answer")),
            )
        }
    };
    let status = response.status();
    let resource = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| stream.url.join(l).ok());
    if status != reqwest::StatusCode::CREATED {
        return (resource, Err(anyhow!("the WHEP server answered {status}")));
    }
    let answer = response
        .text()
        .await
        .map_err(|e| anyhow::Error::new(e.without_url()).context("reading the WHEP answer"));
    (resource, answer)
}
