//! The router called in-process (no socket, no child process) for API tests.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use callcast::broadcast::Broadcasts;
use callcast::server::{build_state, ServeArgs};
use clap::Parser;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

/// How long stopping the app's broadcasts may take when the test ends (each finalises its outputs).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the checks of an in-process test may take (the longest takes about 10 s).
const CHECKS_TIMEOUT: Duration = Duration::from_secs(120);

/// What lives as long as an in-process app: its data dir, the runtime its handlers and broadcasts run on, and
/// a watch that fails the test if GLib logs a CRITICAL or WARNING meanwhile (the app's broadcasts run their
/// pipelines in this process). Dropping it, even while a failed test unwinds, stops every broadcast the test
/// started and shuts that runtime down, so no pipeline outlives its test.
pub struct AppDir {
    pub dir: tempfile::TempDir,
    broadcasts: Arc<Broadcasts>,
    runtime: Option<tokio::runtime::Runtime>,
    _glib: crate::support::glib_watch::Watch,
}

/// The router of a server started with `serve` flags `flags`, and its data dir. Every request is handled on
/// the app's own runtime, so what it starts (broadcast actors, WHIP legs) runs there, whatever runtime the test
/// uses, and can still be stopped after the test's runtime is gone.
pub fn app(flags: &[&str]) -> (axum::Router, AppDir) {
    let glib = crate::support::glib_watch::watch();
    callcast::gst_util::init().expect("GStreamer");
    let dir = tempfile::tempdir().expect("tempdir");
    let args = Args::parse_from(std::iter::once("test").chain(flags.iter().copied())).serve;
    let mut args = args.settings().expect("settings");
    args.data_dir = dir.path().to_path_buf();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the app's runtime");
    let state = {
        let _inside = runtime.enter();
        build_state(&args)
    };
    let broadcasts = state.broadcasts.clone();
    let handle = runtime.handle().clone();
    let router = callcast::api::router(state).layer(axum::middleware::from_fn(move |request, next: Next| {
        let handle = handle.clone();
        async move { handle.spawn(next.run(request)).await.expect("the handler ran") }
    }));
    let app_dir = AppDir {
        dir,
        broadcasts,
        runtime: Some(runtime),
        _glib: glib,
    };
    (router, app_dir)
}

impl Drop for AppDir {
    fn drop(&mut self) {
        let (Some(runtime), broadcasts) = (self.runtime.take(), self.broadcasts.clone()) else {
            return;
        };
        // On a thread of its own: the test's runtime may be the one dropping this (no blocking allowed there).
        let left = std::thread::spawn(move || {
            let stopped = runtime.block_on(async { tokio::time::timeout(STOP_TIMEOUT, broadcasts.stop_all()).await });
            let left = broadcasts.running_count();
            runtime.shutdown_timeout(Duration::from_secs(5));
            (stopped.is_ok(), left)
        })
        .join();
        if !std::thread::panicking() {
            let (stopped, left) = left.expect("stopping the app's broadcasts");
            assert!(
                stopped && left == 0,
                "{left} broadcast(s) still running after the test ended and they were stopped (given {STOP_TIMEOUT:?})"
            );
        }
    }
}

/// Sends one request with `headers`; returns the status and the body as text.
pub async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body.to_string())).expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Sends one request and returns its status only: for streams (SSE) whose body never ends.
pub async fn status(app: &axum::Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::empty()).expect("request");
    app.clone().oneshot(request).await.expect("response").status()
}

/// A WHIP offer webrtcbin answers (one VP8 video section) from a peer that never starts ICE: the join is
/// answered `201` and waits to connect until the media timeout removes it.
pub const VIDEO_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=rtcp-mux\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n";

/// Joins over WHIP with `VIDEO_OFFER` at `uri` (`/v1/rooms/{room}/whip`, with any query) and `headers`; returns
/// the session's `Location`. Panics, with the reply, unless it is a `201` whose body is an SDP answer.
pub async fn join_whip(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> String {
    let mut request = Request::post(uri).header("content-type", "application/sdp");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(VIDEO_OFFER)).expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = String::from_utf8_lossy(&body.collect().await.expect("body").to_bytes()).into_owned();
    assert_eq!(parts.status, StatusCode::CREATED, "POST {uri}: {body}");
    let location = parts
        .headers
        .get("location")
        .map(|l| l.to_str().expect("Location is text").to_string());
    assert!(
        body.starts_with("v=0"),
        "POST {uri}: the body is not an SDP answer: {body}"
    );
    location.unwrap_or_else(|| panic!("POST {uri}: 201 without a Location"))
}

/// Runs `checks` (which start broadcasts on `app`), then stops every broadcast the app still runs, also when
/// `checks` panicked (the panic is raised again afterwards): a broadcast left running in the test process
/// keeps its pipelines' threads going. `token`: a control token, if the app has tokens.
pub async fn stopping_broadcasts_after(
    app: &axum::Router,
    token: Option<&str>,
    checks: impl std::future::Future<Output = ()> + Send + 'static,
) {
    // A hang (a request never answered) fails the test with what hung instead of holding CI until its limit.
    let outcome = tokio::time::timeout(CHECKS_TIMEOUT, tokio::spawn(checks))
        .await
        .unwrap_or_else(|_| panic!("the checks did not finish within {CHECKS_TIMEOUT:?}: a request hung"));
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
    let (_, list) = send(app, "GET", "/v1/broadcasts", &headers, "").await;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
    for broadcast in list["broadcasts"].as_array().into_iter().flatten() {
        let running = !matches!(broadcast["state"].as_str(), Some("ended" | "failed"));
        if let (true, Some(id)) = (running, broadcast["id"].as_str()) {
            let uri = format!("/v1/broadcasts/{id}");
            let stop = send(app, "DELETE", &uri, &headers, "");
            let (code, reply) = tokio::time::timeout(STOP_TIMEOUT, stop)
                .await
                .unwrap_or_else(|_| panic!("DELETE {uri} did not answer within {STOP_TIMEOUT:?}"));
            assert!(
                code.is_success() || code == StatusCode::NOT_FOUND,
                "DELETE {uri}: {code} {reply}"
            );
        }
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the checks did not finish: {e}"),
        }
    }
}
