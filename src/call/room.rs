//! The built-in call: rooms of publishers (WHIP, or plain RTP from an SFU's forwarder). Broadcasts watch a room;
//! they never appear in it.

use super::leg::{Leg, LegGone};
use super::participant::{CallEvent, Participant};
use super::pending_joins::{PendingFull, PendingJoins, PendingLimits, PendingTicket};
use super::rtp_leg::{Receiving, RtpJoinError, RtpLeg, TrackPorts, Transport};
use super::rtp_ports::{PortRange, RtpPorts};
use super::rtp_track::RtpTrack;
use super::trickle::Fragment;
use super::webrtc::IceConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub ice: IceConfig,
    /// Jitter-buffer latency of every participant's connection.
    pub latency_ms: u32,
    /// A participant with no media for this long has left (crashed, network gone).
    pub media_timeout: Duration,
    /// Most joins waiting to connect (answered, no media yet).
    pub pending: PendingLimits,
    /// Where plain RTP participants are received: the address and the ports (`rtp_port_range`).
    pub rtp_address: String,
    pub rtp_ports: PortRange,
}

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Too many joins are waiting to connect; worth retrying later.
    #[error(transparent)]
    Busy(#[from] PendingFull),
    #[error("cannot answer the offer: {0:#}")]
    Failed(#[from] anyhow::Error),
}

/// How a participant reaches the room.
enum Connection {
    Whip(Arc<Leg>),
    Rtp(Arc<RtpLeg>),
}

/// Which kind of connection a request means (a WHIP `DELETE` does not end an RTP participant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Whip,
    Rtp,
}

impl Connection {
    fn participant(&self) -> &Arc<Participant> {
        match self {
            Self::Whip(leg) => &leg.participant,
            Self::Rtp(leg) => &leg.participant,
        }
    }

    fn silent_for_ms(&self) -> u64 {
        match self {
            Self::Whip(leg) => leg.silent_for_ms(),
            Self::Rtp(leg) => leg.silent_for_ms(),
        }
    }

    fn via(&self) -> Via {
        match self {
            Self::Whip(_) => Via::Whip,
            Self::Rtp(_) => Via::Rtp,
        }
    }
}

/// A participant's connection, with (WHIP) its place among the joins waiting to connect (held until it goes).
struct Member {
    connection: Connection,
    _pending: Option<PendingTicket>,
}

impl Member {
    fn participant(&self) -> &Arc<Participant> {
        self.connection.participant()
    }
}

/// A plain RTP participant that joined: where to send each track.
#[derive(Debug, Clone)]
pub struct RtpJoined {
    pub id: String,
    pub address: String,
    pub tracks: Vec<TrackPorts>,
}

/// A participant that joined: its id, our SDP answer and the session's entity tag.
#[derive(Debug, Clone)]
pub struct Joined {
    pub id: String,
    pub answer: String,
    pub etag: String,
}

pub use super::trickle::{Patched, TrickleRefusal};

struct Room {
    participants: Vec<Member>,
    events: broadcast::Sender<CallEvent>,
}

impl Room {
    fn new() -> Self {
        Self {
            participants: Vec::new(),
            events: broadcast::channel(64).0,
        }
    }
}

/// Every room of this server.
pub struct Rooms {
    settings: RoomSettings,
    rooms: Mutex<HashMap<String, Room>>,
    pending: PendingJoins,
    rtp_ports: RtpPorts,
    gone_tx: mpsc::UnboundedSender<LegGone>,
}

impl Rooms {
    /// Creates the registry and its background tasks (failure reports and the media watchdog).
    pub fn start(settings: RoomSettings) -> Arc<Self> {
        let (gone_tx, mut gone_rx) = mpsc::unbounded_channel::<LegGone>();
        let rooms = Arc::new(Self {
            pending: PendingJoins::new(settings.pending),
            rtp_ports: RtpPorts::new(settings.rtp_ports),
            settings,
            rooms: Mutex::new(HashMap::new()),
            gone_tx,
        });
        let weak = Arc::downgrade(&rooms);
        tokio::spawn(async move {
            while let Some(gone) = gone_rx.recv().await {
                let Some(rooms) = weak.upgrade() else { break };
                tracing::info!(participant_id = %gone.id, "participant gone: {}", gone.reason);
                rooms.remove_participant(&gone.id);
            }
        });
        let weak = Arc::downgrade(&rooms);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let Some(rooms) = weak.upgrade() else { break };
                rooms.expire_silent();
            }
        });
        rooms
    }

    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    /// Adds a publisher to `room` from its WHIP offer; returns its id and the SDP answer. `origin` is the
    /// client's address, for the per-address limit of joins waiting to connect (None: not known).
    pub async fn join(
        &self,
        room: &str,
        origin: Option<IpAddr>,
        name: Option<String>,
        offer: &str,
    ) -> Result<Joined, JoinError> {
        // Before any pipeline exists: a refused join costs nothing.
        let ticket = self.pending.admit(room, origin)?;
        let id = crate::ids::new_id("p");
        let name = name.unwrap_or_else(|| format!("Guest {}", &id[2..6]));
        let leg = Leg::new(
            id.clone(),
            name,
            &self.settings.ice,
            self.settings.latency_ms,
            self.gone_tx.clone(),
        )?;
        let answer = leg.answer(offer).await?;
        let participant = leg.participant.clone();
        ticket.answered(move || participant.last_media_ms() > 0);
        let leg = Arc::new(leg);
        let mut rooms = self.rooms.lock().unwrap();
        let entry = rooms.entry(room.to_string()).or_insert_with(Room::new);
        let etag = leg.etag();
        entry.participants.push(Member {
            connection: Connection::Whip(leg.clone()),
            _pending: Some(ticket),
        });
        let _ = entry.events.send(CallEvent::Joined(leg.participant.clone()));
        tracing::info!(room, participant_id = %id, "participant joined");
        Ok(Joined { id, answer, etag })
    }

    /// Adds a plain RTP participant to `room`: binds a pair of ports per track, returns where to send them.
    /// `transport`: where the packets must come from, SRTP keys, rtcp-mux, as the request says.
    pub fn join_rtp(
        &self,
        room: &str,
        name: Option<String>,
        tracks: &[RtpTrack],
        transport: &Transport,
    ) -> Result<RtpJoined, RtpJoinError> {
        let id = crate::ids::new_id("p");
        let name = name.unwrap_or_else(|| format!("Guest {}", &id[2..6]));
        let leg = Arc::new(RtpLeg::new(
            id.clone(),
            name,
            &Receiving {
                address: &self.settings.rtp_address,
                ports: &self.rtp_ports,
                latency_ms: self.settings.latency_ms,
            },
            tracks,
            transport,
            self.gone_tx.clone(),
        )?);
        let joined = RtpJoined {
            id: id.clone(),
            address: self.settings.rtp_address.clone(),
            tracks: leg.tracks.clone(),
        };
        let mut rooms = self.rooms.lock().unwrap();
        let entry = rooms.entry(room.to_string()).or_insert_with(Room::new);
        entry.participants.push(Member {
            connection: Connection::Rtp(leg.clone()),
            _pending: None,
        });
        let _ = entry.events.send(CallEvent::Joined(leg.participant.clone()));
        tracing::info!(room, participant_id = %id, "RTP participant joined");
        Ok(joined)
    }

    /// A PATCH to a participant of `room` (`if_match` is the request's `If-Match`): candidates it trickled after
    /// its offer, or an ICE restart, after which the session has a new ETag (the session checks both under its own
    /// lock). The rooms' lock is not held while the session's webrtcbin is asked (it takes webrtcbin's own lock):
    /// every room's joins would wait on it.
    pub fn patch(
        &self,
        room: &str,
        id: &str,
        if_match: Option<&str>,
        fragment: &Fragment,
    ) -> Result<Patched, TrickleRefusal> {
        let leg = {
            let rooms = self.rooms.lock().unwrap();
            let member = rooms
                .get(room)
                .and_then(|r| r.participants.iter().find(|m| m.participant().id == id))
                .ok_or(TrickleRefusal::NotFound)?;
            let Connection::Whip(leg) = &member.connection else {
                return Err(TrickleRefusal::NotFound);
            };
            leg.clone()
        };
        leg.patch(if_match, fragment)
    }

    /// Removes a participant that joined `via` from `room`; false if it is not there.
    pub fn leave(&self, room: &str, id: &str, via: Via) -> bool {
        let mut rooms = self.rooms.lock().unwrap();
        let Some(entry) = rooms.get_mut(room) else {
            return false;
        };
        if !entry
            .participants
            .iter()
            .any(|m| m.participant().id == id && m.connection.via() == via)
        {
            return false;
        }
        Self::remove_from(entry, id)
    }

    fn remove_participant(&self, id: &str) {
        let mut rooms = self.rooms.lock().unwrap();
        for entry in rooms.values_mut() {
            if Self::remove_from(entry, id) {
                return;
            }
        }
    }

    fn remove_from(room: &mut Room, id: &str) -> bool {
        let before = room.participants.len();
        room.participants.retain(|m| m.participant().id != id);
        let removed = room.participants.len() != before;
        if removed {
            let _ = room.events.send(CallEvent::Left(id.to_string()));
        }
        removed
    }

    fn expire_silent(&self) {
        let limit = self.settings.media_timeout.as_millis() as u64;
        let silent: Vec<String> = {
            let rooms = self.rooms.lock().unwrap();
            rooms
                .values()
                .flat_map(|r| r.participants.iter())
                .filter(|m| m.connection.silent_for_ms() > limit)
                .map(|m| m.participant().id.clone())
                .collect()
        };
        for id in silent {
            tracing::info!(participant_id = %id, "no media for {limit} ms: removing participant");
            self.remove_participant(&id);
        }
    }

    /// The participants of `room` now, and every change from here on. Creates the room if needed, so a
    /// broadcast can wait for its first participant.
    pub fn watch(&self, room: &str) -> (Vec<Arc<Participant>>, broadcast::Receiver<CallEvent>) {
        let mut rooms = self.rooms.lock().unwrap();
        let entry = rooms.entry(room.to_string()).or_insert_with(Room::new);
        let participants = entry.participants.iter().map(|m| m.participant().clone()).collect();
        (participants, entry.events.subscribe())
    }

    /// The name of participant `id` of `room` if it joined `via` (a WHIP resource never answers for an RTP one).
    pub fn name_of(&self, room: &str, id: &str, via: Via) -> Option<String> {
        let rooms = self.rooms.lock().unwrap();
        rooms
            .get(room)?
            .participants
            .iter()
            .find(|m| m.participant().id == id && m.connection.via() == via)
            .map(|m| m.participant().name.clone())
    }

    /// `(id, name)` of each participant in join order.
    pub fn participants(&self, room: &str) -> Vec<(String, String)> {
        let rooms = self.rooms.lock().unwrap();
        rooms
            .get(room)
            .map(|r| {
                r.participants
                    .iter()
                    .map(|m| (m.participant().id.clone(), m.participant().name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}
