//! One remote participant: its own pipeline with a webrtcbin receiving their tracks, decoded once into taps.

use super::decode::TrackKind;
use super::ice_restart;
use super::participant::Participant;
use super::peer_wiring;
use super::trickle::{Fragment, Patched, RemoteIce, TrickleError, TrickleRefusal};
use super::webrtc::{self, IceConfig};
use crate::wall_clock::now_ms;
use anyhow::{Context, Result};
use gst::prelude::*;
use gst_webrtc::WebRTCICEConnectionState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Why a leg ended on its own.
#[derive(Debug, Clone)]
pub struct LegGone {
    pub id: String,
    pub reason: String,
}

pub struct Leg {
    pub participant: Arc<Participant>,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    /// When the participant got our answer (its leg's creation until then): silence counts from here, as
    /// answering can take seconds on a loaded server and the participant cannot send before it has the answer.
    started_ms: std::sync::atomic::AtomicU64,
    /// The offer's ICE credentials (the latest ICE restart's) and sections, for candidates trickled later, and
    /// the latest restart's answer.
    ice: std::sync::Mutex<IceState>,
    /// Dropping it ends the bus-watch task.
    _stop_watch: tokio::sync::oneshot::Sender<()>,
}

/// A session's ICE as the client last described it, and the entity tag that names this state: checked and changed
/// under one lock, so that a PATCH naming the tag before a restart cannot act on the state after it.
struct IceState {
    remote: RemoteIce,
    /// The session's entity tag (`If-Match` of a PATCH must name it, or be `*`); a new one after each restart.
    etag: String,
    /// The latest restart: the client's ufrag and pwd, our answer to them and the entity tag it gave.
    last_restart: Option<LastRestart>,
}

struct LastRestart {
    ufrag: String,
    pwd: String,
    answer: String,
    etag: String,
}

/// A WHIP session's entity tag (a new one after each ICE restart).
fn new_etag() -> String {
    format!("\"{}\"", crate::ids::new_id("e"))
}

impl Leg {
    /// Creates the pipeline and starts it; `gone` hears about failures (ICE failed, pipeline error).
    pub fn new(
        id: String,
        name: String,
        ice: &IceConfig,
        latency_ms: u32,
        gone: mpsc::UnboundedSender<LegGone>,
    ) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name(&format!("leg-{id}"));
        let webrtc = webrtc::new_webrtcbin("webrtc", ice, latency_ms)?;
        pipeline.add(&webrtc)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let leg = Self {
            _stop_watch: stop_tx,
            participant: Participant::new(id, name),
            pipeline,
            webrtc,
            started_ms: std::sync::atomic::AtomicU64::new(now_ms()),
            ice: std::sync::Mutex::new(IceState {
                remote: RemoteIce::default(),
                etag: new_etag(),
                last_restart: None,
            }),
        };
        leg.connect_pads();
        leg.watch(gone, stop_rx);
        leg.pipeline
            .set_state(gst::State::Playing)
            .context("starting participant pipeline")?;
        Ok(leg)
    }

    /// Answers a remote offer; the returned SDP carries every local candidate.
    pub async fn answer(&self, offer: &str) -> Result<String> {
        self.ice.lock().unwrap().remote = RemoteIce::of_offer(offer);
        let answer = webrtc::answer(&self.webrtc, offer).await;
        self.started_ms.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
        answer
    }

    /// The session's entity tag now.
    pub fn etag(&self) -> String {
        self.ice.lock().unwrap().etag.clone()
    }

    /// A PATCH (`if_match`: its `If-Match`) with a fragment: an ICE restart if its `ice-ufrag` is new (answered
    /// with our credentials and a new entity tag), then the candidates it carries (trickle ICE). `If-Match: *`
    /// with the latest restart's credentials again is that restart retried (its answer lost on the way): the same
    /// answer and tag again.
    pub fn patch(&self, if_match: Option<&str>, fragment: &Fragment) -> Result<Patched, TrickleRefusal> {
        let mut ice = self.ice.lock().unwrap();
        super::trickle::check_if_match(if_match, &ice.etag)?;
        let restart_asked = if_match.map(str::trim) == Some("*");
        let restarted = match &fragment.ufrag {
            Some(ufrag) if ice.remote.ufrag.as_ref() != Some(ufrag) => {
                let (ufrag, pwd) =
                    ice_restart::remote_credentials(ufrag, fragment.pwd.as_deref()).map_err(TrickleError::from)?;
                // The candidates are checked before anything changes: a refused fragment leaves the session's
                // ICE as it was, instead of restarted on credentials the client never got.
                let next = RemoteIce {
                    ufrag: Some(ufrag.clone()),
                    mids: ice.remote.mids.clone(),
                };
                next.place(fragment)?;
                let local = ice_restart::restart(&self.webrtc, &ufrag, &pwd).map_err(TrickleError::from)?;
                ice.remote = next;
                ice.etag = new_etag();
                let local_sdp = webrtc::local_sdp(&self.webrtc).unwrap_or_default();
                let answer = ice_restart::answer_fragment(&local, &local_sdp);
                tracing::info!(participant_id = %self.participant.id, "ICE restarted");
                ice.last_restart = Some(LastRestart {
                    ufrag,
                    pwd,
                    answer: answer.clone(),
                    etag: ice.etag.clone(),
                });
                Some((answer, ice.etag.clone()))
            }
            Some(ufrag) if restart_asked => ice
                .last_restart
                .as_ref()
                .filter(|r| &r.ufrag == ufrag && Some(&r.pwd) == fragment.pwd.as_ref() && r.etag == ice.etag)
                .map(|r| (r.answer.clone(), r.etag.clone())),
            _ => None,
        };
        let added = super::trickle::add_candidates(&self.webrtc, &ice.remote, fragment)?;
        Ok(match restarted {
            None => Patched::Trickled(added),
            Some((fragment, etag)) => Patched::Restarted { fragment, etag },
        })
    }

    /// Milliseconds since media last arrived on any track (or since the participant got its answer, if none yet).
    pub fn silent_for_ms(&self) -> u64 {
        let started = self.started_ms.load(std::sync::atomic::Ordering::Relaxed);
        let last = self.participant.last_media_ms().max(started);
        now_ms().saturating_sub(last)
    }

    /// One track per kind: a second one would fight over the participant's tap.
    fn connect_pads(&self) {
        let participant = self.participant.clone();
        let have_video = AtomicBool::new(false);
        let have_audio = AtomicBool::new(false);
        let _span = tracing::info_span!("participant", participant_id = %participant.id).entered();
        peer_wiring::decode_tracks(&self.pipeline, &self.webrtc, move |track| {
            let seen = match track.kind {
                Some(TrackKind::Video) => &have_video,
                Some(TrackKind::Audio) => &have_audio,
                None => return Ok(participant.clone()),
            };
            if seen.swap(true, Ordering::SeqCst) {
                return Err(format!("ignoring an extra {:?} track", track.kind));
            }
            Ok(participant.clone())
        });
    }

    fn watch(&self, gone: mpsc::UnboundedSender<LegGone>, stop: tokio::sync::oneshot::Receiver<()>) {
        let id = self.participant.id.clone();
        let gone_ice = gone.clone();
        self.webrtc
            .connect_notify(Some("ice-connection-state"), move |webrtc, _| {
                let state = webrtc.property::<WebRTCICEConnectionState>("ice-connection-state");
                if matches!(
                    state,
                    WebRTCICEConnectionState::Failed | WebRTCICEConnectionState::Closed
                ) {
                    let _ = gone_ice.send(LegGone {
                        id: id.clone(),
                        reason: format!("ICE {state:?}"),
                    });
                }
            });
        report_first_error(&self.pipeline, self.participant.id.clone(), gone, stop);
    }
}

/// Tells `gone` about the first error on `pipeline`'s bus (a participant's pipeline: WHIP or plain RTP), until
/// `stop` fires.
pub(super) fn report_first_error(
    pipeline: &gst::Pipeline,
    id: String,
    gone: mpsc::UnboundedSender<LegGone>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut messages = pipeline.bus().expect("pipeline has a bus").stream();
    tokio::spawn(async move {
        use futures::StreamExt;
        let first_error = async {
            while let Some(msg) = messages.next().await {
                if let gst::MessageView::Error(err) = msg.view() {
                    return Some(crate::gst_util::describe_error(err));
                }
            }
            None
        };
        tokio::select! {
            Some(reason) = first_error => {
                tracing::warn!(participant_id = %id, "participant pipeline error: {reason}");
                let _ = gone.send(LegGone { id, reason });
            }
            _ = stop => {}
        }
    });
}

impl Drop for Leg {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
