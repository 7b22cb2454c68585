//! Webhooks: every delivery signed (HMAC-SHA256), retried until the receiver takes it, per broadcast or for the
//! whole server, and a slow receiver never holds up a broadcast.

use crate::support::broadcast::Broadcast;
use crate::support::{http, wait_for, Server};
use serde_json::{json, Value};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-test-4b1d";

/// What a webhook receiver got.
struct Delivery {
    kind: String,
    id: String,
    signature: String,
    body: Vec<u8>,
}

impl Delivery {
    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A receiver (a small axum server on 127.0.0.1): answers 500 to the first `failures` requests and 200 after,
/// each after `delay`, one request at a time. Every request it got arrives on the channel.
fn webhook_receiver(failures: usize, delay: Duration) -> (String, mpsc::Receiver<Delivery>) {
    use axum::http::{HeaderMap, StatusCode};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/hooks?key=abc", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    let seen = Arc::new(tokio::sync::Mutex::new(0usize));
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let (tx, seen) = (tx.clone(), seen.clone());
        async move {
            // Held through the delay: requests are answered one at a time, like a slow single-threaded receiver.
            let mut count = seen.lock().await;
            let header = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let _ = tx.send(Delivery {
                kind: header("x-callcast-event"),
                id: header("x-callcast-delivery"),
                signature: header("x-callcast-signature"),
                body: body.to_vec(),
            });
            tokio::time::sleep(delay).await;
            *count += 1;
            if *count <= failures {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
    };
    serve_hooks(listener, axum::routing::post(handler));
    (url, rx)
}

/// Deliveries until one of `kind` for `broadcast_id` (30 s deadline).
fn deliveries_until(deliveries: &mpsc::Receiver<Delivery>, kind: &str, broadcast_id: &str) -> Vec<Delivery> {
    let mut got: Vec<Delivery> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !got
        .iter()
        .any(|d| d.kind == kind && d.event()["broadcast_id"] == broadcast_id)
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let kinds: Vec<&str> = got.iter().map(|d| d.kind.as_str()).collect();
        got.push(
            deliveries
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} within 30 s; got {kinds:?}")),
        );
    }
    got
}

fn assert_signed(got: &[Delivery]) {
    for d in got {
        assert_eq!(
            d.signature,
            callcast::webhooks::signature(SECRET, &d.body),
            "{}",
            d.kind
        );
        assert_eq!(d.event()["kind"], d.kind.as_str());
    }
}

fn small_broadcast(room: &str) -> Value {
    json!({
        "source": {"kind": "room", "room": room},
        "video": {"width": 320, "height": 180},
        "outputs": [{"kind": "hls", "segment_seconds": 1}],
    })
}

#[test]
fn a_receiver_that_fails_twice_still_gets_every_event_signed() {
    let (url, deliveries) = webhook_receiver(2, Duration::ZERO);
    let server = Server::start(&["--webhook-url", &url, "--webhook-secret", SECRET]);
    let mut body = small_broadcast("hooked");
    body["outputs"]
        .as_array_mut()
        .expect("outputs")
        .push(json!({"kind": "record"}));
    let bc = Broadcast::start(&server, &body);
    let got = deliveries_until(&deliveries, "broadcast.live", &bc.id);
    // The first delivery was refused twice and came a third time, with the same delivery id.
    let firsts: Vec<(&str, &str)> = got[..3].iter().map(|d| (d.kind.as_str(), d.id.as_str())).collect();
    assert_eq!(firsts, vec![("broadcast.started", got[0].id.as_str()); 3]);
    assert_signed(&got);
    assert!(got.iter().all(|d| d.event()["broadcast_id"] == bc.id.as_str()));
    let ended = bc.stop();
    assert_eq!(ended["state"], "ended");
    let rest = deliveries_until(&deliveries, "broadcast.ended", &bc.id);
    assert_signed(&rest);
    // The recording's file, finalised, announced with its path before the broadcast's end.
    let ready: Vec<Value> = rest
        .iter()
        .filter(|d| d.kind == "recording.ready")
        .map(|d| d.event())
        .collect();
    let path = Broadcast::output(&ended, "out_1")["path"].clone();
    assert_eq!(ready.len(), 1, "{ready:?}");
    assert_eq!(ready[0]["data"]["path"], path, "{ready:?}");
    let path = std::path::PathBuf::from(path.as_str().expect("a recording path"));
    assert_eq!(
        ready[0]["data"]["bytes"].as_u64(),
        Some(std::fs::metadata(&path).expect("the recording").len())
    );
    let log = server.log_text();
    assert!(!log.contains(SECRET) && !log.contains("key=abc"), "{log}");
}

#[test]
fn a_broadcast_webhook_gets_that_broadcasts_events_only() {
    let (url, deliveries) = webhook_receiver(0, Duration::ZERO);
    // A key to sign with, and no server-wide URL.
    let server = Server::start(&["--webhook-secret", SECRET]);
    let mut body = small_broadcast("hooked-one");
    body["webhook_url"] = json!(url);
    let hooked = Broadcast::start(&server, &body);
    let other = Broadcast::start(&server, &small_broadcast("not-hooked"));
    deliveries_until(&deliveries, "broadcast.live", &hooked.id);
    other.stop();
    hooked.stop();
    let got = deliveries_until(&deliveries, "broadcast.ended", &hooked.id);
    assert_signed(&got);
    let ids: Vec<Value> = got.iter().map(|d| d.event()["broadcast_id"].clone()).collect();
    assert!(ids.iter().all(|id| *id == hooked.id.as_str()), "{ids:?}");
    assert!(
        deliveries.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing after the broadcast's last event"
    );
    let status = hooked.status().to_string();
    assert!(!status.contains("key=abc"), "the webhook URL is not shown: {status}");
}

#[test]
fn a_webhook_needs_the_servers_key() {
    let server = Server::start(&[]);
    let mut body = small_broadcast("unsigned");
    body["webhook_url"] = json!("http://127.0.0.1:9/hooks");
    let response = http()
        .post(server.url("/v1/broadcasts"))
        .json(&body)
        .send()
        .expect("POST");
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().expect("body").contains("webhook_url"));
}

#[test]
fn a_slow_receiver_never_holds_up_the_broadcast() {
    // Each delivery takes 4 s to answer: the events pile up behind it.
    let (url, deliveries) = webhook_receiver(0, Duration::from_secs(4));
    let server = Server::start(&["--webhook-url", &url, "--webhook-secret", SECRET]);
    let posted = Instant::now();
    let bc = Broadcast::start(&server, &small_broadcast("slow-hook"));
    wait_for("the broadcast live", Duration::from_secs(20), || {
        (bc.status()["state"] == "live").then_some(())
    });
    let live_after = posted.elapsed();
    let frames = |s: &Value| s["frames_out"].as_u64().unwrap_or(0);
    let (before, at) = (frames(&bc.status()), Instant::now());
    wait_for("3 s of output", Duration::from_secs(10), || {
        (at.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    let fps = (frames(&bc.status()) - before) as f64 / at.elapsed().as_secs_f64();
    let delivered: Vec<Delivery> = deliveries.try_iter().collect();
    assert!(fps >= 25.0, "output at {fps:.1} fps behind a slow webhook");
    assert!(live_after < Duration::from_secs(15), "live after {live_after:?}");
    // The receiver really was behind: one delivery per 4 s at most, while many more events happened.
    let most = (posted.elapsed().as_secs_f64() / 4.0).ceil() as usize + 1;
    assert!(
        delivered.len() <= most,
        "{} deliveries, at most {most} expected",
        delivered.len()
    );
    assert_eq!(bc.stop()["state"], "ended");
}

/// A receiver that answers every POST with `status` and `location`; the paths it was asked for arrive on the
/// channel.
fn answering_receiver(status: axum::http::StatusCode, location: Option<String>) -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    let handler = move |uri: axum::http::Uri| {
        let (tx, location) = (tx.clone(), location.clone());
        async move {
            let _ = tx.send(uri.to_string());
            let mut response = axum::response::IntoResponse::into_response(status);
            if let Some(location) = location {
                response
                    .headers_mut()
                    .insert("location", location.parse().expect("location"));
            }
            response
        }
    };
    serve_hooks(listener, axum::routing::post(handler));
    (url, rx)
}

/// A 307 would make a client re-send the signed body to wherever it points: a redirect is a failed delivery,
/// retried at the configured URL, and the other host never hears of it.
#[tokio::test]
async fn a_redirect_is_a_failed_delivery_not_followed() {
    use axum::http::StatusCode;
    let (elsewhere, elsewhere_got) = answering_receiver(StatusCode::OK, None);
    let (url, redirector_got) = answering_receiver(StatusCode::TEMPORARY_REDIRECT, Some(elsewhere));
    let bus = callcast::events::EventBus::default();
    let hook = callcast::webhooks::Webhook {
        url: url.parse().expect("url"),
        secret: SECRET.into(),
    };
    let task = callcast::webhooks::spawn(&bus, hook);
    bus.publish("test.redirected", "bc_0000000000000000", json!({}));
    // The first try and one retry (1 s later) both at the configured URL.
    let redirector_got = tokio::task::spawn_blocking(move || {
        (0..2)
            .map(|n| {
                redirector_got
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|_| panic!("attempt {n} never reached the configured receiver"))
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("join");
    assert_eq!(redirector_got, ["/hooks", "/hooks"]);
    // A followed redirect would have reached the other receiver before the retry was sent.
    assert!(
        elsewhere_got.try_recv().is_err(),
        "the signed body was re-sent to the redirect's target"
    );
    task.abort();
}

/// Serves `route` at `/hooks` on `listener`, on a thread of its own, for the rest of the test.
fn serve_hooks(listener: std::net::TcpListener, route: axum::routing::MethodRouter) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new().route("/hooks", route);
            let _ = axum::serve(listener, app).await;
        });
    });
}
