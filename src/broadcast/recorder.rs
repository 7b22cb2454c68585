//! Turns a broadcast's status changes into events (SSE, webhooks) and its record on disk, on a thread of its
//! own: a slow disk (fsync) never holds up the actor, the API or the media path, and no lock is held meanwhile.

use super::status::{BroadcastState, BroadcastStatus, OutputState};
use crate::events::EventBus;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// One change of a broadcast's status: the status after it, and the events it makes.
pub struct Change {
    pub snapshot: BroadcastStatus,
    pub events: Vec<(String, Value)>,
}

/// The sending end; `close` waits until everything sent was published and written.
pub struct Recorder {
    tx: mpsc::Sender<Change>,
    done: oneshot::Receiver<()>,
}

impl Recorder {
    /// `record`: the broadcast's record file (None: not recorded, e.g. its folder could not be made).
    pub fn spawn(record: Option<PathBuf>, events: EventBus) -> Self {
        let (tx, rx) = mpsc::channel::<Change>();
        let (done_tx, done) = oneshot::channel();
        // Its log lines belong to the broadcast too.
        let span = tracing::Span::current();
        let run = move || {
            let _span = span.enter();
            // What the record on disk says now: written again only when a state in it changes.
            let mut written: Option<(BroadcastState, Vec<OutputState>)> = None;
            for change in rx {
                for (kind, data) in change.events {
                    events.publish(&kind, &change.snapshot.id, data);
                }
                let Some(path) = &record else { continue };
                let states = (
                    change.snapshot.state,
                    change.snapshot.outputs.iter().map(|o| o.state).collect(),
                );
                if written.as_ref() != Some(&states) {
                    if let Err(e) = super::record::write(path, &change.snapshot) {
                        tracing::warn!("cannot record the broadcast's state in {}: {e}", path.display());
                    }
                    written = Some(states);
                }
            }
            let _ = done_tx.send(());
        };
        if let Err(e) = std::thread::Builder::new().name("recorder".into()).spawn(run) {
            tracing::error!("cannot start the broadcast's recorder: {e}");
        }
        Self { tx, done }
    }

    pub fn send(&self, change: Change) {
        let _ = self.tx.send(change);
    }

    /// Waits until every change sent so far is published and on disk.
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.done.await;
    }
}
