//! `GET /v1/events`: every broadcast's events as Server-Sent Events (`event:` kind, `id:`, `data:` JSON).

use super::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

pub async fn stream(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = state.broadcasts.events().subscribe();
    let stream = futures::stream::unfold(events, |mut events| async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let sse = Event::default()
                        .event(event.kind.clone())
                        .id(event.id.to_string())
                        .json_data(&event)
                        .unwrap_or_default();
                    return Some((Ok(sse), events));
                }
                // A slow reader skips what it missed rather than holding anything up.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
