//! Which call a broadcast joins: its spec's source, as a call-layer source to follow.

use super::spec::Source;
use crate::call::janus::JanusSource;
use crate::call::room::Rooms;
use crate::call::room_source::RoomSource;
use crate::call::source::{CallHandle, CallSource};
use crate::call::whep_source::WhepSource;
use std::sync::Arc;

pub fn join(source: &Source, rooms: &Arc<Rooms>) -> CallHandle {
    let settings = rooms.settings();
    let source: Box<dyn CallSource> = match source {
        Source::Room(room) => Box::new(RoomSource {
            rooms: rooms.clone(),
            room: room.clone(),
        }),
        Source::Janus(target) => Box::new(JanusSource {
            target: target.clone(),
            ice: settings.ice.clone(),
            latency_ms: settings.latency_ms,
        }),
        Source::Whep { streams, room } => Box::new(WhepSource {
            streams: streams.clone(),
            room: room.as_ref().map(|room| (rooms.clone(), room.clone())),
            ice: settings.ice.clone(),
            latency_ms: settings.latency_ms,
        }),
    };
    CallHandle::join(source)
}
