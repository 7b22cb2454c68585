//! The built-in room as a call source: its WHIP publishers join and leave as the room tells.

use super::participant::CallEvent;
use super::room::Rooms;
use super::source::{CallSource, CallTask};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Watches one room of this server.
pub struct RoomSource {
    pub rooms: Arc<Rooms>,
    pub room: String,
}

impl CallSource for RoomSource {
    fn name(&self) -> &'static str {
        "room"
    }

    fn follow(self: Box<Self>, task: CallTask) -> BoxFuture<'static, ()> {
        Box::pin(self.watch(task))
    }
}

impl RoomSource {
    /// Missed events (a lagging receiver) are repaired by comparing with the room's list.
    async fn watch(self: Box<Self>, task: CallTask) {
        let CallTask {
            events: tx, mut stop, ..
        } = task;
        let (current, mut events) = self.rooms.watch(&self.room);
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
                    let (current, _) = self.rooms.watch(&self.room);
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
    }
}
