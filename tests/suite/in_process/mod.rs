//! The router called in-process (no socket, no child process) for API tests.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use callcast::server::{build_state, ServeArgs};
use clap::Parser;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

/// What lives as long as an in-process app: its data dir, and a watch that fails the test if GLib logs a
/// CRITICAL or WARNING meanwhile (the app's broadcasts run their pipelines in this process).
pub struct AppDir {
    pub dir: tempfile::TempDir,
    _glib: crate::support::glib_watch::Watch,
}

/// The router of a server started with `serve` flags `flags`, and its data dir.
pub fn app(flags: &[&str]) -> (axum::Router, AppDir) {
    let glib = crate::support::glib_watch::watch();
    callcast::gst_util::init().expect("GStreamer");
    let dir = tempfile::tempdir().expect("tempdir");
    let args = Args::parse_from(std::iter::once("test").chain(flags.iter().copied())).serve;
    let mut args = args.settings().expect("settings");
    args.data_dir = dir.path().to_path_buf();
    (callcast::api::router(build_state(&args)), AppDir { dir, _glib: glib })
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
