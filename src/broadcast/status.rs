//! What the API shows about a broadcast: the snapshots its actor publishes (only the actor writes them).

use super::spec::{AudioSpec, VideoSpec};
use serde::{Deserialize, Serialize};

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

    /// States only move forward, and never out of a final one.
    pub fn may_become(self, next: BroadcastState) -> bool {
        next.rank() > self.rank()
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
    /// RTMP URL with its stream key redacted; SRT URL with its passphrase and stream id redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where HLS viewers load the playlist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playlist: Option<String>,
    /// A recording: the file being written (or last written), on the server's disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A recording: seconds of video in that file so far (final once `recording.ready` was sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// A recording: true once the file at `path` is finalised (index complete, at the front).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// A recording: how many of its files are finalised so far (more than one when it is split into parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
    /// A tracks output: files listed in its manifest (`path`) so far; `bytes` is their size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// A whep output: where viewers POST their WHEP offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whep: Option<String>,
    /// A whep output: viewers connected now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewers: Option<u32>,
    pub state: OutputState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub reconnects: u32,
    pub bytes: u64,
    /// While `reconnecting`: when the next attempt starts (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at_ms: Option<u64>,
    /// An output with `upload: true`: its uploads to object storage (they go on after the broadcast ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UploadStatus {
    /// Bytes stored since this server started.
    pub uploaded_bytes: u64,
    /// Files stored since this server started.
    pub uploaded_files: u64,
    /// Files waiting to be stored (queued on disk; retried while storage is down).
    pub pending: usize,
    /// Why the last attempt failed, while uploads are failing (cleared by the next success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// A recording: the local file stays after its upload.
    #[serde(default)]
    pub keep: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VideoSize {
    pub width: i32,
    pub height: i32,
}

/// An overlay on air, as the status lists it (its text or picture is not repeated here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OverlayShown {
    pub id: String,
    /// `text` or `image`.
    pub kind: String,
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
    /// `null` for an audio-only broadcast (nothing is drawn).
    #[schema(value_type = Object)]
    pub layout: serde_json::Value,
    /// `null` for an audio-only broadcast.
    pub video: Option<VideoSpec>,
    pub audio: AudioSpec,
    /// Anyone may watch (HLS, watch page, this status) without a token.
    pub public: bool,
    pub participants: Vec<ParticipantStatus>,
    /// Who holds the floor (active speaker), if anyone spoke yet.
    pub speaker: Option<String>,
    /// Overlays drawn over the picture now, in drawing order (later ones on top).
    #[serde(default)]
    pub overlays: Vec<OverlayShown>,
    pub outputs: Vec<OutputStatus>,
    /// Video frames encoded so far. This, `frames_dropped` and `fps_out` are absent for an audio-only broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_out: Option<u64>,
    /// Frames missing from the output's timeline (the mixer could not keep up), since the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_dropped: Option<u64>,
    /// Output frame rate over the last second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps_out: Option<f64>,
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

#[cfg(test)]
mod tests {
    use super::BroadcastState::*;

    #[test]
    fn states_only_move_forward() {
        assert!(Starting.may_become(Live));
        assert!(Live.may_become(Stopping));
        assert!(Starting.may_become(Failed));
        assert!(!Live.may_become(Starting));
        assert!(!Failed.may_become(Ended));
        assert!(!Ended.may_become(Failed));
        assert!(!Live.may_become(Live));
    }
}
