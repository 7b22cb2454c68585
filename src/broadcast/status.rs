//! What the API shows about a broadcast. One `SharedStatus` per broadcast, written by its actor and outputs.

use super::spec::{AudioSpec, VideoSpec};
use crate::events::EventBus;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Broadcast states only move forward: starting -> live -> stopping -> ended, or to failed from any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastState {
    Starting,
    Live,
    Stopping,
    Ended,
    Failed,
}

impl BroadcastState {
    fn rank(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::Live => 1,
            Self::Stopping => 2,
            Self::Ended | Self::Failed => 3,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() == 3
    }
}

/// What made a broadcast fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The call could not be joined or was lost for good.
    Source,
    /// Every output gave up (`max_reconnect_s`).
    Outputs,
    /// The media pipeline itself.
    Pipeline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputState {
    Starting,
    Live,
    Reconnecting,
    Failed,
    Ended,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutputStatus {
    pub id: String,
    pub kind: String,
    /// RTMP URL with its stream key redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where HLS viewers load the playlist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playlist: Option<String>,
    pub state: OutputState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub reconnects: u32,
    pub bytes: u64,
    /// While `reconnecting`: when the next attempt starts (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParticipantStatus {
    pub id: String,
    pub name: String,
    pub on_screen: bool,
    pub speaking: bool,
    /// Size of the participant's decoded picture (absent until video arrives, or without video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoSize>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timeline {
    pub media_s: f64,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VideoSize {
    pub width: i32,
    pub height: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BroadcastStatus {
    pub id: String,
    pub state: BroadcastState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a failed broadcast: what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    #[schema(value_type = Object)]
    pub layout: serde_json::Value,
    pub video: VideoSpec,
    pub audio: AudioSpec,
    /// Anyone may watch (HLS, watch page, this status) without a token.
    pub public: bool,
    pub participants: Vec<ParticipantStatus>,
    /// Who holds the floor (active speaker), if anyone spoke yet.
    pub speaker: Option<String>,
    pub outputs: Vec<OutputStatus>,
    /// Video frames encoded so far.
    #[serde(default)]
    pub frames_out: u64,
    /// Frames missing from the output's timeline (the mixer could not keep up), since the start.
    #[serde(default)]
    pub frames_dropped: u64,
    /// Output frame rate over the last second.
    #[serde(default)]
    pub fps_out: f64,
    /// The participant whose own H.264 is on air as they send it (zero-transcode); absent while composited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<String>,
    /// The outputs' timeline: the latest video timestamp (s) and the wall-clock time it was sent at (ms since
    /// the epoch). Over a long show both advance alike: a difference is timestamp drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<u64>,
}

/// A broadcast's status, shared by its actor, outputs and the API. With a record file, every state change is
/// written there too, so a server restarted after a crash knows what it was running. With an event bus, every
/// change that matters to someone watching is published.
#[derive(Clone)]
pub struct SharedStatus {
    inner: Arc<Mutex<BroadcastStatus>>,
    record: Option<Arc<PathBuf>>,
    events: Option<EventBus>,
}

impl SharedStatus {
    pub fn new(status: BroadcastStatus) -> Self {
        Self {
            inner: Arc::new(Mutex::new(status)),
            record: None,
            events: None,
        }
    }

    /// Keeps `record` (a JSON file) up to date with every state change, starting now.
    pub fn recorded(status: BroadcastStatus, record: PathBuf) -> Self {
        let shared = Self {
            record: Some(Arc::new(record)),
            ..Self::new(status)
        };
        shared.save(&shared.inner.lock().unwrap());
        shared
    }

    /// Publishes changes on `events` from now on, starting with `broadcast.started`.
    pub fn with_events(mut self, events: EventBus) -> Self {
        let id = self.inner.lock().unwrap().id.clone();
        events.publish("broadcast.started", &id, serde_json::json!({}));
        self.events = Some(events);
        self
    }

    fn save(&self, status: &BroadcastStatus) {
        let Some(path) = &self.record else { return };
        if let Err(e) = super::record::write(path, status) {
            tracing::warn!("cannot record the broadcast's state in {}: {e}", path.display());
        }
    }

    fn publish(&self, id: &str, changes: Vec<(String, serde_json::Value)>) {
        if let Some(events) = &self.events {
            for (kind, data) in changes {
                events.publish(&kind, id, data);
            }
        }
    }

    pub fn snapshot(&self) -> BroadcastStatus {
        self.inner.lock().unwrap().clone()
    }

    pub fn state(&self) -> BroadcastState {
        self.inner.lock().unwrap().state
    }

    /// Moves the state forward; a move backwards (or out of a final state) is ignored.
    pub fn advance(&self, state: BroadcastState, reason: Option<String>) {
        let mut s = self.inner.lock().unwrap();
        if state.rank() <= s.state.rank() {
            return;
        }
        s.state = state;
        if reason.is_some() {
            s.reason = reason;
        }
        let now = crate::wall_clock::now_ms();
        match state {
            BroadcastState::Live => s.live_at_ms = Some(now),
            BroadcastState::Ended | BroadcastState::Failed => s.ended_at_ms = Some(now),
            _ => {}
        }
        self.save(&s);
        let (id, reason) = (s.id.clone(), s.reason.clone());
        drop(s);
        let kind = match state {
            BroadcastState::Live => "broadcast.live",
            BroadcastState::Ended => "broadcast.ended",
            BroadcastState::Failed => "broadcast.failed",
            _ => return,
        };
        self.publish(&id, vec![(kind.into(), serde_json::json!({ "reason": reason }))]);
    }

    pub fn set_scene(&self, participants: Vec<ParticipantStatus>, speaker: Option<String>, layout: serde_json::Value) {
        let mut s = self.inner.lock().unwrap();
        let changes = super::status_events::scene_changes(&s, &participants, speaker.as_deref());
        s.participants = participants;
        s.speaker = speaker;
        s.layout = layout;
        let id = s.id.clone();
        drop(s);
        self.publish(&id, changes);
    }

    pub fn set_passthrough(&self, participant: Option<String>) {
        self.inner.lock().unwrap().passthrough = participant;
    }

    /// Fails the broadcast, saying what failed.
    pub fn fail(&self, what: Failure, reason: String) {
        {
            let mut s = self.inner.lock().unwrap();
            if s.state.is_final() {
                return;
            }
            s.failure = Some(what);
        }
        self.advance(BroadcastState::Failed, Some(reason));
    }

    /// True when the broadcast has outputs and every one of them gave up.
    pub fn every_output_failed(&self) -> bool {
        let s = self.inner.lock().unwrap();
        !s.outputs.is_empty() && s.outputs.iter().all(|o| o.state == OutputState::Failed)
    }

    pub fn set_frames(&self, frames_out: u64, frames_dropped: u64, fps_out: f64, timeline: Option<(f64, u64)>) {
        let mut s = self.inner.lock().unwrap();
        s.timeline = timeline.map(|(media_s, at_ms)| Timeline { media_s, at_ms });
        s.frames_out = frames_out;
        s.frames_dropped = frames_dropped;
        s.fps_out = (fps_out * 10.0).round() / 10.0;
    }

    pub fn add_output(&self, output: OutputStatus) {
        self.inner.lock().unwrap().outputs.push(output);
    }

    pub fn update_output(&self, id: &str, f: impl FnOnce(&mut OutputStatus)) {
        let mut s = self.inner.lock().unwrap();
        let Some(out) = s.outputs.iter_mut().find(|o| o.id == id) else {
            return;
        };
        let before = out.state;
        f(out);
        let change = super::status_events::output_change(before, out);
        let broadcast_id = s.id.clone();
        drop(s);
        self.publish(&broadcast_id, change.into_iter().collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> SharedStatus {
        SharedStatus::new(BroadcastStatus {
            id: "bc".into(),
            state: BroadcastState::Starting,
            reason: None,
            failure: None,
            source: serde_json::Value::Null,
            layout: serde_json::Value::Null,
            video: VideoSpec {
                width: 2,
                height: 2,
                fps: 1,
                bitrate_kbps: 1,
                keyframe_interval_s: 1,
                preset: Default::default(),
                passthrough: true,
            },
            audio: AudioSpec { bitrate_kbps: 1 },
            public: false,
            participants: vec![],
            speaker: None,
            outputs: vec![],
            frames_out: 0,
            frames_dropped: 0,
            fps_out: 0.0,
            passthrough: None,
            timeline: None,
            created_at_ms: 0,
            live_at_ms: None,
            ended_at_ms: None,
        })
    }

    #[test]
    fn state_only_moves_forward() {
        let s = status();
        s.advance(BroadcastState::Live, None);
        s.advance(BroadcastState::Starting, None);
        assert_eq!(s.state(), BroadcastState::Live);
        s.advance(BroadcastState::Failed, Some("boom".into()));
        s.advance(BroadcastState::Ended, Some("later".into()));
        assert_eq!(s.state(), BroadcastState::Failed);
        assert_eq!(s.snapshot().reason.as_deref(), Some("boom"));
    }
}
