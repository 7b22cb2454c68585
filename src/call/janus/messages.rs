//! Janus' JSON as types: what the core and the VideoRoom plugin send us, and the VideoRoom requests a hidden
//! subscriber makes. Only the fields we use are named; unknown fields are ignored and unknown kinds of message
//! parse as `Other`, so a newer Janus does not break us. Room and feed ids are numbers (`string_ids` rooms are
//! not supported).

use serde::{Deserialize, Serialize};

/// One message from Janus: a reply to a request, or an event from the long-poll.
#[derive(Debug, Deserialize)]
#[serde(tag = "janus", rename_all = "lowercase")]
pub enum Message {
    /// A request succeeded: `data` for the core's (create, attach), `plugindata` for synchronous plugin ones.
    Success {
        data: Option<Created>,
        plugindata: Option<PluginData>,
    },
    /// An asynchronous plugin request was accepted; its result comes later as an `Event`.
    Ack,
    /// The core refused a request (e.g. 458: no such session).
    Error {
        error: CoreError,
    },
    /// A plugin event, with an SDP when the plugin (re)negotiates.
    Event {
        plugindata: Option<PluginData>,
        jsep: Option<Jsep>,
    },
    /// The PeerConnection is gone.
    Hangup {
        reason: Option<String>,
    },
    Keepalive,
    /// `webrtcup`, `media`, `slowlink`, `trickle`, `detached`, ... : nothing we act on.
    #[serde(other)]
    Other,
}

impl Message {
    /// The VideoRoom part of a plugin reply or event.
    pub fn videoroom(&self) -> Option<&VideoRoom> {
        match self {
            Message::Success {
                plugindata: Some(p), ..
            }
            | Message::Event {
                plugindata: Some(p), ..
            } => Some(&p.data),
            _ => None,
        }
    }
}

/// What `create` and `attach` return: the new session's or handle's id.
#[derive(Debug, Deserialize)]
pub struct Created {
    pub id: u64,
}

#[derive(Debug, Deserialize)]
pub struct CoreError {
    pub code: i64,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct PluginData {
    pub data: VideoRoom,
}

/// The VideoRoom plugin's answers and events, by their `videoroom` field.
#[derive(Debug, Deserialize)]
#[serde(tag = "videoroom", rename_all = "lowercase")]
pub enum VideoRoom {
    /// Our subscription started: the streams of Janus' first offer.
    Attached { streams: Vec<Stream> },
    /// The subscription changed (subscribe, unsubscribe, a feed went away): every stream, and an offer when
    /// the session must be renegotiated.
    Updated {
        #[serde(default)]
        streams: Vec<Stream>,
    },
    /// The room was destroyed.
    Destroyed,
    /// The reply to `listparticipants`.
    Participants { participants: Vec<ListedParticipant> },
    /// Anything else the plugin reports; its errors come as this kind too.
    Event {
        error_code: Option<i64>,
        error: Option<String>,
    },
    #[serde(other)]
    Other,
}

impl VideoRoom {
    /// `(error_code, error)` when the plugin refused a request.
    pub fn error(&self) -> Option<(i64, &str)> {
        match self {
            VideoRoom::Event {
                error_code: Some(code),
                error,
            } => Some((*code, error.as_deref().unwrap_or("unknown error"))),
            _ => None,
        }
    }
}

/// One m-line of our subscription: which feed Janus sends on `mid`.
#[derive(Debug, Deserialize)]
pub struct Stream {
    pub mid: Option<String>,
    #[serde(rename = "type")]
    pub kind: MediaKind,
    /// Absent on an inactive m-line (its feed left or was unsubscribed; Janus may reuse it).
    pub feed_id: Option<u64>,
    pub feed_display: Option<String>,
    #[serde(default = "active_unless_said")]
    pub active: bool,
}

fn active_unless_said() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
    Data,
    #[serde(other)]
    Other,
}

/// One entry of `listparticipants` (a hidden subscriber like us is never listed).
#[derive(Debug, Deserialize)]
pub struct ListedParticipant {
    pub id: u64,
    pub display: Option<String>,
    /// Only publishers have streams to subscribe to.
    #[serde(default)]
    pub publisher: bool,
}

/// An SDP offer or answer as Janus carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jsep {
    #[serde(rename = "type")]
    pub kind: JsepKind,
    pub sdp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsepKind {
    Offer,
    Answer,
    /// `pranswer`, `rollback`: not used by the VideoRoom.
    #[serde(other)]
    Other,
}

/// The VideoRoom requests of a hidden subscriber.
#[derive(Debug, Serialize)]
#[serde(tag = "request", rename_all = "lowercase")]
pub enum Request<'a> {
    ListParticipants {
        room: u64,
    },
    /// Joins as a subscriber to the first feeds.
    Join {
        ptype: &'static str,
        room: u64,
        streams: Vec<Feed>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pin: Option<&'a str>,
    },
    Subscribe {
        streams: Vec<Feed>,
    },
    Unsubscribe {
        streams: Vec<Feed>,
    },
    /// Goes with our answer to each offer.
    Start,
    /// Picks simulcast layers.
    Configure {
        streams: Vec<Substream>,
    },
}

/// A feed to (un)subscribe, all its streams.
#[derive(Debug, Serialize)]
pub struct Feed {
    pub feed: u64,
}

/// The simulcast layer wanted on one of our mids.
#[derive(Debug, Serialize)]
pub struct Substream {
    pub mid: String,
    pub substream: usize,
}

#[cfg(test)]
mod tests;
