//! WHEP as a source: a broadcast pulls another broadcast's WHEP output (a cascade) as a participant, beside a
//! participant of its own built-in room, and composites both; the stream's token and URL path never show; when
//! the upstream's WHEP output goes away the pulled participant leaves, and when it is back it is pulled again
//! as a new participant.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::media::{close_to, last_frame};
use crate::support::{http, publish, wait_for, Server};
use serde_json::{json, Value};
use std::time::Duration;

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const W: usize = 640;
const H: usize = 360;
/// The stream's bearer token: sent to the WHEP server, shown nowhere.
const TOKEN: &str = "whep-pull-token-9d41";

/// The id of the participant called `name`.
fn participant_id(status: &Value, name: &str) -> Option<String> {
    status["participants"].as_array()?.iter().find(|p| p["name"] == name)?["id"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn a_broadcast_pulls_another_over_whep_beside_its_own_room() {
    let server = Server::start(&[]);
    let upstream = Broadcast::start(
        &server,
        &json!({"source": {"kind": "room", "room": "up"}, "video": {"width": W, "height": H},
                "outputs": [{"kind": "whep"}]}),
    );
    let _red = publish(&server.whip_url("up"), "red", "color:ff0000");
    wait_for(
        "the upstream live with its participant",
        Duration::from_secs(20),
        || (participant_names(&upstream.status()) == ["red"]).then_some(()),
    );
    let whep_url = server.url(&format!("/v1/broadcasts/{}/whep", upstream.id));

    let cascade = Broadcast::start(
        &server,
        &json!({"source": {"kind": "whep", "room": "studio",
                           "streams": [{"url": whep_url, "token": TOKEN, "name": "Upstream"}]},
                "video": {"width": W, "height": H},
                "outputs": [{"kind": "hls", "segment_seconds": 1}]}),
    );
    let _green = publish(&server.whip_url("studio"), "green", "color:00ff00");
    wait_for("both participants in the cascade", Duration::from_secs(20), || {
        let mut names = participant_names(&cascade.status());
        names.sort();
        (names == ["Upstream", "green"]).then_some(())
    });
    // What the API shows of the source: the URL's origin, the token starred.
    let status = wait_for("the stream pulling", Duration::from_secs(5), || {
        let s = cascade.status();
        (s["source"]["streams"][0]["state"] == "pulling").then_some(s)
    });
    let stream = &status["source"]["streams"][0];
    assert_eq!(
        stream["url"],
        format!("{}/***", server.url("").trim_end_matches('/')),
        "{status}"
    );
    assert_eq!(
        (&stream["token"], &stream["name"]),
        (&json!("***"), &json!("Upstream")),
        "{status}"
    );

    // Composited: two tiles side by side in the 16:9 grid, one red (the upstream's picture, encoded twice), one
    // green, in either order.
    let centres = [(W as i32 / 4, H as i32 / 2), (3 * W as i32 / 4, H as i32 / 2)];
    wait_for(
        "red and green tiles in the cascade's HLS",
        Duration::from_secs(20),
        || {
            let frame = last_frame(cascade.segments().last()?, W, H)?;
            let [left, right] = centres.map(|(x, y)| frame.pixel(x, y));
            let shown = (close_to(left, RED, 60) && close_to(right, GREEN, 60))
                || (close_to(left, GREEN, 60) && close_to(right, RED, 60));
            shown.then_some(())
        },
    );

    // The upstream's WHEP output ends: the pulled participant leaves (no media for 5 s), the room's stays.
    let first = participant_id(&cascade.status(), "Upstream").expect("the pulled participant");
    let removed = http()
        .delete(server.url(&format!("/v1/broadcasts/{}/outputs/out_0", upstream.id)))
        .send()
        .expect("DELETE the upstream's whep output");
    assert!(removed.status().is_success(), "{}", removed.status());
    wait_for("the pulled participant gone", Duration::from_secs(12), || {
        (participant_names(&cascade.status()) == ["green"]).then_some(())
    });
    // The status says why: the upstream has no whep output now.
    let status = wait_for("the stream retrying after a 404", Duration::from_secs(10), || {
        let s = cascade.status();
        let stream = &s["source"]["streams"][0];
        (stream["state"] == "retrying" && stream["error"].as_str()?.contains("404")).then_some(s)
    });
    assert!(!status.to_string().contains(TOKEN), "{status}");
    // Back: pulled again, as a new participant.
    let added = http()
        .post(server.url(&format!("/v1/broadcasts/{}/outputs", upstream.id)))
        .json(&json!({"kind": "whep"}))
        .send()
        .expect("add the whep output again");
    assert_eq!(added.status().as_u16(), 201);
    let again = wait_for("the stream pulled again", Duration::from_secs(20), || {
        participant_id(&cascade.status(), "Upstream")
    });
    assert_ne!(again, first, "a new participant for the new pull");
    let stream = cascade.status()["source"]["streams"][0].clone();
    assert_eq!(
        (&stream["state"], &stream["error"]),
        (&json!("pulling"), &Value::Null),
        "{stream}"
    );

    assert_eq!(
        Broadcast::output(&upstream.status(), "out_1")["viewers"],
        1,
        "the cascade is the upstream's one viewer"
    );
    assert_eq!(cascade.stop()["state"], "ended");
    // The pull's session was ended with a DELETE (a viewer let go for silence would take 10-15 s).
    wait_for("the upstream's viewer gone", Duration::from_secs(2), || {
        (Broadcast::output(&upstream.status(), "out_1")["viewers"] == 0).then_some(())
    });
    assert_eq!(upstream.stop()["state"], "ended");
    let log = server.log_text();
    assert!(!log.contains(TOKEN), "the token is in the log");
    assert!(!log.contains(&whep_url), "the WHEP URL is in the log");
    server.check_log();
}
