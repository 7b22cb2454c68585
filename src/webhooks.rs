//! Webhooks: every event POSTed as JSON to the operator's URL, signed with HMAC-SHA256 of the body
//! (`X-Callcast-Signature: sha256=<hex>`), retried with backoff until delivered (at least once; redirects are not followed; receivers drop
//! duplicates by `X-Callcast-Delivery`). Delivery runs in its own task and never blocks a broadcast.

use crate::events::{Event, EventBus};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// An event not delivered after this many attempts (about 10 minutes) is dropped with a warning.
const MAX_ATTEMPTS: u32 = 15;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Webhook {
    pub url: reqwest::Url,
    pub secret: SecretString,
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn deliver(client: &reqwest::Client, hook: &Webhook, event: &Event) {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let signature = signature(hook.secret.expose_secret(), &body);
    let mut wait = FIRST_RETRY;
    for attempt in 1..=MAX_ATTEMPTS {
        let result = client
            .post(hook.url.clone())
            .header("content-type", "application/json")
            .header("x-callcast-event", &event.kind)
            .header("x-callcast-delivery", event.id.to_string())
            .header("x-callcast-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => return,
            // The URL may carry credentials: name the host only.
            Ok(r) => tracing::warn!(attempt, host = hook.url.host_str(), "webhook answered {}", r.status()),
            Err(e) => tracing::warn!(
                attempt,
                host = hook.url.host_str(),
                "webhook failed: {}",
                e.without_url()
            ),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY);
    }
    tracing::warn!(event_id = event.id, kind = %event.kind, "webhook gave up on an event");
}

/// Delivers every event of `bus` to `hook`, in order, until the server stops.
pub fn spawn(bus: &EventBus, hook: Webhook) -> tokio::task::JoinHandle<()> {
    spawn_filtered(bus, hook, None)
}

/// Delivers one broadcast's events to `hook`, in order, until its last (`broadcast.ended` or `.failed`).
pub fn spawn_for_broadcast(bus: &EventBus, hook: Webhook, broadcast_id: String) -> tokio::task::JoinHandle<()> {
    spawn_filtered(bus, hook, Some(broadcast_id))
}

fn spawn_filtered(bus: &EventBus, hook: Webhook, only: Option<String>) -> tokio::task::JoinHandle<()> {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        // A redirect is a failed delivery: following it would send the signed body to a host the operator did
        // not configure.
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        loop {
            match events.recv().await {
                Ok(event) if only.as_ref().is_some_and(|id| *id != event.broadcast_id) => {}
                Ok(event) => {
                    deliver(&client, &hook, &event).await;
                    let last = matches!(event.kind.as_str(), "broadcast.ended" | "broadcast.failed");
                    if last && only.is_some() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => tracing::warn!("webhook fell behind: {missed} events not delivered"),
                Err(RecvError::Closed) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    /// A known answer computed outside the project:
    /// `printf '%s' '{"id":7,"kind":"broadcast.live","broadcast_id":"bc_1"}' | openssl dgst -sha256 -hmac 'webhook-secret-3f9a'`
    #[test]
    fn signature_matches_openssl() {
        let body = br#"{"id":7,"kind":"broadcast.live","broadcast_id":"bc_1"}"#;
        assert_eq!(
            super::signature("webhook-secret-3f9a", body),
            "sha256=90bd2e3dcfb87c43180869fe3a11720b30aafb595d8264220a59cf7ee0be14cb"
        );
    }
}
