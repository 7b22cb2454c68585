//! Joins the call a broadcast watches and turns it into one stream of `CallEvent`s, whatever the call is.

use super::participant::CallEvent;
use super::room::Rooms;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// How long a call gets to leave cleanly (e.g. detach from the SFU) when the broadcast ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Tile width on screen per participant id (absent: not on screen). A call that can send smaller pictures
/// (simulcast) uses it to send no more pixels than the tile shows.
pub type TileWidths = HashMap<String, i32>;

/// A joined call: its events, and the task that follows it.
pub struct CallHandle {
    pub events: mpsc::Receiver<CallEvent>,
    stop: watch::Sender<bool>,
    tile_widths: watch::Sender<TileWidths>,
    task: tokio::task::JoinHandle<()>,
}

/// What the task following a call gets.
pub struct CallTask {
    pub events: mpsc::Sender<CallEvent>,
    pub stop: watch::Receiver<bool>,
    pub tile_widths: watch::Receiver<TileWidths>,
}

impl CallHandle {
    /// Spawns `follow(task)` as the task that follows the call.
    pub fn spawn<F, Fut>(follow: F) -> Self
    where
        F: FnOnce(CallTask) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, events) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let (tile_widths, widths_rx) = watch::channel(TileWidths::new());
        let task = tokio::spawn(follow(CallTask {
            events: tx,
            stop: stop_rx,
            tile_widths: widths_rx,
        }));
        Self {
            events,
            stop,
            tile_widths,
            task,
        }
    }

    /// Tells the call how large each participant is drawn (only when it changed).
    pub fn set_tile_widths(&self, widths: TileWidths) {
        self.tile_widths.send_if_modified(|current| {
            let changed = *current != widths;
            *current = widths;
            changed
        });
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
    CallHandle::spawn(move |task| async move {
        let CallTask {
            events: tx, mut stop, ..
        } = task;
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
