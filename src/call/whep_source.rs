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
/// How long an answered pull may take to connect (ICE, DTLS) before it counts as failed. Its participant joins
/// only once connected: a path that never connects (UDP blocked) must not add and drop a tile again and again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
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
        // One client for every request (it loads the system's root certificates once).
        let client = reqwest::Client::new();
        for (index, stream) in self.streams.into_iter().enumerate() {
            let pull = Pull {
                index,
                stream,
                ice: self.ice.clone(),
                latency_ms: self.latency_ms,
                client: client.clone(),
            };
            let pull = pull.again_and_again(events.clone(), stop.clone());
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

/// One stream and what pulling it takes.
struct Pull {
    /// Its place in the source's list (the status's `source.streams[index]`).
    index: usize,
    stream: WhepStream,
    ice: IceConfig,
    latency_ms: u32,
    client: reqwest::Client,
}

impl Pull {
    /// Pulls the stream until stopped: connect, announce the participant once connected, watch it, and on its end
    /// announce the leave and connect again after a backoff (reset by each pull that got media).
    async fn again_and_again(self, events: mpsc::Sender<CallEvent>, mut stop: watch::Receiver<bool>) {
        let mut backoff = RETRY_START;
        // What the broadcast was last told of this stream: told again only when it changes.
        let mut told: Option<(&'static str, Option<String>)> = None;
        let mut tell = |state: &'static str, error: Option<String>| {
            let now = Some((state, error.clone()));
            if told == now {
                return None;
            }
            told = now;
            Some(CallEvent::Stream {
                index: self.index,
                state,
                error,
            })
        };
        loop {
            // Stopped mid-connect: the pull, if made, is dropped (and stopped off the async threads).
            let connected = tokio::select! {
                pull = self.connect() => pull,
                _ = stop.wait_for(|s| *s) => return,
            };
            match connected {
                Ok(mut pull) => {
                    let id = pull.participant.id.clone();
                    tracing::info!(participant_id = %id, name = %self.stream.name, "WHEP stream pulled");
                    if let Some(event) = tell("pulling", None) {
                        let _ = events.send(event).await;
                    }
                    if events.send(CallEvent::Joined(pull.participant.clone())).await.is_err() {
                        pull.leave().await;
                        return;
                    }
                    let ended = watch_pull(&pull, &mut stop).await;
                    let had_media = pull.participant.last_media_ms() > 0;
                    let _ = events.send(CallEvent::Left(id.clone())).await;
                    pull.leave().await;
                    let Some(why) = ended else { return };
                    tracing::warn!(participant_id = %id, "WHEP stream dropped ({why}): pulling it again");
                    if let Some(event) = tell("retrying", Some(format!("dropped: {why}"))) {
                        let _ = events.send(event).await;
                    }
                    if had_media {
                        backoff = RETRY_START;
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        name = %self.stream.name,
                        "cannot pull a WHEP stream (trying again in {backoff:?}): {e:#}"
                    );
                    if let Some(event) = tell("retrying", Some(format!("{e:#}"))) {
                        let _ = events.send(event).await;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }

    /// A pull answered and connected (bounded by `CONNECT_TIMEOUT`); one that is not is ended.
    async fn connect(&self) -> anyhow::Result<WhepPull> {
        let id = crate::ids::new_id("p");
        let mut pull = WhepPull::connect(&self.stream, id, &self.ice, self.latency_ms, &self.client).await?;
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        while !pull.connected() {
            let why = pull
                .gone(CONNECT_TIMEOUT)
                .or_else(|| (tokio::time::Instant::now() >= deadline).then(|| "no connection".to_string()));
            if let Some(why) = why {
                pull.leave().await;
                anyhow::bail!("not connected within {CONNECT_TIMEOUT:?}: {why}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(pull)
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
