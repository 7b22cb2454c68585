//! Joins the call a broadcast watches and turns it into one stream of `CallEvent`s, whatever the call is.

use super::participant::CallEvent;
use super::room::Rooms;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// How long a call gets to leave cleanly (e.g. detach from the SFU) when the broadcast ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A joined call: its events, and the task that follows it.
pub struct CallHandle {
    pub events: mpsc::Receiver<CallEvent>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CallHandle {
    /// Spawns `follow(events_tx, stop_rx)` as the task that follows the call.
    pub fn spawn<F, Fut>(follow: F) -> Self
    where
        F: FnOnce(mpsc::Sender<CallEvent>, watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, events) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(follow(tx, stop_rx));
        Self { events, stop, task }
    }

    /// Leaves the call and waits (bounded) for the task to finish.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(CLOSE_TIMEOUT, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Watches a built-in room. Missed events (a lagging receiver) are repaired by comparing with the room's list.
pub fn watch_room(rooms: Arc<Rooms>, room: String) -> CallHandle {
    CallHandle::spawn(move |tx, mut stop| async move {
        let (current, mut events) = rooms.watch(&room);
        let mut known: HashSet<String> = HashSet::new();
        for participant in current {
            known.insert(participant.id.clone());
            if tx.send(CallEvent::Joined(participant)).await.is_err() {
                return;
            }
        }
        loop {
            let event = tokio::select! {
                _ = stop.changed() => return,
                event = events.recv() => event,
            };
            let out: Vec<CallEvent> = match event {
                Ok(event) => vec![event],
                Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (current, _) = rooms.watch(&room);
                    let ids: HashSet<String> = current.iter().map(|p| p.id.clone()).collect();
                    let mut repair: Vec<CallEvent> =
                        known.difference(&ids).map(|id| CallEvent::Left(id.clone())).collect();
                    repair.extend(current.into_iter().map(CallEvent::Joined));
                    repair
                }
            };
            for event in out {
                match &event {
                    CallEvent::Joined(p) => {
                        known.insert(p.id.clone());
                    }
                    CallEvent::Left(id) => {
                        known.remove(id);
                    }
                    _ => {}
                }
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    })
}
