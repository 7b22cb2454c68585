//! Nobody gets in without a token: every route of the router is tried with no token, a wrong one, a read-only
//! one and a control one (in-process); public broadcasts are watchable without one; an exposed server refuses
//! to start open.

use axum::http::StatusCode;
use callcast::api::{routes, Access};
use serde_json::Value;
use std::process::{Command, Stdio};

const CONTROL: &str = "control-token-0f3a";
const READ: &str = "read-token-77c1";
const ROOM: &str = "room-token-5d2e";

fn app() -> (axum::Router, crate::in_process::AppDir) {
    let controls = format!("other-token,{CONTROL}");
    let room = format!("stage={ROOM}");
    crate::in_process::app(&["--api-token", &controls, "--read-token", READ, "--room-token", &room])
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

/// A concrete URI for a route pattern.
fn concrete(path: &str) -> String {
    path.replace("{room}", "stage")
        .replace("{id}", "bc_0123456789abcdef")
        .replace("{participant}", "p_0123456789abcdef")
        .replace("{file}", "index.m3u8")
        .replace("{name}", "grid")
        .replace("{output_id}", "out_0")
}

#[tokio::test]
async fn every_route_needs_the_right_token() {
    let (app, _dir) = app();
    let all = routes();
    assert!(all.len() >= 10, "{all:?}");
    for route in &all {
        let uri = concrete(route.path);
        let method = route.method.as_str();
        // Only the status: an authorised event stream never ends.
        let tried = |token: Option<&'static str>| {
            let (app, uri) = (app.clone(), uri.clone());
            async move {
                let bearer = token.map(|t| format!("Bearer {t}"));
                let mut headers = vec![("content-type", "application/json")];
                if let Some(b) = &bearer {
                    headers.push(("authorization", b));
                }
                crate::in_process::status(&app, method, &uri, &headers).await
            }
        };
        let (none, body) = call(&app, method, &uri, None, "{}").await;
        let wrong = tried(Some("not-a-token")).await;
        let read = tried(Some(READ)).await;
        let control = tried(Some(CONTROL)).await;
        let room = tried(Some(ROOM)).await;
        let denied = StatusCode::UNAUTHORIZED;
        match route.access {
            Access::Public => assert!(none != denied, "{method} {uri} is public"),
            Access::Read | Access::Watch => {
                assert_eq!((none, wrong, room), (denied, denied, denied), "{method} {uri}: {body}");
                assert!(read != denied && control != denied, "{method} {uri}");
            }
            Access::Control => {
                assert_eq!(
                    (none, wrong, read, room),
                    (denied, denied, denied, denied),
                    "{method} {uri}"
                );
                assert!(control != denied, "{method} {uri}");
            }
            Access::Publish => {
                assert_eq!((none, wrong, read), (denied, denied, denied), "{method} {uri}");
                assert!(room != denied && control != denied, "{method} {uri}");
            }
        }
        if none == denied {
            let json: Value = serde_json::from_str(&body).expect("JSON error");
            assert!(json["error"].as_str().is_some_and(|e| e.contains("token")), "{body}");
        }
    }
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
    let mut ids = Vec::new();
    for public in [true, false] {
        let body = serde_json::json!({
            "source": {"kind": "room", "room": "stage"},
            "outputs": [{"kind": "hls"}],
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

    assert_eq!(call(&app, "GET", &status(public), None, "").await.0, StatusCode::OK);
    assert_ne!(
        call(&app, "GET", &playlist(public), None, "").await.0,
        StatusCode::UNAUTHORIZED
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
    assert_ne!(
        call(&app, "GET", &with_query, None, "").await.0,
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
