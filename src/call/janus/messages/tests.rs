//! Janus 1.1.2 messages as the HTTP transport delivers them (shapes from the Janus VideoRoom docs and what our
//! test Janus sent), parsed into our types.

use super::*;
use serde_json::json;

fn parse(text: &str) -> Message {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn create_and_attach_replies_carry_the_new_id() {
    let created = parse(r#"{"janus": "success", "transaction": "a1b2c3d4e5f60718", "data": {"id": 3825791204558717}}"#);
    assert!(matches!(
        created,
        Message::Success {
            data: Some(Created { id: 3825791204558717 }),
            ..
        }
    ));
    let attached = parse(
        r#"{"janus": "success", "session_id": 3825791204558717, "transaction": "0718a1b2c3d4e5f6",
            "data": {"id": 6159402271553290}}"#,
    );
    assert!(matches!(
        attached,
        Message::Success {
            data: Some(Created { id: 6159402271553290 }),
            ..
        }
    ));
}

#[test]
fn core_errors_keep_code_and_reason() {
    let lost = parse(
        r#"{"janus": "error", "session_id": 1, "transaction": "x",
            "error": {"code": 458, "reason": "No such session 1"}}"#,
    );
    let Message::Error { error } = lost else {
        panic!("{lost:?}")
    };
    assert_eq!((error.code, error.reason.as_str()), (458, "No such session 1"));
}

#[test]
fn ack_keepalive_and_unknown_kinds_parse() {
    assert!(matches!(
        parse(r#"{"janus": "ack", "session_id": 1, "transaction": "x"}"#),
        Message::Ack
    ));
    assert!(matches!(
        parse(r#"{"janus": "keepalive", "session_id": 1}"#),
        Message::Keepalive
    ));
    let webrtcup = r#"{"janus": "webrtcup", "session_id": 1, "sender": 2}"#;
    assert!(matches!(parse(webrtcup), Message::Other));
    let media = r#"{"janus": "media", "session_id": 1, "sender": 2, "mid": "1", "type": "video", "receiving": true}"#;
    assert!(matches!(parse(media), Message::Other));
    let hangup = parse(r#"{"janus": "hangup", "session_id": 1, "sender": 2, "reason": "DTLS alert"}"#);
    assert!(matches!(hangup, Message::Hangup { reason: Some(r) } if r == "DTLS alert"));
}

#[test]
fn listparticipants_lists_publishers_and_others() {
    let reply = parse(
        r#"{"janus": "success", "session_id": 1, "transaction": "x", "sender": 2,
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {
                "videoroom": "participants", "room": 1234,
                "participants": [
                    {"id": 4207312964590563, "display": "Alice", "publisher": true, "talking": false},
                    {"id": 811409357101312, "publisher": false}
                ]}}}"#,
    );
    let Some(VideoRoom::Participants { participants }) = reply.videoroom() else {
        panic!("{reply:?}")
    };
    assert_eq!(participants.len(), 2);
    assert_eq!(participants[0].id, 4207312964590563);
    assert_eq!(participants[0].display.as_deref(), Some("Alice"));
    assert!(participants[0].publisher);
    assert_eq!(participants[1].display, None);
    assert!(!participants[1].publisher);
}

#[test]
fn plugin_errors_are_events_with_a_code() {
    let reply = parse(
        r#"{"janus": "success", "session_id": 1, "transaction": "x", "sender": 2,
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {
                "videoroom": "event", "error_code": 426, "error": "No such room (1234)"}}}"#,
    );
    assert_eq!(
        reply.videoroom().and_then(VideoRoom::error),
        Some((426, "No such room (1234)"))
    );
    let started = parse(
        r#"{"janus": "event", "session_id": 1, "sender": 2, "transaction": "x",
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "event", "room": 1234,
                "started": "ok"}}}"#,
    );
    assert!(matches!(
        started.videoroom(),
        Some(VideoRoom::Event { error_code: None, .. })
    ));
    assert_eq!(started.videoroom().and_then(VideoRoom::error), None);
}

#[test]
fn attached_maps_mids_to_feeds_with_an_offer() {
    let event = parse(
        r#"{"janus": "event", "session_id": 1, "sender": 2, "transaction": "x",
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {
                "videoroom": "attached", "room": 1234,
                "streams": [
                    {"type": "audio", "active": true, "mindex": 0, "mid": "0", "ready": false, "send": true,
                     "feed_id": 4207312964590563, "feed_display": "Alice", "feed_mid": "0", "codec": "opus"},
                    {"type": "video", "active": true, "mindex": 1, "mid": "1", "ready": false, "send": true,
                     "feed_id": 4207312964590563, "feed_display": "Alice", "feed_mid": "1", "codec": "vp8",
                     "simulcast": {"substream": 2, "temporal": 2}}
                ]}},
            "jsep": {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=VideoRoom 1234\r\n"}}"#,
    );
    let Message::Event {
        plugindata: Some(p),
        jsep: Some(jsep),
    } = &event
    else {
        panic!("{event:?}")
    };
    assert_eq!(jsep.kind, JsepKind::Offer);
    assert!(jsep.sdp.starts_with("v=0"));
    let VideoRoom::Attached { streams } = &p.data else {
        panic!("{p:?}")
    };
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[1].mid.as_deref(), Some("1"));
    assert_eq!(streams[1].kind, MediaKind::Video);
    assert_eq!(streams[1].feed_id, Some(4207312964590563));
    assert_eq!(streams[1].feed_display.as_deref(), Some("Alice"));
    assert!(streams[0].active && streams[0].kind == MediaKind::Audio);
}

#[test]
fn updated_marks_a_gone_feed_inactive() {
    let event = parse(
        r#"{"janus": "event", "session_id": 1, "sender": 2,
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {
                "videoroom": "updated", "room": 1234,
                "streams": [
                    {"type": "audio", "active": false, "mindex": 0, "mid": "0", "ready": false, "send": false},
                    {"type": "video", "active": true, "mindex": 1, "mid": "1", "ready": true, "send": true,
                     "feed_id": 99, "feed_mid": "1", "codec": "h264"},
                    {"type": "data", "active": true, "mindex": 2, "mid": "2", "ready": true, "send": true,
                     "sources": 1}
                ]}},
            "jsep": {"type": "offer", "sdp": "v=0\r\n"}}"#,
    );
    let Some(VideoRoom::Updated { streams }) = event.videoroom() else {
        panic!("{event:?}")
    };
    assert!(!streams[0].active);
    assert_eq!(streams[0].feed_id, None);
    assert_eq!(streams[1].feed_display, None);
    assert_eq!(streams[2].kind, MediaKind::Data);
    // An update without renegotiation has no jsep and may have no streams.
    let quiet = parse(
        r#"{"janus": "event", "session_id": 1, "sender": 2,
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "updated", "room": 1234}}}"#,
    );
    assert!(matches!(&quiet, Message::Event { jsep: None, .. }));
    assert!(matches!(quiet.videoroom(), Some(VideoRoom::Updated { streams }) if streams.is_empty()));
}

#[test]
fn destroyed_and_unknown_videoroom_kinds_parse() {
    let destroyed = parse(
        r#"{"janus": "event", "session_id": 1, "sender": 2,
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "destroyed", "room": 1234}}}"#,
    );
    assert!(matches!(destroyed.videoroom(), Some(VideoRoom::Destroyed)));
    let talking = parse(
        r#"{"janus": "event", "session_id": 1, "sender": 2,
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "talking", "room": 1234,
                "id": 5, "audio-level-dBov-avg": -42.5}}}"#,
    );
    assert!(matches!(talking.videoroom(), Some(VideoRoom::Other)));
}

#[test]
fn requests_serialize_as_the_videoroom_expects() {
    let join = Request::Join {
        ptype: "subscriber",
        room: 1234,
        streams: vec![Feed { feed: 7 }, Feed { feed: 8 }],
        pin: Some("secret"),
    };
    assert_eq!(
        serde_json::to_value(&join).unwrap(),
        json!({"request": "join", "ptype": "subscriber", "room": 1234, "streams": [{"feed": 7}, {"feed": 8}],
               "pin": "secret"})
    );
    let without_pin = Request::Join {
        ptype: "subscriber",
        room: 1,
        streams: vec![],
        pin: None,
    };
    assert!(serde_json::to_value(&without_pin).unwrap().get("pin").is_none());
    assert_eq!(
        serde_json::to_value(Request::ListParticipants { room: 1234 }).unwrap(),
        json!({"request": "listparticipants", "room": 1234})
    );
    assert_eq!(
        serde_json::to_value(Request::Start).unwrap(),
        json!({"request": "start"})
    );
    assert_eq!(
        serde_json::to_value(Request::Configure {
            streams: vec![Substream {
                mid: "1".into(),
                substream: 0
            }]
        })
        .unwrap(),
        json!({"request": "configure", "streams": [{"mid": "1", "substream": 0}]})
    );
    let answer = Jsep {
        kind: JsepKind::Answer,
        sdp: "v=0\r\n".into(),
    };
    assert_eq!(
        serde_json::to_value(answer).unwrap(),
        json!({"type": "answer", "sdp": "v=0\r\n"})
    );
}
