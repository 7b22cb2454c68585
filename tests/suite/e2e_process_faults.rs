//! The server process itself failing: SIGTERM drains and finalises every broadcast within 5 s; after a SIGKILL,
//! a restarted server closes what the dead one left open and reports it `failed` with reason `server_restart`.

use crate::support::broadcast::Broadcast;
use crate::support::{get_json, publish, wait_for, KillOnDrop, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn hls_broadcast(server: &Server, room: &str) -> Broadcast {
    Broadcast::start(
        server,
        &json!({
            "source": {"kind": "room", "room": room},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1}],
        }),
    )
}

fn wait_live_with_segments(server: &Server, bc: &Broadcast) {
    let url = server.url(&format!("/v1/broadcasts/{}", bc.id));
    wait_for("the broadcast live with 2 segments", Duration::from_secs(30), || {
        (get_json(&url)["state"] == "live" && bc.segments().len() >= 2).then_some(())
    });
}

fn playlist_ended(bc: &Broadcast) -> bool {
    std::fs::read_to_string(&bc.playlist).is_ok_and(|t| t.trim_end().ends_with("#EXT-X-ENDLIST"))
}

fn record(bc: &Broadcast) -> Value {
    let path = bc
        .playlist
        .parent()
        .and_then(|p| p.parent())
        .expect("dir")
        .join("broadcast.json");
    serde_json::from_slice(&std::fs::read(&path).expect("record")).expect("record JSON")
}

#[test]
fn sigterm_finalises_every_broadcast_within_5_s() {
    let mut server = Server::start(&[]);
    let _red: KillOnDrop = publish(&server.whip_url("term"), "red", "color:ff0000");
    let broadcasts: Vec<Broadcast> = (0..3).map(|_| hls_broadcast(&server, "term")).collect();
    for bc in &broadcasts {
        wait_live_with_segments(&server, bc);
    }
    // An operator page following the event stream keeps a connection open for ever: it must not hold up the
    // shutdown.
    let events = crate::support::http()
        .get(server.url("/v1/events"))
        .send()
        .expect("GET /v1/events");
    assert_eq!(events.status().as_u16(), 200);
    let sent = Instant::now();
    let exit = server
        .process
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("the server exits after SIGTERM");
    let took = sent.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    for bc in &broadcasts {
        assert!(playlist_ended(bc), "{} has no ENDLIST", bc.id);
        assert_eq!(record(bc)["state"], "ended", "{}", bc.id);
    }
    println!("3 broadcasts finalised {took:?} after SIGTERM");
    drop(events);
}

#[test]
fn after_sigkill_a_restarted_server_closes_and_fails_what_was_running() {
    let mut server = Server::start(&[]);
    let _red: KillOnDrop = publish(&server.whip_url("crash"), "red", "color:ff0000");
    let running = hls_broadcast(&server, "crash");
    let finished = hls_broadcast(&server, "crash");
    wait_live_with_segments(&server, &running);
    wait_live_with_segments(&server, &finished);
    assert_eq!(finished.stop()["state"], "ended");
    server
        .process
        .signal_and_wait("KILL", Duration::from_secs(5))
        .expect("killed");
    assert!(
        !playlist_ended(&running),
        "a killed server cannot have closed the playlist"
    );

    server.restart(&[]);
    let status = get_json(&server.url(&format!("/v1/broadcasts/{}", running.id)));
    assert_eq!(
        (status["state"].as_str(), status["reason"].as_str()),
        (Some("failed"), Some("server_restart")),
        "{status}"
    );
    assert!(playlist_ended(&running), "the restarted server closes the playlist");
    assert_eq!(
        get_json(&server.url(&format!("/v1/broadcasts/{}", finished.id)))["state"],
        "ended"
    );
    let listed = get_json(&server.url("/v1/broadcasts"))["broadcasts"]
        .as_array()
        .map_or(0, |a| a.len());
    assert_eq!(listed, 2);

    // The restarted server runs new broadcasts as usual.
    let again = hls_broadcast(&server, "crash");
    wait_live_with_segments(&server, &again);
    assert_eq!(again.stop()["state"], "ended");
}

/// Waits up to `bound` for `publisher` to exit; its exit status.
fn exit_within(publisher: &mut KillOnDrop, bound: Duration) -> std::process::ExitStatus {
    wait_for("the publisher to exit", bound, || publisher.0.try_wait().ok().flatten())
}

/// The id of the participant called `name` in `room`, once it is there.
fn participant_id(server: &Server, room: &str, name: &str) -> String {
    wait_for(&format!("{name} in room {room}"), Duration::from_secs(20), || {
        let listing = get_json(&server.url(&format!("/v1/rooms/{room}")));
        listing["participants"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_str().map(str::to_string))
    })
}

/// A publisher whose server died does not go on sending to a dead port: it exits, with an error.
#[test]
fn a_publisher_exits_non_zero_once_its_server_is_killed() {
    let mut server = Server::start(&[]);
    let mut red: KillOnDrop = publish(&server.whip_url("orphans"), "red", "color:ff0000");
    participant_id(&server, "orphans", "red");
    assert!(red.0.try_wait().expect("try_wait").is_none(), "the publisher runs");
    server
        .process
        .signal_and_wait("KILL", Duration::from_secs(5))
        .expect("killed");
    let killed_at = Instant::now();
    let status = exit_within(&mut red, Duration::from_secs(15));
    assert!(!status.success(), "{status:?}");
    assert!(
        killed_at.elapsed() >= Duration::from_secs(4),
        "gave up after {:?}, within the grace period",
        killed_at.elapsed()
    );
}

/// A publisher whose session was removed (WHIP resource deleted) while the server lives on exits with an error.
#[test]
fn a_publisher_exits_non_zero_once_its_whip_session_is_gone() {
    let server = Server::start(&[]);
    let mut red: KillOnDrop = publish(&server.whip_url("orphans"), "red", "color:ff0000");
    let mut green: KillOnDrop = publish(&server.whip_url("orphans"), "green", "color:00ff00");
    let id = participant_id(&server, "orphans", "red");
    participant_id(&server, "orphans", "green");
    let deleted = crate::support::http()
        .delete(server.url(&format!("/v1/rooms/orphans/whip/{id}")))
        .send()
        .expect("DELETE");
    assert_eq!(deleted.status(), 200);
    let status = exit_within(&mut red, Duration::from_secs(15));
    assert!(!status.success(), "{status:?}");
    // The other one, still in the room, publishes on.
    assert!(green.0.try_wait().expect("try_wait").is_none(), "green exited too");
    participant_id(&server, "orphans", "green");
}

/// The same for a Janus publisher whose Janus died.
#[test]
fn a_janus_publisher_exits_non_zero_once_janus_is_killed() {
    use crate::support::janus::{Janus, ROOM, ROOM_PIN};
    let janus = Janus::start();
    let mut red = crate::support::publish_janus(&janus.url(), ROOM, ROOM_PIN, "red", "color:ff0000");
    wait_for("red in Janus", Duration::from_secs(20), || {
        janus
            .list_participants()
            .iter()
            .any(|(name, _)| name == "red")
            .then_some(())
    });
    drop(janus);
    let status = exit_within(&mut red, Duration::from_secs(15));
    assert!(!status.success(), "{status:?}");
}
