//! One WHEP viewer: its own small pipeline (the broadcast's H.264 and the shared Opus, each fed through a pad of
//! ours (`whep_feed`) and payloaded with the payload type the viewer's offer chose, into a webrtcbin sending
//! only). The station's streaming threads push into it directly once its DTLS keys are set, from when nothing on
//! its send path waits: a viewer that stops taking media loses its packets in the network, never holds anyone.

use super::whep_feed::Feed;
use super::whep_offer::{Chosen, ViewerOffer};
use crate::call::trickle::{Fragment, RemoteIce, TrickleError};
use crate::call::webrtc::{self, IceConfig};
use crate::gst_util::make;
use anyhow::{Context, Result};
use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A viewer not connected this long after its answer never will be (or left without its DELETE): its place
/// under `max_viewers` is given back.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// A viewer disconnected this long (a closed tab, a lost network: ICE stops answering) is gone.
const DISCONNECTED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A connected viewer from which nothing at all came this long (no RTCP report, no DTLS) is gone: it stopped
/// taking media (a frozen process, a cut path) while ICE, which webrtcbin 1.22 never re-checks once connected,
/// still says connected. Browsers send RTCP every second or so, webrtcbin's rtpbin every 2.5-7.5 s.
const SILENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The connection's state as webrtcbin last announced it, and since when it has been disconnected. Kept from
/// its notifications: reading webrtcbin's property takes webrtcbin's lock, which the station's streaming thread
/// must never wait for.
#[derive(Clone, Copy)]
struct Connection {
    state: gst_webrtc::WebRTCPeerConnectionState,
    disconnected_since: Option<std::time::Instant>,
    connected_since: Option<std::time::Instant>,
}

pub struct Viewer {
    pub id: String,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    video: Option<Feed>,
    audio: Option<Feed>,
    /// Set when its DTLS keys are: webrtcbin holds media until then, so nothing is pushed before.
    keyed: std::sync::Arc<AtomicBool>,
    /// Set at the first keyframe: nothing is sent before it, so the viewer's decoder starts clean.
    started: AtomicBool,
    /// The broadcast's timestamp of that keyframe and this pipeline's running time when it came: every buffer
    /// is moved by the same amount, so sound and picture keep their sync.
    origin: Mutex<Option<(gst::ClockTime, gst::ClockTime)>>,
    created: std::time::Instant,
    connection: std::sync::Arc<Mutex<Connection>>,
    /// The offer's ICE credentials and sections, for candidates trickled later.
    remote: std::sync::OnceLock<RemoteIce>,
    /// When the viewer last sent us anything (milliseconds after `created`), 0 before it did: set on the
    /// receiving thread of its transport.
    heard: std::sync::Arc<AtomicU64>,
}

/// rtph264pay only takes the profile and level that downstream's `profile-level-id` allows, which is what the
/// viewer offered (Chromium offers no High profile). The broadcast's H.264 is sent as it is (a viewer never gets an
/// encode of its own), and browsers' decoders take any profile: the payloader's caps and accept-caps queries are
/// answered here, so it never reads the viewer's preference.
fn accept_any_profile(pay_src: &gst::Pad) {
    pay_src.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, |pad, info| {
        let Some(query) = info.query_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let caps = q.filter_owned().unwrap_or_else(|| pad.pad_template_caps());
                q.set_result(&caps);
                gst::PadProbeReturn::Handled
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                q.set_result(true);
                gst::PadProbeReturn::Handled
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

impl Viewer {
    /// Makes the pipeline and starts it (webrtcbin must run before it takes an offer). `keyframe` is called when
    /// the viewer asks for a keyframe (its PLI or FIR).
    pub fn new(
        id: String,
        ice: &IceConfig,
        video_caps: Option<&gst::Caps>,
        audio_caps: Option<&gst::Caps>,
        offer: &ViewerOffer,
        keyframe: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name(&format!("whep-{id}"));
        let webrtc = webrtc::new_webrtcbin("webrtc", ice, 0)?;
        pipeline.add(&webrtc)?;
        // rtpsession turns a viewer's PLI/FIR into an upstream force-key-unit event.
        let video = offer.video.as_ref().map(|_| {
            Feed::new("video", video_caps, move |event| {
                if gst_video::ForceKeyUnitEvent::is(event) {
                    keyframe();
                }
            })
        });
        let audio = offer.audio.as_ref().map(|_| Feed::new("audio", audio_caps, |_| {}));
        let connection = std::sync::Arc::new(Mutex::new(Connection {
            state: gst_webrtc::WebRTCPeerConnectionState::New,
            disconnected_since: None,
            connected_since: None,
        }));
        let follow = connection.clone();
        webrtc.connect_notify(Some("connection-state"), move |webrtc, _| {
            use gst_webrtc::WebRTCPeerConnectionState as S;
            let state = webrtc.property::<S>("connection-state");
            let mut connection = follow.lock().unwrap();
            connection.disconnected_since = match state {
                S::Disconnected => connection
                    .disconnected_since
                    .or_else(|| Some(std::time::Instant::now())),
                _ => None,
            };
            connection.connected_since = match state {
                S::Connected => connection.connected_since.or_else(|| Some(std::time::Instant::now())),
                _ => None,
            };
            connection.state = state;
        });
        pipeline
            .set_state(gst::State::Playing)
            .context("starting a WHEP viewer")?;
        Ok(Self {
            id,
            pipeline,
            webrtc,
            video,
            audio,
            keyed: std::sync::Arc::default(),
            started: AtomicBool::new(false),
            origin: Mutex::new(None),
            created: std::time::Instant::now(),
            connection,
            remote: std::sync::OnceLock::new(),
            heard: std::sync::Arc::default(),
        })
    }

    /// Takes the offer and returns the answer with every local candidate. Our transceivers exist before the
    /// offer is set (sendonly, with the offer's own description of the codec): webrtcbin 1.22 creates the
    /// offer's transceivers only when it answers, and then takes an unassociated one of the same kind and codec.
    pub async fn answer(&self, offer_sdp: &str, offer: &ViewerOffer) -> Result<String> {
        let mut transceivers = Vec::new();
        if let (Some(chosen), Some(feed)) = (&offer.video, &self.video) {
            transceivers.push((feed, self.send(chosen, feed, "rtph264pay", "video")?));
        }
        if let (Some(chosen), Some(feed)) = (&offer.audio, &self.audio) {
            transceivers.push((feed, self.send(chosen, feed, "rtpopuspay", "audio")?));
        }
        let _ = self.remote.set(RemoteIce::of_offer(offer_sdp));
        let answer = webrtc::answer(&self.webrtc, offer_sdp).await?;
        for (feed, transceiver) in transceivers {
            feed.set_sending(transceiver.property("current-direction"));
        }
        self.listen_to_transport();
        Ok(answer)
    }

    /// Notes each packet the viewer sends us (RTCP, DTLS; STUN stays inside libnice) in `heard`, and when its
    /// DTLS keys are set in `keyed`: its transport's `nicesrc` and `dtlssrtpenc`, made by webrtcbin when it
    /// answered.
    fn listen_to_transport(&self) {
        let Some(bin) = self.webrtc.downcast_ref::<gst::Bin>() else {
            return;
        };
        let created = self.created;
        let elements: Vec<gst::Element> = bin.iterate_recurse().into_iter().flatten().collect();
        // One DTLS transport, bundled, or one per section when the offer did not bundle: keyed once all are,
        // since each transport holds its own media until its keys are set.
        let encoders: Vec<&gst::Element> = elements
            .iter()
            .filter(|e| e.factory().is_some_and(|f| f.name() == "dtlssrtpenc"))
            .collect();
        let unkeyed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(encoders.len()));
        for encoder in encoders {
            // Connected after webrtcbin's own handler, which lets the media through.
            let (keyed, unkeyed, once) = (self.keyed.clone(), unkeyed.clone(), AtomicBool::new(false));
            encoder.connect("on-key-set", false, move |_| {
                if !once.swap(true, Ordering::AcqRel) && unkeyed.fetch_sub(1, Ordering::AcqRel) == 1 {
                    keyed.store(true, Ordering::Release);
                }
                None
            });
        }
        for element in elements {
            let is_nicesrc = element.factory().is_some_and(|f| f.name() == "nicesrc");
            let Some(pad) = element.static_pad("src").filter(|_| is_nicesrc) else {
                continue;
            };
            let heard = self.heard.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    heard.store(created.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
        }
    }

    /// Whether a connected viewer sent nothing for `SILENT_TIMEOUT`, counted from its last packet or from when
    /// it connected, whichever is later.
    fn silent(&self, connected_since: Option<std::time::Instant>) -> bool {
        let Some(connected_since) = connected_since else {
            return false;
        };
        let heard = self.heard.load(Ordering::Relaxed);
        let last = match heard {
            0 => connected_since,
            ms => (self.created + std::time::Duration::from_millis(ms)).max(connected_since),
        };
        last.elapsed() > SILENT_TIMEOUT
    }

    /// The viewer's `ETag`, which its trickle requests give in `If-Match`.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.id)
    }

    /// Adds candidates the viewer found after its offer (trickle ICE); how many.
    pub fn trickle(&self, fragment: &Fragment) -> Result<usize, TrickleError> {
        let remote = self.remote.get().cloned().unwrap_or_default();
        crate::call::trickle::add_candidates(&self.webrtc, &remote, fragment)
    }

    /// `feed ! payloader ! webrtcbin` on a new sendonly transceiver for `chosen`; the transceiver.
    fn send(&self, chosen: &Chosen, feed: &Feed, payloader: &str, media: &str) -> Result<WebRTCRTPTransceiver> {
        tracing::debug!(mline = chosen.mline, pt = chosen.pt, "a WHEP viewer gets {media}");
        let pay = make(payloader)?;
        pay.set_property("pt", chosen.pt as u32);
        if media == "video" {
            // Each access unit as soon as it is whole (no waiting to fill an aggregate).
            pay.set_property_from_str("aggregate-mode", "zero-latency");
        }
        self.pipeline.add(&pay)?;
        feed.pad().link(&pay.static_pad("sink").context("payloader sink")?)?;
        let sink = self
            .webrtc
            .request_pad_simple("sink_%u")
            .context("webrtcbin sink pad")?;
        let transceiver = sink
            .property::<Option<WebRTCRTPTransceiver>>("transceiver")
            .with_context(|| format!("no transceiver for the {media} pad"))?;
        transceiver.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
        transceiver.set_property("codec-preferences", &chosen.caps);
        let pay_src = pay.static_pad("src").context("payloader src")?;
        if media == "video" {
            accept_any_profile(&pay_src);
        }
        pay_src.link(&sink)?;
        super::whep_send_path::bypass_fec_encoders_at_first_buffer(&sink);
        pay.sync_state_with_parent()?;
        Ok(transceiver)
    }

    /// This pipeline's running time now.
    fn now(&self) -> Option<gst::ClockTime> {
        let clock = self.pipeline.clock()?;
        Some(clock.time().saturating_sub(self.pipeline.base_time()?))
    }

    /// One buffer of the broadcast's; video from a keyframe on, sound once the picture started, both once the
    /// viewer's keys are set.
    pub fn push_video(&self, buffer: &gst::Buffer) {
        if !self.keyed.load(Ordering::Acquire) {
            return;
        }
        if !self.started.load(Ordering::Relaxed) {
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return;
            }
            let (Some(pts), Some(now)) = (buffer.pts(), self.now()) else {
                return;
            };
            *self.origin.lock().unwrap() = Some((pts, now));
            self.started.store(true, Ordering::Relaxed);
        }
        if let Some(feed) = &self.video {
            self.push(feed, buffer);
        }
    }

    pub fn push_audio(&self, buffer: &gst::Buffer) {
        if !self.keyed.load(Ordering::Acquire) {
            return;
        }
        if let Some(feed) = &self.audio {
            if self.video.is_none() && !self.started.swap(true, Ordering::Relaxed) {
                if let (Some(pts), Some(now)) = (buffer.pts(), self.now()) {
                    *self.origin.lock().unwrap() = Some((pts, now));
                }
            }
            self.push(feed, buffer);
        }
    }

    /// Whether a keyframe still has to come before this viewer, keyed, sees anything.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.video.is_some() && self.keyed.load(Ordering::Acquire) && !self.started.load(Ordering::Relaxed)
    }

    fn push(&self, feed: &Feed, buffer: &gst::Buffer) {
        let Some((from, at)) = *self.origin.lock().unwrap() else {
            return;
        };
        let Some(pts) = buffer.pts().filter(|pts| *pts >= from) else {
            // From before the first keyframe (sound that came a moment earlier): not sent.
            return;
        };
        let mut buffer = buffer.copy();
        {
            let b = buffer.make_mut();
            b.set_pts(at + (pts - from));
            b.set_dts(gst::ClockTime::NONE);
        }
        feed.push(buffer);
    }

    pub fn set_caps(&self, video: Option<&gst::Caps>, audio: Option<&gst::Caps>) {
        if let (Some(feed), Some(caps)) = (&self.video, video) {
            feed.set_caps(caps);
        }
        if let (Some(feed), Some(caps)) = (&self.audio, audio) {
            feed.set_caps(caps);
        }
    }

    /// Whether the viewer is gone: its connection failed or closed, stayed disconnected, went silent, or never
    /// came up.
    pub fn gone(&self) -> bool {
        use gst_webrtc::WebRTCPeerConnectionState as S;
        let connection = *self.connection.lock().unwrap();
        match connection.state {
            S::Failed | S::Closed => true,
            S::Connected => self.silent(connection.connected_since),
            S::Disconnected => connection
                .disconnected_since
                .is_some_and(|since| since.elapsed() > DISCONNECTED_TIMEOUT),
            _ => self.created.elapsed() > CONNECT_TIMEOUT,
        }
    }

    #[cfg(test)]
    pub fn webrtcbin(&self) -> &gst::Element {
        &self.webrtc
    }

    #[cfg(test)]
    pub fn is_keyed(&self) -> bool {
        self.keyed.load(Ordering::Acquire)
    }

    /// Stops the pipeline; blocking (call off the async threads and off streaming threads).
    pub fn close(&self) {
        for feed in [&self.video, &self.audio].into_iter().flatten() {
            feed.close();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
