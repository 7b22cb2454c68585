//! Which call a broadcast joins: its spec's source, followed by the call layer.

use super::spec::Source;
use crate::call::room::Rooms;
use crate::call::source::{watch_room, CallHandle};
use std::sync::Arc;

pub fn join(source: &Source, rooms: &Arc<Rooms>) -> CallHandle {
    match source {
        Source::Room(room) => watch_room(rooms.clone(), room.clone()),
        Source::Janus(target) => {
            let settings = rooms.settings();
            crate::call::janus::follow(target.clone(), settings.ice.clone(), settings.latency_ms)
        }
    }
}
