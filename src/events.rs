//! What happens to broadcasts, as JSON events, for `GET /v1/events` (SSE) and webhooks. Publishing never
//! blocks: a subscriber that falls behind loses the oldest events, it never holds up a broadcast.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for subscribers that are momentarily behind.
const BACKLOG: usize = 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Increasing per server run; webhook receivers use it to drop duplicates.
    pub id: u64,
    /// `broadcast.started|live|ended|failed`, `output.reconnecting|live|failed|ended`,
    /// `participant.joined|left`, `speaker.changed`, `recording.ready` (a recording's file finalised: its
    /// `output_id`, `path`, `bytes`, `duration_s`), `tracks.ready` (a participant's appearance finalised by a
    /// tracks output: `output_id`, `participant_id`, `name`, `appearance`, `files`), `tracks.failed` (a tracks
    /// output could not write one file, the others go on: `output_id`, `participant_id`, `name`, `file`, `error`),
    /// `upload.done` (a file stored:
    /// `output_id`, `key`, `bytes`), `upload.failed` (an attempt failed: `output_id`, `key`, `error`,
    /// `retry_in_ms`, null once given up).
    pub kind: String,
    pub at_ms: u64,
    pub broadcast_id: String,
    pub data: serde_json::Value,
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    next_id: Arc<AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl EventBus {
    pub fn publish(&self, kind: &str, broadcast_id: &str, data: serde_json::Value) {
        let event = Event {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            kind: kind.to_string(),
            at_ms: crate::wall_clock::now_ms(),
            broadcast_id: broadcast_id.to_string(),
            data,
        };
        tracing::debug!(kind = %event.kind, broadcast_id, "event");
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
