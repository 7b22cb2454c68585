//! Nobody gets in without a token: every route of the router is tried (in-process) with no token, a wrong one
//! and tokens of other scopes (401 with `WWW-Authenticate: Bearer`), and with each token of its scope on a real
//! broadcast, session or file (the status its handler answers); public broadcasts are watchable without one; an
//! exposed server refuses to start open.

use crate::in_process::VIDEO_OFFER;
use axum::http::StatusCode;
use callcast::api::{routes, Access, RouteInfo};
use serde_json::Value;
use std::process::{Command, Stdio};

const CONTROL: &str = "control-token-0f3a";
const READ: &str = "read-token-77c1";
const ROOM: &str = "room-token-5d2e";

fn app() -> (axum::Router, crate::in_process::AppDir) {
    let controls = format!("other-token,{CONTROL}");
    let room = format!("stage={ROOM}");
    // WHIP sessions here never send media: the media timeout must not remove them during a test.
    crate::in_process::app(&[
        "--api-token",
        &controls,
        "--read-token",
        READ,
        "--room-token",
        &room,
        "--media-timeout-s",
        "60",
        "--rtp-port-range",
        "45000-45099",
    ])
}

async fn call(app: &axum::Router, method: &str, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, String) {
    let content_type = if uri.ends_with("/whip") {
        "application/sdp"
    } else {
        "application/json"
    };
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", content_type)];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    crate::in_process::send(app, method, uri, &headers, body).await
}

/// What the route test works on: a private broadcast that is live with its playlist on disk and a second
/// output to remove, a broadcast to stop, and WHIP sessions in room `stage` to look at and to leave.
struct Fixture {
    live: String,
    to_stop: String,
    session: String,
    /// One per publisher scope that may leave a session (a session left is gone for the next one).
    leaving: [String; 2],
    /// The same for plain RTP participants.
    rtp_leaving: [String; 2],
}

/// A plain RTP participant with one video track.
const RTP_JOIN: &str =
    r#"{"name": "rtp", "tracks": [{"kind": "video", "codec": "VP8", "payload_type": 96, "clock_rate": 90000}]}"#;

/// Tokens that pass `access`, in the order `Fixture::leaving` is used (Public: no token).
fn passing_tokens(access: Access) -> &'static [Option<&'static str>] {
    match access {
        Access::Public => &[None],
        Access::Read | Access::Watch => &[Some(READ), Some(CONTROL)],
        Access::Control => &[Some(CONTROL)],
        Access::Publish => &[Some(ROOM), Some(CONTROL)],
    }
}

/// Tokens that `access` refuses with 401 (None: no `Authorization` header).
fn refused_tokens(access: Access) -> &'static [Option<&'static str>] {
    match access {
        Access::Public => &[],
        Access::Read | Access::Watch => &[None, Some("not-a-token"), Some(ROOM)],
        Access::Control => &[None, Some("not-a-token"), Some(READ), Some(ROOM)],
        Access::Publish => &[None, Some("not-a-token"), Some(READ)],
    }
}

/// A request to `route` that its handler answers with success, given the `nth` token that passes: URI,
/// content type, body, and the status it must get. Every route must be here: a new route fails the test
/// until it is given a request and an expected status.
fn request_for(route: &RouteInfo, fixture: &Fixture, nth: usize) -> (String, &'static str, String, StatusCode) {
    let json = "application/json";
    let live = &fixture.live;
    let (uri, content_type, body, code) = match (route.method.as_str(), route.path) {
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/v1/openapi.json" | "/") => {
            (route.path.to_string(), json, String::new(), StatusCode::OK)
        }
        ("GET", "/v1/broadcasts" | "/v1/events" | "/v1/layouts" | "/assets/hls.min.js") => {
            (route.path.to_string(), json, String::new(), StatusCode::OK)
        }
        ("GET", "/v1/rooms/{room}") => ("/v1/rooms/stage".into(), json, String::new(), StatusCode::OK),
        ("POST", "/v1/rooms/{room}/whip") => (
            "/v1/rooms/stage/whip".into(),
            "application/sdp",
            VIDEO_OFFER.into(),
            StatusCode::CREATED,
        ),
        ("GET", "/v1/rooms/{room}/whip/{participant}") => (
            format!("/v1/rooms/stage/whip/{}", fixture.session),
            json,
            String::new(),
            StatusCode::OK,
        ),
        // `attempt` sends `If-Match: *` with every PATCH; a fragment without credentials restarts nothing.
        ("PATCH", "/v1/rooms/{room}/whip/{participant}") => (
            format!("/v1/rooms/stage/whip/{}", fixture.session),
            "application/trickle-ice-sdpfrag",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n".into(),
            StatusCode::NO_CONTENT,
        ),
        ("DELETE", "/v1/rooms/{room}/whip/{participant}") => (
            format!("/v1/rooms/stage/whip/{}", fixture.leaving[nth]),
            json,
            String::new(),
            StatusCode::OK,
        ),
        ("POST", "/v1/rooms/{room}/rtp") => ("/v1/rooms/stage/rtp".into(), json, RTP_JOIN.into(), StatusCode::CREATED),
        ("DELETE", "/v1/rooms/{room}/rtp/{participant}") => (
            format!("/v1/rooms/stage/rtp/{}", fixture.rtp_leaving[nth]),
            json,
            String::new(),
            StatusCode::OK,
        ),
        ("POST", "/v1/broadcasts") => (
            "/v1/broadcasts".into(),
            json,
            small_broadcast(false),
            StatusCode::CREATED,
        ),
        ("GET", "/v1/broadcasts/{id}") => (format!("/v1/broadcasts/{live}"), json, String::new(), StatusCode::OK),
        ("DELETE", "/v1/broadcasts/{id}") => (
            format!("/v1/broadcasts/{}", fixture.to_stop),
            json,
            String::new(),
            StatusCode::OK,
        ),
        ("PATCH", "/v1/broadcasts/{id}") => (
            format!("/v1/broadcasts/{live}"),
            json,
            r#"{"layout": {"template": "speaker"}}"#.into(),
            StatusCode::OK,
        ),
        ("POST", "/v1/broadcasts/{id}/outputs") => (
            format!("/v1/broadcasts/{live}/outputs"),
            json,
            format!(r#"{{"kind": "rtmp", "url": "{CLOSED_RTMP}/added"}}"#),
            StatusCode::CREATED,
        ),
        ("DELETE", "/v1/broadcasts/{id}/outputs/{output_id}") => (
            format!("/v1/broadcasts/{live}/outputs/out_1"),
            json,
            String::new(),
            StatusCode::OK,
        ),
        ("GET", "/v1/layouts/{name}/preview.png") => (
            "/v1/layouts/grid/preview.png".into(),
            json,
            String::new(),
            StatusCode::OK,
        ),
        ("GET", "/v1/broadcasts/{id}/hls/{file}") => (
            format!("/v1/broadcasts/{live}/hls/index.m3u8"),
            json,
            String::new(),
            StatusCode::OK,
        ),
        // The live broadcast's HLS has no renditions: past the token check, 404.
        ("GET", "/v1/broadcasts/{id}/hls/{rendition}/{file}") => (
            format!("/v1/broadcasts/{live}/hls/360p/index.m3u8"),
            json,
            String::new(),
            StatusCode::NOT_FOUND,
        ),
        // The live broadcast has no whep output: past the token check, 404.
        ("POST", "/v1/broadcasts/{id}/whep") => (
            format!("/v1/broadcasts/{live}/whep"),
            "application/sdp",
            VIDEO_OFFER.into(),
            StatusCode::NOT_FOUND,
        ),
        ("PATCH", "/v1/broadcasts/{id}/whep/{viewer}") => (
            format!("/v1/broadcasts/{live}/whep/v1"),
            "application/trickle-ice-sdpfrag",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n".into(),
            StatusCode::NOT_FOUND,
        ),
        ("DELETE", "/v1/broadcasts/{id}/whep/{viewer}") => (
            format!("/v1/broadcasts/{live}/whep/v1"),
            json,
            String::new(),
            StatusCode::NOT_FOUND,
        ),
        ("GET", "/watch/{id}") => (format!("/watch/{live}"), json, String::new(), StatusCode::OK),
        (method, path) => panic!("no request for {method} {path}: add one to request_for"),
    };
    (uri, content_type, body, code)
}

/// An RTMP URL where nothing listens (the discard port): the output retries in the background, harmlessly.
const CLOSED_RTMP: &str = "rtmp://127.0.0.1:9/live";

/// A small HLS broadcast of room `stage` (plus an RTMP output that never connects, to be removed).
fn small_broadcast(with_rtmp: bool) -> String {
    let mut outputs = vec![serde_json::json!({"kind": "hls", "segment_seconds": 1})];
    if with_rtmp {
        outputs.push(serde_json::json!({"kind": "rtmp", "url": format!("{CLOSED_RTMP}/removed")}));
    }
    serde_json::json!({
        "source": {"kind": "room", "room": "stage"},
        "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
        "outputs": outputs,
    })
    .to_string()
}

/// Sends a request and returns its status and `WWW-Authenticate` header, and the body unless the status is
/// 200 (an authorised event stream never ends).
async fn attempt(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> (StatusCode, Option<String>, String) {
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    if method == "PATCH" {
        // Trickle ICE needs a precondition (the session's ETag, or `*`); PATCH of a broadcast ignores it.
        request = request.header("if-match", "*");
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(axum::body::Body::from(body.to_string())).expect("request");
    let response = tower::ServiceExt::oneshot(app.clone(), request)
        .await
        .expect("response");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or("(not text)").to_string());
    let body = if status == StatusCode::OK {
        String::new()
    } else {
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (status, challenge, body)
}

/// Sets up the fixture: broadcasts started and live (the playlist is there), WHIP sessions joined.
async fn fixture(app: &axum::Router) -> Fixture {
    let start = |with_rtmp: bool| async move {
        let (code, _, reply) = attempt(
            app,
            "POST",
            "/v1/broadcasts",
            Some(CONTROL),
            "application/json",
            &small_broadcast(with_rtmp),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{reply}");
        let reply: Value = serde_json::from_str(&reply).expect("JSON");
        reply["id"].as_str().expect("id").to_string()
    };
    let live = start(true).await;
    let to_stop = start(false).await;
    let bearer = format!("Bearer {ROOM}");
    let join = || async {
        let location = crate::in_process::join_whip(app, "/v1/rooms/stage/whip", &[("authorization", &bearer)]).await;
        location.rsplit('/').next().expect("id").to_string()
    };
    let (session, first, second) = (join().await, join().await, join().await);
    let join_rtp = || async {
        let (code, _, reply) = attempt(
            app,
            "POST",
            "/v1/rooms/stage/rtp",
            Some(ROOM),
            "application/json",
            RTP_JOIN,
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{reply}");
        let reply: Value = serde_json::from_str(&reply).expect("JSON");
        reply["id"].as_str().expect("id").to_string()
    };
    let rtp_leaving = [join_rtp().await, join_rtp().await];
    // The playlist (and with it a live state for PATCH) takes a segment: about a second, more under load.
    let playlist = format!("/v1/broadcasts/{live}/hls/index.m3u8");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (code, _, body) = attempt(app, "GET", &playlist, Some(CONTROL), "", "").await;
        let (_, _, status) = attempt(app, "GET", &format!("/v1/broadcasts/{live}"), Some(CONTROL), "", "").await;
        if code == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no playlist within 30 s: {code} {body}; {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Fixture {
        live,
        to_stop,
        session,
        leaving: [first, second],
        rtp_leaving,
    }
}

#[tokio::test]
async fn every_route_needs_the_right_token() {
    let (app, _dir) = app();
    let checks = {
        let app = app.clone();
        async move {
            let fixture = fixture(&app).await;
            let all = routes();
            assert!(all.len() >= 10, "{all:?}");
            for route in &all {
                let method = route.method.as_str();
                let (uri, content_type, body, _) = request_for(route, &fixture, 0);
                for &token in refused_tokens(route.access) {
                    let (code, challenge, reply) = attempt(&app, method, &uri, token, content_type, &body).await;
                    assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {uri} with {token:?}: {reply}");
                    assert_eq!(challenge.as_deref(), Some("Bearer"), "{method} {uri} with {token:?}");
                    let json: Value = serde_json::from_str(&reply).expect("JSON error");
                    assert!(json["error"].as_str().is_some_and(|e| e.contains("token")), "{reply}");
                }
                for (nth, &token) in passing_tokens(route.access).iter().enumerate() {
                    let (uri, content_type, body, expected) = request_for(route, &fixture, nth);
                    let (code, _, reply) = attempt(&app, method, &uri, token, content_type, &body).await;
                    assert_eq!(code, expected, "{method} {uri} with {token:?}: {reply}");
                }
            }
        }
    };
    crate::in_process::stopping_broadcasts_after(&app, Some(CONTROL), checks).await;
}

/// RFC 9110 §11.1: the auth scheme is case-insensitive; the token is not.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let (app, _dir) = app();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let authorization = format!("{scheme} {CONTROL}");
        let headers = [("authorization", authorization.as_str())];
        let (code, body) = crate::in_process::send(&app, "GET", "/v1/broadcasts", &headers, "").await;
        assert_eq!(code, StatusCode::OK, "{scheme}: {body}");
    }
    let wrong_token = format!("bearer {}", CONTROL.to_uppercase());
    for authorization in [wrong_token.as_str(), "bearer not-a-token", "Basic Y29udHJvbA=="] {
        let app = app.clone();
        let request = axum::http::Request::builder()
            .uri("/v1/broadcasts")
            .header("authorization", authorization)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = tower::ServiceExt::oneshot(app, request).await.expect("response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{authorization}");
        assert_eq!(
            response.headers().get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..]),
            "{authorization}"
        );
    }
}

#[tokio::test]
async fn a_room_token_opens_its_room_only() {
    let (app, _dir) = app();
    let (code, _) = call(&app, "POST", "/v1/rooms/other/whip", Some(ROOM), "v=0").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = call(&app, "POST", "/v1/rooms/stage/whip", Some(ROOM), "v=0").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "authorised, then the offer is refused");
}

#[tokio::test]
async fn public_broadcasts_are_watchable_without_a_token() {
    let (app, _dir) = app();
    let checks = {
        let app = app.clone();
        async move {
            let mut ids = Vec::new();
            for public in [true, false] {
                let body = serde_json::json!({
                    "source": {"kind": "room", "room": "stage"},
                    "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
                    "outputs": [{"kind": "hls", "segment_seconds": 1}],
                    "public": public,
                });
                let (code, reply) = call(&app, "POST", "/v1/broadcasts", Some(CONTROL), &body.to_string()).await;
                assert_eq!(code, StatusCode::CREATED, "{reply}");
                let reply: Value = serde_json::from_str(&reply).expect("JSON");
                assert_eq!(reply["public"], public);
                ids.push(reply["id"].as_str().expect("id").to_string());
            }
            let (public, private) = (&ids[0], &ids[1]);
            let status = |id: &str| format!("/v1/broadcasts/{id}");
            let playlist = |id: &str| format!("/v1/broadcasts/{id}/hls/index.m3u8");
            // Both playlists exist (the first segment takes about a second), so every answer below is about
            // the token.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            for id in &ids {
                while call(&app, "GET", &playlist(id), Some(CONTROL), "").await.0 != StatusCode::OK {
                    assert!(std::time::Instant::now() < deadline, "no playlist for {id} in 30 s");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }

            assert_eq!(call(&app, "GET", &status(public), None, "").await.0, StatusCode::OK);
            assert_eq!(call(&app, "GET", &playlist(public), None, "").await.0, StatusCode::OK);
            assert_eq!(
                call(&app, "GET", &format!("/watch/{public}"), None, "").await.0,
                StatusCode::OK
            );
            assert_eq!(
                call(&app, "GET", &status(private), None, "").await.0,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(
                call(&app, "GET", &playlist(private), None, "").await.0,
                StatusCode::UNAUTHORIZED
            );
            // Players that cannot set headers pass the token in the query.
            let with_query = format!("{}?token={READ}", playlist(private));
            assert_eq!(call(&app, "GET", &with_query, None, "").await.0, StatusCode::OK);
            let wrong_query = format!("{}?token=not-a-token", playlist(private));
            assert_eq!(
                call(&app, "GET", &wrong_query, None, "").await.0,
                StatusCode::UNAUTHORIZED
            );
            // Public is for watching only.
            assert_eq!(
                call(&app, "DELETE", &status(public), None, "").await.0,
                StatusCode::UNAUTHORIZED
            );
            for id in &ids {
                assert_eq!(
                    call(&app, "DELETE", &status(id), Some(CONTROL), "").await.0,
                    StatusCode::OK
                );
            }
        }
    };
    crate::in_process::stopping_broadcasts_after(&app, Some(CONTROL), checks).await;
}

#[tokio::test]
async fn paths_outside_a_broadcast_are_not_found() {
    let (app, _dir) = app();
    for uri in [
        "/v1/broadcasts/bc_0123456789abcdef/hls/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v1/broadcasts/bc_0123456789abcdef/hls/%2Fetc%2Fpasswd",
        "/v1/broadcasts/..%2F..%2Fetc/hls/index.m3u8",
        "/v1/broadcasts/bc_0123456789abcdef/hls/index.m3u8%00.ts",
        "/v1/layouts/..%2Fgrid/preview.png",
        "/watch/..%2F..%2Fetc%2Fpasswd",
    ] {
        let (code, body) = call(&app, "GET", uri, Some(CONTROL), "").await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert!(!body.contains("root:"), "{uri}");
    }
}

#[test]
fn an_exposed_server_refuses_to_start_without_a_token() {
    let bin = env!("CARGO_BIN_EXE_callcast");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("CALLCAST_API_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CALLCAST_API_TOKEN"), "{stderr}");

    // With a token from the environment it starts, and the token is not in what it prints.
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env("CALLCAST_API_TOKEN", CONTROL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run serve");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("listen line");
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    assert!(line.starts_with("callcast listening on http://0.0.0.0:"), "{line}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(CONTROL));
}
