//! Follows a Janus VideoRoom: polls who publishes, subscribes to new feeds and unsubscribes from gone ones on
//! one PeerConnection, and comes back by itself when the Janus session is lost.

use super::api::{JanusApi, JanusError};
use super::layers::FeedLayers;
use super::messages::{Feed, Jsep, JsepKind, MediaKind, Message, Request, Stream, Substream, VideoRoom};
use super::peer::SubscriberPeer;
use super::JanusTarget;
use crate::call::display_name;
use crate::call::participant::{CallEvent, Participant};
use crate::call::source::{CallTask, TileWidths};
use crate::call::webrtc::IceConfig;
use secrecy::ExposeSecret;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// How often we ask Janus who publishes: a subscriber handle gets no room events, and this bounds how late
/// we notice a join or a leave.
const ROSTER_POLL: Duration = Duration::from_millis(500);
/// Well under any sensible Janus `session_timeout` (60 s by default; tests use 10 s).
const KEEPALIVE: Duration = Duration::from_secs(4);
const RETRY_START: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// VideoRoom error codes we act on.
const NO_SUCH_ROOM: i64 = 426;
/// How often simulcast layers are matched to tile sizes.
const LAYER_TICK: Duration = Duration::from_millis(500);
const UNAUTHORIZED: i64 = 433;

/// Why a Janus session ended.
enum SessionEnd {
    Stopped,
    /// The call cannot be joined as configured: the broadcast fails.
    Fatal(String),
    /// The room is gone: the broadcast ends.
    RoomGone,
    /// The session was lost (Janus restarted, network): join again.
    Lost(String),
}

struct Follower {
    api: JanusApi,
    target: JanusTarget,
    ice: IceConfig,
    latency_ms: u32,
    tx: mpsc::Sender<CallEvent>,
    /// feed id -> participant, for every feed whose streams we receive.
    feeds: HashMap<u64, Arc<Participant>>,
    /// Feeds we asked for and await in an offer.
    requested: HashSet<u64>,
    ever_joined: bool,
    tile_widths: watch::Receiver<TileWidths>,
    /// Per video mid: simulcast layer asked for, until when to let it take effect, and how often in a row it
    /// was asked for again without the picture changing (bounded, so feeds without simulcast go quiet).
    /// Simulcast layers per (participant, video mid): a mid freed by a leaving feed can be reused.
    layers: HashMap<(String, String), FeedLayers>,
}

/// Follows `target` until stopped; the broadcast hears joins, leaves, the end of the room or a failure.
pub async fn follow(target: JanusTarget, ice: IceConfig, latency_ms: u32, task: CallTask) {
    let CallTask {
        events: tx,
        stop,
        tile_widths,
    } = task;
    let follower = Follower {
        tile_widths,
        layers: HashMap::new(),
        api: JanusApi::new(&target.url, target.token.clone()),
        target,
        ice,
        latency_ms,
        tx,
        feeds: HashMap::new(),
        requested: HashSet::new(),
        ever_joined: false,
    };
    follower.run(stop).await;
}

impl Follower {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = RETRY_START;
        loop {
            let end = self.session(&mut stop).await;
            self.drop_everyone().await;
            let event = match end {
                SessionEnd::Stopped => return,
                SessionEnd::Fatal(reason) => CallEvent::Failed(reason),
                SessionEnd::RoomGone => CallEvent::Ended(format!("Janus room {} was destroyed", self.target.room)),
                SessionEnd::Lost(reason) => {
                    tracing::warn!("Janus session lost ({reason}); joining again in {backoff:?}");
                    if tokio::time::timeout(backoff, stop.changed()).await.is_ok() {
                        return;
                    }
                    backoff = (backoff * 2).min(RETRY_MAX);
                    continue;
                }
            };
            let _ = self.tx.send(event).await;
            let _ = stop.changed().await;
            return;
        }
    }

    async fn drop_everyone(&mut self) {
        self.requested.clear();
        for (_, p) in self.feeds.drain() {
            let _ = self.tx.send(CallEvent::Left(p.id.clone())).await;
        }
    }

    /// One Janus session, from create to loss or stop.
    async fn session(&mut self, stop: &mut watch::Receiver<bool>) -> SessionEnd {
        let (session, handle) = match self.open().await {
            Ok(ids) => ids,
            Err(end) => return end,
        };
        let (events_tx, mut events) = mpsc::channel::<Result<Vec<Message>, JanusError>>(16);
        let api = self.api.clone();
        let poller = tokio::spawn(
            async move {
                loop {
                    let result = api.events(session).await;
                    let failed = result.is_err();
                    if events_tx.send(result).await.is_err() || failed {
                        return;
                    }
                }
            }
            .in_current_span(),
        );
        let mut peer: Option<SubscriberPeer> = None;
        let mut roster = tokio::time::interval(ROSTER_POLL);
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        let mut layer_tick = tokio::time::interval(LAYER_TICK);
        let end = loop {
            let step = tokio::select! {
                _ = stop.changed() => Err(SessionEnd::Stopped),
                _ = roster.tick() => self.follow_roster(session, handle, peer.is_some()).await,
                _ = keepalive.tick() => self.api.keepalive(session).await.map_err(|e| SessionEnd::Lost(e.to_string())),
                _ = layer_tick.tick() => self.fit_layers(session, handle, peer.as_ref()).await,
                batch = events.recv() => match batch {
                    Some(Ok(batch)) => self.handle_events(session, handle, batch, &mut peer).await,
                    Some(Err(e)) => Err(SessionEnd::Lost(e.to_string())),
                    None => Err(SessionEnd::Lost("event poll ended".into())),
                },
            };
            if let Err(end) = step {
                break end;
            }
        };
        poller.abort();
        drop(peer);
        if matches!(end, SessionEnd::Stopped | SessionEnd::Fatal(_) | SessionEnd::RoomGone) {
            let _ = self.api.destroy(session).await;
        }
        end
    }

    /// Asks for each simulcast feed's smallest layer that fills its tile (`FeedLayers`: one request at a time,
    /// each given time to reach the decoder; asking for a layer also makes Janus request its keyframe). Feeds
    /// without simulcast ignore the requests and are left alone once each layer was tried.
    async fn fit_layers(&mut self, session: u64, handle: u64, peer: Option<&SubscriberPeer>) -> Result<(), SessionEnd> {
        let Some(peer) = peer else { return Ok(()) };
        let widths = self.tile_widths.borrow().clone();
        let video_mids: Vec<(String, Arc<Participant>)> = peer.video_mids();
        // Feeds that left take what was learned of them along.
        self.layers
            .retain(|(id, mid), _| video_mids.iter().any(|(m, p)| m == mid && &p.id == id));
        let now = Instant::now();
        for (mid, participant) in video_mids {
            let tile = widths.get(&participant.id).copied();
            let decoded = participant
                .video
                .caps()
                .and_then(|c| c.structure(0)?.get::<i32>("width").ok());
            let (Some(tile), Some(decoded)) = (tile, decoded) else {
                continue;
            };
            let feed = self.layers.entry((participant.id.clone(), mid.clone())).or_default();
            let Some(wanted) = feed.next(decoded, tile, now) else {
                continue;
            };
            tracing::debug!(participant_id = %participant.id, wanted, decoded, tile, "simulcast layer");
            let body = Request::Configure {
                streams: vec![Substream { mid, substream: wanted }],
            };
            self.api
                .message(session, handle, body, None)
                .await
                .map_err(|e| SessionEnd::Lost(e.to_string()))?;
        }
        Ok(())
    }

    /// Creates the session and handle and checks the room exists.
    async fn open(&mut self) -> Result<(u64, u64), SessionEnd> {
        let first = !self.ever_joined;
        let lost = |e: JanusError| {
            if first {
                SessionEnd::Fatal(format!("cannot join Janus at {}: {e}", self.target.url))
            } else {
                SessionEnd::Lost(e.to_string())
            }
        };
        let session = self.api.create_session().await.map_err(lost)?;
        let handle = self.api.attach(session).await.map_err(lost)?;
        self.roster(session, handle).await?;
        self.ever_joined = true;
        Ok((session, handle))
    }

    /// Publishers in the room now: feed id -> display name.
    async fn roster(&self, session: u64, handle: u64) -> Result<HashMap<u64, String>, SessionEnd> {
        let body = Request::ListParticipants { room: self.target.room };
        match self.api.message(session, handle, body, None).await {
            Ok(Message::Success {
                plugindata: Some(reply),
                ..
            }) => match reply.data {
                VideoRoom::Participants { participants } => Ok(participants
                    .into_iter()
                    .filter(|p| p.publisher)
                    .map(|p| (p.id, p.display.unwrap_or_default()))
                    .collect()),
                other => Err(SessionEnd::Lost(format!("listparticipants answered {other:?}"))),
            },
            Ok(other) => Err(SessionEnd::Lost(format!("listparticipants answered {other:?}"))),
            Err(JanusError::Janus { code: NO_SUCH_ROOM, .. }) if !self.ever_joined => Err(SessionEnd::Fatal(format!(
                "Janus room {} does not exist at {}",
                self.target.room, self.target.url
            ))),
            Err(JanusError::Janus { code: NO_SUCH_ROOM, .. }) => Err(SessionEnd::RoomGone),
            Err(e) if e.session_lost() => Err(SessionEnd::Lost(e.to_string())),
            Err(e) => Err(SessionEnd::Lost(e.to_string())),
        }
    }

    /// Subscribes to new publishers and lets go of gone ones.
    async fn follow_roster(&mut self, session: u64, handle: u64, have_peer: bool) -> Result<(), SessionEnd> {
        let publishers = self.roster(session, handle).await?;
        let gone: Vec<u64> = self
            .feeds
            .keys()
            .filter(|f| !publishers.contains_key(f))
            .copied()
            .collect();
        for feed in &gone {
            if let Some(p) = self.feeds.remove(feed) {
                tracing::info!(participant_id = %p.id, "left the Janus room");
                let _ = self.tx.send(CallEvent::Left(p.id.clone())).await;
            }
        }
        self.requested.retain(|f| publishers.contains_key(f));
        if !gone.is_empty() && have_peer {
            let streams = gone.iter().map(|&feed| Feed { feed }).collect();
            let body = Request::Unsubscribe { streams };
            // A feed that vanished with its publisher may already be unknown to Janus: nothing to undo then.
            let _ = self.api.message(session, handle, body, None).await;
        }
        let new: Vec<u64> = publishers
            .keys()
            .filter(|f| !self.feeds.contains_key(f) && !self.requested.contains(f))
            .copied()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let streams = new.iter().map(|&feed| Feed { feed }).collect();
        let body = if have_peer || !self.requested.is_empty() {
            Request::Subscribe { streams }
        } else {
            Request::Join {
                ptype: "subscriber",
                room: self.target.room,
                streams,
                pin: self.target.pin.as_ref().map(|pin| pin.expose_secret()),
            }
        };
        self.requested.extend(new);
        self.api
            .message(session, handle, body, None)
            .await
            .map(|_| ())
            .map_err(|e| SessionEnd::Lost(e.to_string()))
    }

    async fn handle_events(
        &mut self,
        session: u64,
        handle: u64,
        batch: Vec<Message>,
        peer: &mut Option<SubscriberPeer>,
    ) -> Result<(), SessionEnd> {
        for event in batch {
            let (data, jsep) = match event {
                Message::Event {
                    plugindata: Some(plugindata),
                    jsep,
                } => (plugindata.data, jsep),
                Message::Hangup { reason } => {
                    let reason = reason.unwrap_or_default();
                    return Err(SessionEnd::Lost(format!("Janus hung up the PeerConnection ({reason})")));
                }
                _ => continue,
            };
            if let Some((code, reason)) = data.error() {
                return Err(match code {
                    UNAUTHORIZED => SessionEnd::Fatal(format!(
                        "Janus refused to let us join room {}: {reason}",
                        self.target.room
                    )),
                    NO_SUCH_ROOM => SessionEnd::RoomGone,
                    _ => SessionEnd::Lost(format!("Janus error {code}: {reason}")),
                });
            }
            match (data, jsep) {
                (VideoRoom::Destroyed, _) => return Err(SessionEnd::RoomGone),
                (VideoRoom::Attached { streams } | VideoRoom::Updated { streams }, Some(jsep))
                    if jsep.kind == JsepKind::Offer =>
                {
                    self.accept_offer(session, handle, &streams, &jsep.sdp, peer).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Maps the offer's mids to participants, answers it, and announces participants new to the broadcast.
    async fn accept_offer(
        &mut self,
        session: u64,
        handle: u64,
        streams: &[Stream],
        offer: &str,
        peer: &mut Option<SubscriberPeer>,
    ) -> Result<(), SessionEnd> {
        if peer.is_none() {
            *peer =
                Some(SubscriberPeer::new(&self.ice, self.latency_ms).map_err(|e| SessionEnd::Fatal(format!("{e:#}")))?);
        }
        let peer = peer.as_ref().expect("peer just created");
        let mut joined = Vec::new();
        {
            let mut mids = peer.mids.lock().unwrap();
            let mut video_mids = peer.video_mids.lock().unwrap();
            // An update may list only the streams it changes: entries are replaced or removed one by one.
            for stream in streams {
                let Some(mid) = stream.mid.as_deref() else { continue };
                let Some(feed) = stream.feed_id.filter(|_| stream.active) else {
                    mids.remove(mid);
                    video_mids.remove(mid);
                    continue;
                };
                let participant = self.feeds.entry(feed).or_insert_with(|| {
                    let name = stream.feed_display.as_deref().and_then(display_name::clean);
                    let p = Participant::new(format!("feed_{feed}"), name.unwrap_or_else(|| format!("Feed {feed}")));
                    joined.push(p.clone());
                    p
                });
                self.requested.remove(&feed);
                mids.insert(mid.to_string(), participant.clone());
                if stream.kind == MediaKind::Video {
                    video_mids.insert(mid.to_string());
                } else {
                    video_mids.remove(mid);
                }
            }
        }
        let answer = peer
            .answer(offer)
            .await
            .map_err(|e| SessionEnd::Lost(format!("answering Janus: {e:#}")))?;
        let jsep = Jsep {
            kind: JsepKind::Answer,
            sdp: answer,
        };
        let jsep = serde_json::to_value(jsep).map_err(|e| SessionEnd::Lost(e.to_string()))?;
        self.api
            .message(session, handle, Request::Start, Some(jsep))
            .await
            .map_err(|e| SessionEnd::Lost(e.to_string()))?;
        let _ = self.api.trickle_complete(session, handle).await;
        for p in joined {
            tracing::info!(participant_id = %p.id, name = %p.name, "joined from the Janus room");
            let _ = self.tx.send(CallEvent::Joined(p)).await;
        }
        Ok(())
    }
}
