//! WHEP servers as the call: each stream pulled is one participant, and a stream that drops (its connection
//! failed or closed, or no media for a while) leaves and is pulled again with a backoff, as a new participant. A
//! stream not there yet (a 404 before it goes live, a server down) is tried again the same way; the broadcast
//! never fails for it. With `room`, the participants of that built-in room join the same picture (a cascade
//! composited with people in the studio).

use super::participant::CallEvent;
use super::room::Rooms;
use super::room_source::RoomSource;
use super::source::{CallSource, CallTask};
use super::webrtc::IceConfig;
use super::whep_pull::{WhepPull, WhepStream};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// A pull with no media for this long is over (a stalled server, a dead path ICE did not notice yet, a server
/// that let the session go without a word). Sound alone comes every 20-60 ms.
const SILENCE: Duration = Duration::from_secs(5);
/// How often a pull is looked at.
const CHECK: Duration = Duration::from_millis(500);
const RETRY_START: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

pub struct WhepSource {
    pub streams: Vec<WhepStream>,
    /// A built-in room whose participants join too.
    pub room: Option<(Arc<Rooms>, String)>,
    pub ice: IceConfig,
    /// Jitter-buffer latency of each pull.
    pub latency_ms: u32,
}

impl CallSource for WhepSource {
    fn name(&self) -> &'static str {
        "whep"
    }

    fn follow(self: Box<Self>, task: CallTask) -> BoxFuture<'static, ()> {
        Box::pin(self.follow_all(task))
    }
}

impl WhepSource {
    async fn follow_all(self: Box<Self>, task: CallTask) {
        let CallTask {
            events,
            mut stop,
            tile_widths,
        } = task;
        let mut tasks = Vec::new();
        for (index, stream) in self.streams.into_iter().enumerate() {
            let pull = pull_again_and_again(stream, self.ice.clone(), self.latency_ms, events.clone(), stop.clone());
            let span = tracing::info_span!("whep_stream", index);
            tasks.push(tokio::spawn(pull.instrument(span)));
        }
        if let Some((rooms, room)) = self.room {
            let source = Box::new(RoomSource { rooms, room });
            tasks.push(tokio::spawn(
                source
                    .follow(CallTask {
                        events,
                        stop: stop.clone(),
                        tile_widths: tile_widths.clone(),
                    })
                    .in_current_span(),
            ));
        }
        let _ = stop.wait_for(|stopped| *stopped).await;
        // Each task leaves on the same signal (DELETEs bounded by a second): wait for them.
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Pulls `stream` until stopped: connect, announce the participant, watch it, and on its end announce the leave
/// and connect again after a backoff (reset by each pull that got media).
async fn pull_again_and_again(
    stream: WhepStream,
    ice: IceConfig,
    latency_ms: u32,
    events: mpsc::Sender<CallEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = RETRY_START;
    loop {
        let id = crate::ids::new_id("p");
        let connected = tokio::select! {
            pull = WhepPull::connect(&stream, id, &ice, latency_ms) => pull,
            _ = stop.wait_for(|s| *s) => return,
        };
        match connected {
            Ok(pull) => {
                let id = pull.participant.id.clone();
                tracing::info!(participant_id = %id, name = %stream.name, "WHEP stream pulled");
                if events.send(CallEvent::Joined(pull.participant.clone())).await.is_err() {
                    pull.leave().await;
                    return;
                }
                let ended = watch_pull(&pull, &mut stop).await;
                let had_media = pull.participant.last_media_ms() > 0;
                let _ = events.send(CallEvent::Left(id.clone())).await;
                pull.leave().await;
                match ended {
                    None => return,
                    Some(why) => tracing::warn!(participant_id = %id, "WHEP stream dropped ({why}): pulling it again"),
                }
                if had_media {
                    backoff = RETRY_START;
                }
            }
            Err(e) => {
                tracing::warn!(name = %stream.name, "cannot pull a WHEP stream (trying again in {backoff:?}): {e:#}")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

/// Waits until the pull is over (Some(why)) or the broadcast stops (None).
async fn watch_pull(pull: &WhepPull, stop: &mut watch::Receiver<bool>) -> Option<String> {
    let mut tick = tokio::time::interval(CHECK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(why) = pull.gone(SILENCE) {
                    return Some(why);
                }
            }
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
}
