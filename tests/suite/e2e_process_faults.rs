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
