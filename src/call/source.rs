//! Joins the call a broadcast watches and turns it into one stream of `CallEvent`s, whatever the call is. Each
//! kind of call (the built-in room, Janus, ...) is a `CallSource`; the broadcast only sees a `CallHandle`.

use super::participant::CallEvent;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// How long a call gets to leave cleanly (e.g. detach from the SFU) when the broadcast ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Tile width on screen per participant id (absent: not on screen). A call that can send smaller pictures
/// (simulcast) uses it to send no more pixels than the tile shows.
pub type TileWidths = HashMap<String, i32>;

/// A kind of call a broadcast can watch. Following it means: send `Joined`/`Left` as participants come and go
/// (each with its decoded taps), `Ended` or `Failed` when the call is over, and return once `task.stop` turns
/// true (cleanly, e.g. leaving the SFU: `CallHandle::close` waits a moment for it).
pub trait CallSource: Send {
    /// What kind of call this is, for logs.
    fn name(&self) -> &'static str;
    /// Follows the call until told to stop.
    fn follow(self: Box<Self>, task: CallTask) -> BoxFuture<'static, ()>;
}

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
    /// Starts following `source` in the caller's span (a broadcast's), so the source's log lines say which
    /// broadcast they belong to.
    pub fn join(source: Box<dyn CallSource>) -> Self {
        let (tx, events) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let (tile_widths, widths_rx) = watch::channel(TileWidths::new());
        tracing::info!(source = source.name(), "joining the call");
        let follow = source.follow(CallTask {
            events: tx,
            stop: stop_rx,
            tile_widths: widths_rx,
        });
        let task = tokio::spawn(follow.in_current_span());
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
