//! The built-in rooms over WHIP, as the README has them: a join answers `201` with a `Location`; `DELETE` on it
//! leaves the room and every broadcast watching it, and `GET` on it is `404` once the session is gone;
//! broadcasts watch a room without being listed in it. In-process: the router, real webrtcbin legs answering
//! an offer from a peer that never connects, real (small) broadcasts.

use crate::in_process::{send, stopping_broadcasts_after};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Longer than any test here: the joins never send media, and must not be removed as silent meanwhile.
const FLAGS: [&str; 2] = ["--media-timeout-s", "60"];

fn app() -> (axum::Router, crate::in_process::AppDir) {
    crate::in_process::app(&FLAGS)
}

/// Starts a small HLS broadcast of `room`; its id.
async fn start_broadcast(app: &axum::Router, room: &str) -> String {
    let body = json!({
        "source": {"kind": "room", "room": room},
        "video": {"width": 320, "height": 180},
        "outputs": [{"kind": "hls"}],
    });
    let headers = [("content-type", "application/json")];
    let (code, reply) = send(app, "POST", "/v1/broadcasts", &headers, &body.to_string()).await;
    assert_eq!(code, StatusCode::CREATED, "{reply}");
    let reply: Value = serde_json::from_str(&reply).expect("JSON");
    reply["id"].as_str().expect("id").to_string()
}

/// Joins `room` as `name` over WHIP; the `Location` of the session.
async fn join(app: &axum::Router, room: &str, name: &str) -> String {
    crate::in_process::join_whip(app, &format!("/v1/rooms/{room}/whip?name={name}"), &[]).await
}

/// `(id, name)` of each participant the room lists, in order.
async fn listed(app: &axum::Router, room: &str) -> Vec<(String, String)> {
    let (code, body) = send(app, "GET", &format!("/v1/rooms/{room}"), &[], "").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    body["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").into(),
                p["name"].as_str().expect("name").into(),
            )
        })
        .collect()
}

/// Polls the broadcast's status (30 s at most) until its participants' names are `names`, in any order.
async fn wait_for_participants(app: &axum::Router, broadcast: &str, names: &[&str]) {
    let mut want: Vec<&str> = names.to_vec();
    want.sort_unstable();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = send(app, "GET", &format!("/v1/broadcasts/{broadcast}"), &[], "").await;
        let status: Value = serde_json::from_str(&status).expect("JSON");
        let mut got: Vec<String> = crate::support::broadcast::participant_names(&status);
        got.sort_unstable();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "broadcast participants {got:?}, want {want:?}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The session id a `Location` names (its last segment).
fn session_id(location: &str) -> String {
    location.rsplit('/').next().expect("id").to_string()
}

#[tokio::test]
async fn deleting_the_whip_location_leaves_the_room_and_the_broadcast() {
    let (app, _dir) = app();
    let checks = {
        let app = app.clone();
        async move {
            let broadcast = start_broadcast(&app, "leaving").await;
            let alice = join(&app, "leaving", "alice").await;
            let bob = join(&app, "leaving", "bob").await;
            for location in [&alice, &bob] {
                assert!(location.starts_with("/v1/rooms/leaving/whip/p_"), "{location}");
                let (code, body) = send(&app, "GET", location, &[], "").await;
                assert_eq!(code, StatusCode::OK, "GET {location}: {body}");
            }
            wait_for_participants(&app, &broadcast, &["alice", "bob"]).await;

            let (code, body) = send(&app, "DELETE", &alice, &[], "").await;
            assert_eq!(code, StatusCode::OK, "DELETE {alice}: {body}");
            assert_eq!(listed(&app, "leaving").await, [(session_id(&bob), "bob".to_string())]);
            for method in ["GET", "DELETE"] {
                let (code, body) = send(&app, method, &alice, &[], "").await;
                assert_eq!(code, StatusCode::NOT_FOUND, "{method} {alice} once left: {body}");
            }
            wait_for_participants(&app, &broadcast, &["bob"]).await;
            // A plain RTP participant of the same room is no WHIP session: its id under /whip/ is not found.
            let rtp = r#"{"name": "carol", "tracks": [{"kind": "audio", "codec": "opus", "payload_type": 111, "clock_rate": 48000}]}"#;
            let json = [("content-type", "application/json")];
            let (code, body) = send(&app, "POST", "/v1/rooms/leaving/rtp", &json, rtp).await;
            assert_eq!(code, StatusCode::CREATED, "{body}");
            let carol = serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["id"]
                .as_str()
                .expect("id")
                .to_string();
            let (code, body) = send(&app, "GET", &format!("/v1/rooms/leaving/whip/{carol}"), &[], "").await;
            assert_eq!(
                code,
                StatusCode::NOT_FOUND,
                "GET of an RTP participant as a WHIP session: {body}"
            );
            let (code, _) = send(&app, "DELETE", &format!("/v1/rooms/leaving/rtp/{carol}"), &[], "").await;
            assert_eq!(code, StatusCode::OK);

            let (code, _) = send(&app, "DELETE", &bob, &[], "").await;
            assert_eq!(code, StatusCode::OK);
            wait_for_participants(&app, &broadcast, &[]).await;
        }
    };
    stopping_broadcasts_after(&app, None, checks).await;
}

#[tokio::test]
async fn broadcasts_watching_a_room_are_not_listed_in_it() {
    let (app, _dir) = app();
    let checks = {
        let app = app.clone();
        async move {
            // Two broadcasts watch the room before anyone is in it, and one more after.
            let first = start_broadcast(&app, "watched").await;
            let second = start_broadcast(&app, "watched").await;
            assert_eq!(listed(&app, "watched").await, []);
            let carol = join(&app, "watched", "carol").await;
            let third = start_broadcast(&app, "watched").await;
            for broadcast in [&first, &second, &third] {
                // Each one sees carol, so it does watch this room.
                wait_for_participants(&app, broadcast, &["carol"]).await;
            }
            assert_eq!(
                listed(&app, "watched").await,
                [(session_id(&carol), "carol".to_string())]
            );
            let (code, _) = send(&app, "DELETE", &carol, &[], "").await;
            assert_eq!(code, StatusCode::OK);
            assert_eq!(listed(&app, "watched").await, []);
        }
    };
    stopping_broadcasts_after(&app, None, checks).await;
}
