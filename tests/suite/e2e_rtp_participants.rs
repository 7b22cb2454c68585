//! Plain RTP participants of a built-in room (`POST /v1/rooms/{room}/rtp`): a GStreamer sender (rtpbin with
//! RTCP both ways, as an SFU's forwarder is) is composited by a broadcast watching the room; a keyframe request
//! (RTCP FIR) reaches the sender and the picture recovers after its packets were interrupted; packets from a second
//! address are ignored; a participant leaves with its DELETE, or when its RTP stops; bad requests name the field; a
//! real Janus' `rtp_forward` feeds a broadcast and gets callcast's keyframe requests; an SDP offer (H.264 + Opus);
//! SRTP keyed in JSON (a wrong key never composited, the key never leaked) and in an SDP offer (`a=crypto`), with
//! SRTCP keyframe requests back; rtcp-mux; a declared RTCP return port.

use crate::support::audio::{mono_samples, tone_level};
use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::janus::{Janus, ROOM, ROOM_PIN};
use crate::support::media::{close_to, decode_last_frame, Frame};
use crate::support::{http, publish_janus, wait_for, KillOnDrop, Server};
use gst::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const W: usize = 640;
const H: usize = 360;
const GREEN: [u8; 3] = [0, 255, 0];
const YELLOW: [u8; 3] = [255, 255, 0];
const RED: [u8; 3] = [255, 0, 0];
const TONE_HZ: f64 = 1000.0;
/// The whole canvas is the only participant's tile (grid of one); its centre is far from any edge or label.
const CENTRE: (i32, i32) = (W as i32 / 2, H as i32 / 2);

/// `pairs` port pairs (two: exactly one participant with video and audio); `offset` keeps each test's range its
/// own.
fn port_range(offset: u16, pairs: u16) -> (u16, u16) {
    let base = 42_000 + (std::process::id() % 500) as u16 * 8 + offset * 4_000;
    (base, base + pairs * 2 - 1)
}

fn newest_frame(playlist: &Path) -> Result<Frame, String> {
    let text = std::fs::read_to_string(playlist).map_err(|e| format!("playlist: {e}"))?;
    let dir = playlist.parent().expect("dir");
    let newest: PathBuf = dir.join(text.lines().rfind(|l| l.ends_with(".ts")).ok_or("no segment yet")?);
    decode_last_frame(&newest, W, H)
}

fn centre_is(playlist: &Path, colour: [u8; 3]) -> Option<()> {
    let frame = newest_frame(playlist).ok()?;
    close_to(frame.pixel(CENTRE.0, CENTRE.1), colour, 60).then_some(())
}

/// A sender the way an SFU's forwarder is one: video through an rtpbin that sends RTP, sends RTCP from its RTCP
/// socket and hears RTCP on that same socket (so PLI reach the encoder), plus Opus audio.
struct Sender {
    pipeline: gst::Pipeline,
    /// Upstream keyframe requests that reached the encoder (rtpbin turns a received PLI into one).
    keyframe_requests: Arc<AtomicUsize>,
}

/// How a test sender protects and routes its packets (the plain defaults are the forwarder above).
#[derive(Default)]
struct SenderOptions {
    /// SRTP-protects the video and its RTCP with this key || salt, in `srtp_suite`.
    srtp_key: Option<Vec<u8>>,
    srtp_suite: TestSuite,
    /// Decrypts the RTCP it hears with this one (callcast's key from an SDP answer); default: `srtp_key`.
    srtcp_in_key: Option<Vec<u8>>,
    /// rtcp-mux: RTP and RTCP leave from one socket to the RTP port, and RTCP is heard on it.
    rtcp_mux: bool,
    /// Hears RTCP on this port, and sends its own from another socket (as a sender with a declared return port).
    rtcp_listen: Option<u16>,
}

/// An SRTP suite as srtpenc and srtpdec name its parts (RFC 3711, RFC 7714: GCM authenticates by itself).
#[derive(Clone, Copy)]
struct TestSuite {
    cipher: &'static str,
    rtp_auth: &'static str,
    rtcp_auth: &'static str,
}

const AES_CM_128_HMAC_SHA1_80: TestSuite = TestSuite {
    cipher: "aes-128-icm",
    rtp_auth: "hmac-sha1-80",
    rtcp_auth: "hmac-sha1-80",
};
const AEAD_AES_128_GCM: TestSuite = TestSuite {
    cipher: "aes-128-gcm",
    rtp_auth: "null",
    rtcp_auth: "null",
};
const AEAD_AES_256_GCM: TestSuite = TestSuite {
    cipher: "aes-256-gcm",
    rtp_auth: "null",
    rtcp_auth: "null",
};

impl Default for TestSuite {
    fn default() -> Self {
        AES_CM_128_HMAC_SHA1_80
    }
}

/// What `srtpdec`'s `request-key` wants: the key and its suite.
fn srtp_key_caps(key: &[u8], suite: TestSuite) -> gst::Caps {
    gst::Caps::builder("application/x-srtp")
        .field("srtp-key", gst::Buffer::from_slice(key.to_vec()))
        .field("srtp-cipher", suite.cipher)
        .field("srtp-auth", suite.rtp_auth)
        .field("srtcp-cipher", suite.cipher)
        .field("srtcp-auth", suite.rtcp_auth)
        .build()
}

impl Sender {
    fn start(video: (u16, u16), audio: Option<u16>, colour: u32) -> Self {
        Self::start_with(video, audio, colour, &SenderOptions::default())
    }

    fn start_with(video: (u16, u16), audio: Option<u16>, colour: u32, options: &SenderOptions) -> Self {
        gst::init().expect("gst init");
        let srtp = options.srtp_key.is_some();
        let (elements, protect_rtp, protect_rtcp, unprotect_rtcp, rtcp_caps) = if srtp {
            (
                "srtpenc name=e srtpdec name=d",
                "e.rtp_sink_0 e.rtp_src_0 !",
                "e.rtcp_sink_0 e.rtcp_src_0 !",
                "d.rtcp_sink d.rtcp_src !",
                "application/x-srtcp",
            )
        } else {
            ("", "", "", "", "application/x-rtcp")
        };
        let rtcp_to = if options.rtcp_mux { video.0 } else { video.1 };
        let description = format!(
            "rtpbin name=b rtp-profile=avpf {elements} \
             videotestsrc name=v is-live=true pattern=solid-color foreground-color={colour} \
               ! video/x-raw,width=320,height=240,framerate=15/1 \
               ! vp8enc name=enc deadline=1 keyframe-max-dist=100000 ! rtpvp8pay pt=100 ssrc=1234 ! b.send_rtp_sink_0 \
             b.send_rtp_src_0 ! valve name=cut ! {protect_rtp} udpsink name=rtp_out host=127.0.0.1 port={} \
               sync=false async=false \
             b.send_rtcp_src_0 ! {protect_rtcp} udpsink name=rtcp_out host=127.0.0.1 port={rtcp_to} sync=false \
               async=false \
             udpsrc name=rtcp_in address=127.0.0.1 port={} caps={rtcp_caps} ! {unprotect_rtcp} b.recv_rtcp_sink_0 {}",
            video.0,
            options.rtcp_listen.unwrap_or(0),
            audio.map_or(String::new(), |port| format!(
                "audiotestsrc is-live=true freq={TONE_HZ} volume=0.5 ! audioconvert ! audioresample ! opusenc \
                 ! rtpopuspay pt=111 ! udpsink host=127.0.0.1 port={port} sync=false async=false"
            ))
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap_or_else(|e| panic!("sender pipeline: {e}\n{description}"))
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        if let Some(key) = &options.srtp_key {
            let suite = options.srtp_suite;
            let enc = pipeline.by_name("e").expect("srtpenc");
            enc.set_property("key", gst::Buffer::from_slice(key.clone()));
            enc.set_property_from_str("rtp-cipher", suite.cipher);
            enc.set_property_from_str("rtp-auth", suite.rtp_auth);
            enc.set_property_from_str("rtcp-cipher", suite.cipher);
            enc.set_property_from_str("rtcp-auth", suite.rtcp_auth);
            let heard = options.srtcp_in_key.clone().unwrap_or_else(|| key.clone());
            let dec = pipeline.by_name("d").expect("srtpdec");
            dec.connect("request-key", false, move |_| {
                Some(srtp_key_caps(&heard, suite).to_value())
            });
        }
        // Symmetric RTCP: send from the socket we listen on, so callcast's replies come back to it (with rtcp-mux
        // the RTP leaves from it too: one address for both).
        let rtcp_in = pipeline.by_name("rtcp_in").expect("rtcp_in");
        rtcp_in.set_state(gst::State::Ready).expect("bind rtcp_in");
        let socket = rtcp_in.property::<Option<gio::Socket>>("used-socket");
        let mut senders = vec!["rtcp_out"];
        if options.rtcp_listen.is_some() {
            senders.clear();
        }
        if options.rtcp_mux {
            senders.push("rtp_out");
        }
        for name in senders {
            let sink = pipeline.by_name(name).expect("udpsink");
            sink.set_property("socket", socket.clone());
            sink.set_property("close-socket", false);
        }
        let keyframe_requests = Arc::new(AtomicUsize::new(0));
        let count = keyframe_requests.clone();
        let enc_src = pipeline
            .by_name("enc")
            .and_then(|e| e.static_pad("src"))
            .expect("enc src");
        enc_src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if info.event().is_some_and(|e| gst_video::ForceKeyUnitEvent::is(e)) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            gst::PadProbeReturn::Ok
        });
        pipeline.set_state(gst::State::Playing).expect("sender playing");
        Self {
            pipeline,
            keyframe_requests,
        }
    }

    fn set_colour(&self, colour: u32) {
        let source = self.pipeline.by_name("v").expect("videotestsrc");
        source.set_property("foreground-color", colour);
    }

    /// Drops (or passes again) every RTP packet the video sends: a network outage as the receiver sees it.
    fn interrupt(&self, cut: bool) {
        self.pipeline.by_name("cut").expect("valve").set_property("drop", cut);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Another machine's sender (127.0.0.2) aiming red video at the participant's port, with the sender's SSRC.
fn intruder(port: u16) -> KillOnDrop {
    let child = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "is-live=true",
            "pattern=solid-color",
            "foreground-color=0xffff0000",
            "!",
        ])
        .args([
            "video/x-raw,width=320,height=240,framerate=15/1",
            "!",
            "vp8enc",
            "deadline=1",
            "!",
        ])
        .args([
            "rtpvp8pay",
            "pt=100",
            "ssrc=1234",
            "!",
            "udpsink",
            "host=127.0.0.1",
            "bind-address=127.0.0.2",
        ])
        .arg(format!("port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gst-launch-1.0");
    KillOnDrop(child)
}

fn join(server: &Server, room: &str, body: &Value) -> reqwest::blocking::Response {
    http()
        .post(server.url(&format!("/v1/rooms/{room}/rtp")))
        .json(body)
        .send()
        .expect("POST rtp")
}

fn alice() -> Value {
    json!({"name": "Alice", "tracks": [
        {"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000, "ssrc": 1234},
        {"kind": "audio", "codec": "opus", "payload_type": 111, "clock_rate": 48000, "channels": 2},
    ]})
}

fn names(bc: &Broadcast) -> Vec<String> {
    participant_names(&bc.status())
}

#[test]
fn rtp_participant_is_composited_asked_for_keyframes_and_leaves() {
    let (first, last) = port_range(0, 2);
    let range = format!("{first}-{last}");
    let server = Server::start(&["--rtp-port-range", &range, "--media-timeout-s", "3"]);
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "rtp"},
            "layout": {"template": "grid"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
        }),
    );

    // Join: the ports are the range's two pairs, RTP even and RTCP next to it.
    let posted = Instant::now();
    let response = join(&server, "rtp", &alice());
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().expect("location").to_string();
    let joined: Value = response.json().expect("json");
    let id = joined["id"].as_str().expect("id");
    assert_eq!(location, format!("/v1/rooms/rtp/rtp/{id}"));
    assert_eq!(joined["participant_id"], joined["id"]);
    assert_eq!(joined["address"], "127.0.0.1");
    let port = |i: usize, key: &str| joined["tracks"][i][key].as_u64().expect("port") as u16;
    assert_eq!(
        (&joined["tracks"][0]["kind"], &joined["tracks"][1]["kind"]),
        (&json!("video"), &json!("audio"))
    );
    let mut ports = vec![
        port(0, "port"),
        port(0, "rtcp_port"),
        port(1, "port"),
        port(1, "rtcp_port"),
    ];
    ports.sort();
    assert_eq!(ports, vec![first, first + 1, first + 2, first + 3]);
    assert_eq!(port(0, "rtcp_port"), port(0, "port") + 1);

    // The range is used up: the next join waits.
    let refused = join(&server, "rtp", &alice());
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"), "503 without Retry-After");

    // On air: green fills the canvas, and the tone is in the sound.
    let sender = Sender::start(
        (port(0, "port"), port(0, "rtcp_port")),
        Some(port(1, "port")),
        0xff00ff00,
    );
    wait_for("Alice's green on air", Duration::from_secs(20), || {
        centre_is(&bc.playlist, GREEN)
    });
    println!(
        "POST .../rtp to first frame on air (HLS segment written): {} ms",
        posted.elapsed().as_millis()
    );
    assert_eq!(names(&bc), vec!["Alice".to_string()]);
    let newest = bc.segments().pop().expect("a segment");
    let samples = mono_samples(&newest);
    let (level, floor) = (tone_level(&samples, TONE_HZ), tone_level(&samples, 1700.0));
    println!("tone {level:.4}, floor {floor:.4}");
    assert!(level > 0.01 && level > 10.0 * floor, "tone {level} floor {floor}");

    // A second source aiming at the same port is ignored: red never shows.
    let intruder = intruder(port(0, "port"));
    let watched_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watched_until {
        if let Ok(frame) = newest_frame(&bc.playlist) {
            let pixel = frame.pixel(CENTRE.0, CENTRE.1);
            assert!(!close_to(pixel, RED, 60), "the intruder's red is on air");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(intruder);

    // Packets lost for a while, and the picture changed meanwhile: only a keyframe the sender makes on
    // callcast's request (it makes none by itself) brings the new colour on air.
    let asked_before = sender.keyframe_requests.load(Ordering::SeqCst);
    sender.interrupt(true);
    sender.set_colour(0xffffff00);
    std::thread::sleep(Duration::from_millis(1000)); // the outage itself
    sender.interrupt(false);
    wait_for("yellow on air after the outage", Duration::from_secs(15), || {
        centre_is(&bc.playlist, YELLOW)
    });
    let asked = sender.keyframe_requests.load(Ordering::SeqCst) - asked_before;
    println!("keyframe requests that reached the sender after the outage: {asked}");
    assert!(asked >= 1, "no keyframe request reached the sender");

    // DELETE removes the participant and its tile; the ports come back for the next one.
    let deleted = http().delete(server.url(&location)).send().expect("DELETE");
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        http().delete(server.url(&location)).send().expect("DELETE").status(),
        404
    );
    wait_for("Alice gone from the broadcast", Duration::from_secs(10), || {
        names(&bc).is_empty().then_some(())
    });
    wait_for("Alice's tile gone", Duration::from_secs(10), || {
        let frame = newest_frame(&bc.playlist).ok()?;
        let pixel = frame.pixel(CENTRE.0, CENTRE.1);
        (!close_to(pixel, YELLOW, 60) && !close_to(pixel, GREEN, 60)).then_some(())
    });
    drop(sender);

    // A participant whose RTP stops is removed after media_timeout_s (3 s here), like a WHIP one.
    let again = join(
        &server,
        "rtp",
        &json!({"name": "Bob", "tracks": [
        {"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000}]}),
    );
    assert_eq!(again.status(), 201, "the freed ports are not leased again");
    let again: Value = again.json().expect("json");
    let bob_port = again["tracks"][0]["port"].as_u64().expect("port") as u16;
    let bob = Sender::start((bob_port, bob_port + 1), None, 0xff00ff00);
    wait_for("Bob in the broadcast", Duration::from_secs(10), || {
        (names(&bc) == ["Bob"]).then_some(())
    });
    drop(bob);
    let stopped = Instant::now();
    wait_for("Bob removed after his RTP stopped", Duration::from_secs(10), || {
        names(&bc).is_empty().then_some(())
    });
    let after = stopped.elapsed();
    println!("removed {} ms after the RTP stopped", after.as_millis());
    assert!(
        after >= Duration::from_millis(2_500),
        "removed before the media timeout: {after:?}"
    );
    bc.stop();
    server.check_log();
}

#[test]
fn bad_rtp_requests_name_the_field() {
    // No rate limit: these ~20 requests come faster than the default allows.
    let server = Server::start(&["--rtp-port-range", "44990-44993", "--whip-requests-per-s", "0"]);
    let video = |extra: Value| {
        let mut track = json!({"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000});
        for (k, v) in extra.as_object().expect("object") {
            track[k] = v.clone();
        }
        track
    };
    let cases = [
        (json!({"tracks": []}), "tracks"),
        (json!({"name": "x"}), "tracks"),
        (json!({"tracks": [video(json!({"codec": "VP7"}))]}), "tracks[0].codec"),
        (json!({"tracks": [video(json!({"kind": "screen"}))]}), "tracks[0].kind"),
        (json!({"tracks": [video(json!({"codec": "opus"}))]}), "tracks[0].codec"),
        (
            json!({"tracks": [video(json!({"payload_type": 300}))]}),
            "tracks[0].payload_type",
        ),
        (
            json!({"tracks": [video(json!({"payload_type": 128}))]}),
            "tracks[0].payload_type",
        ),
        (
            json!({"tracks": [video(json!({"clock_rate": 8000}))]}),
            "tracks[0].clock_rate",
        ),
        (json!({"tracks": [video(json!({"channels": 2}))]}), "tracks[0].channels"),
        (
            json!({"tracks": [video(json!({})), video(json!({}))]}),
            "tracks[1].kind",
        ),
        (json!({"tracks": [video(json!({"colour": "red"}))]}), "tracks[0].colour"),
        (json!({"source": "nowhere", "tracks": [video(json!({}))]}), "source"),
        (
            json!({"srtp": {"crypto_suite": "AES_CM_128_HMAC_SHA1_80", "key_base64": "not base64!"},
                   "tracks": [video(json!({}))]}),
            "srtp.key_base64",
        ),
        (
            // 29 bytes once decoded: one short.
            json!({"srtp": {"crypto_suite": "AES_CM_128_HMAC_SHA1_80", "key_base64": base64(&SENDER_KEY[..29])},
                   "tracks": [video(json!({}))]}),
            "srtp.key_base64",
        ),
        (
            json!({"srtp": {"crypto_suite": "F8_128_HMAC_SHA1_80", "key_base64": base64(&SENDER_KEY)},
                   "tracks": [video(json!({}))]}),
            "srtp.crypto_suite",
        ),
        (
            // GCM with AES-256 takes 44 bytes, not counter mode's 30.
            json!({"srtp": {"crypto_suite": "AEAD_AES_256_GCM", "key_base64": base64(&SENDER_KEY)},
                   "tracks": [video(json!({}))]}),
            "srtp.key_base64",
        ),
        (
            json!({"srtp": {"crypto_suite": "AES_CM_128_HMAC_SHA1_80"}, "tracks": [video(json!({}))]}),
            "srtp.key_base64",
        ),
        (
            json!({"tracks": [video(json!({"rtcp_return": "127.0.0.1"}))]}),
            "tracks[0].rtcp_return",
        ),
        (
            json!({"tracks": [{"kind": "video", "codec": "VP8", "clock_rate": 90000}]}),
            "tracks[0].payload_type",
        ),
    ];
    for (body, field) in cases {
        let response = join(&server, "rtp", &body);
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().expect("body");
        let error: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(!text.contains(&base64(&SENDER_KEY[..29])), "a key in the error: {text}");
    }
    let not_json = http()
        .post(server.url("/v1/rooms/rtp/rtp"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .expect("POST");
    assert_eq!(not_json.status(), 415);
    // Nothing leaked: both pairs of the range are still free. A join that gets a pair for its first track but
    // none for its second is refused and gives the first one back.
    let one_track = json!({"tracks": [video(json!({}))]});
    assert_eq!(join(&server, "rtp", &one_track).status(), 201);
    let refused = join(&server, "rtp", &alice());
    assert_eq!(refused.status(), 503, "two tracks with one pair left");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        join(&server, "rtp", &one_track).status(),
        201,
        "the first track's pair was not given back"
    );
    assert_eq!(
        join(&server, "rtp", &one_track).status(),
        503,
        "more pairs than the range holds"
    );
    server.check_log();
}

/// An RTP join costs a pipeline like a WHIP one, so it draws on the same per-address allowance
/// (`whip_requests_per_s`): the third join in a burst at 2 per second is a 429 with `Retry-After`.
#[test]
fn rtp_joins_share_the_join_rate() {
    let server = Server::start(&["--rtp-port-range", "44994-44999", "--whip-requests-per-s", "2"]);
    let one_track = json!({"tracks": [{"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000}]});
    let statuses: Vec<u16> = (0..2)
        .map(|_| join(&server, "rate", &one_track).status().as_u16())
        .collect();
    assert_eq!(statuses, [201, 201], "within the burst");
    let refused = join(&server, "rate", &one_track);
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"), "{:?}", refused.headers());
    let error: Value = refused.json().expect("json");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("whip_requests_per_s")),
        "{error}"
    );
    server.check_log();
}

/// One request to Janus' HTTP API (the VideoRoom plugin when `handle` is given); the reply.
fn janus_call(janus: &Janus, path: &str, body: Value) -> Value {
    http()
        .post(format!("{}{path}", janus.url()))
        .json(&body)
        .send()
        .and_then(|r| r.json())
        .expect("Janus API")
}

/// Asks Janus to forward the publisher `display`'s video and audio as plain RTP to callcast's ports (Janus'
/// `rtp_forward`, with an RTCP port for the video so keyframe requests travel back to the publisher).
fn rtp_forward(janus: &Janus, display: &str, video: (u16, u16), audio: u16) -> Value {
    let session = janus_call(janus, "", json!({"janus": "create", "transaction": "t"}))["data"]["id"]
        .as_u64()
        .expect("Janus session");
    let handle = janus_call(
        janus,
        &format!("/{session}"),
        json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "t"}),
    )["data"]["id"]
        .as_u64()
        .expect("Janus handle");
    let message = |body: Value| {
        janus_call(
            janus,
            &format!("/{session}/{handle}"),
            json!({"janus": "message", "transaction": "t", "body": body}),
        )["plugindata"]["data"]
            .clone()
    };
    let listed = message(json!({"request": "listparticipants", "room": ROOM}));
    let publisher = listed["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["display"] == display))
        .and_then(|p| p["id"].as_u64())
        .unwrap_or_else(|| panic!("{display} not in Janus: {listed}"));
    message(json!({
        "request": "rtp_forward", "room": ROOM, "publisher_id": publisher,
        "host": "127.0.0.1", "host_family": "ipv4",
        "video_port": video.0, "video_rtcp_port": video.1, "video_pt": 100,
        "audio_port": audio, "audio_pt": 111,
    }))
}

#[test]
fn janus_rtp_forward_feeds_a_broadcast() {
    let janus = Janus::start();
    let (first, last) = port_range(1, 4);
    let range = format!("{first}-{last}");
    let server = Server::start(&["--rtp-port-range", &range]);
    let _publisher = publish_janus(&janus.url(), ROOM, ROOM_PIN, "forwarded", "color:0000ff");
    // A moving picture whose encoder makes no keyframe unless asked.
    let _ball = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_callcast"))
            .args([
                "publish",
                "--janus",
                &janus.url(),
                "--room",
                &ROOM.to_string(),
                "--pin",
                ROOM_PIN,
            ])
            .args([
                "--name",
                "ball",
                "--pattern",
                "ball",
                "--tone",
                "0",
                "--keyframe-max-dist",
                "100000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start callcast publish"),
    );
    wait_for("the publishers in Janus", Duration::from_secs(20), || {
        let listed = janus.list_participants();
        ["forwarded", "ball"]
            .iter()
            .all(|n| listed.iter().any(|(name, publishing)| name == n && *publishing))
            .then_some(())
    });
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "forwarded"},
            "layout": {"template": "grid"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
        }),
    );
    let response = join(
        &server,
        "forwarded",
        &json!({"name": "From Janus", "tracks": [
            {"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000},
            {"kind": "audio", "codec": "opus", "payload_type": 111, "clock_rate": 48000, "channels": 2},
        ]}),
    );
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().expect("location").to_string();
    let joined: Value = response.json().expect("json");
    let port = |i: usize, key: &str| joined["tracks"][i][key].as_u64().expect("port") as u16;
    let posted = Instant::now();
    let forwarded = rtp_forward(
        &janus,
        "forwarded",
        (port(0, "port"), port(0, "rtcp_port")),
        port(1, "port"),
    );
    assert!(forwarded["error"].is_null(), "rtp_forward refused: {forwarded}");
    wait_for("the forwarded publisher's blue on air", Duration::from_secs(20), || {
        centre_is(&bc.playlist, [0, 0, 255])
    });
    println!("rtp_forward to first frame on air: {} ms", posted.elapsed().as_millis());
    assert_eq!(names(&bc), vec!["From Janus".to_string()]);

    let deleted = http().delete(server.url(&location)).send().expect("DELETE");
    assert_eq!(deleted.status(), 200);
    wait_for("the forwarded tile gone", Duration::from_secs(10), || {
        (names(&bc).is_empty() && centre_is(&bc.playlist, [0, 0, 255]).is_none()).then_some(())
    });

    // Keyframe requests go back to Janus' forwarder: the ball's video (its encoder makes no keyframe unless asked)
    // passes a relay that drops it for a second; callcast's requests after the outage are counted at the relay on
    // their way to Janus, and the picture moves again. (VP8 also resumes on delta frames: the moving picture alone
    // would not prove a request arrived, the count does.)
    let response = join(
        &server,
        "forwarded",
        &json!({"name": "Ball", "tracks": [
            {"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000},
            {"kind": "audio", "codec": "opus", "payload_type": 111, "clock_rate": 48000, "channels": 2},
        ]}),
    );
    assert_eq!(response.status(), 201);
    let joined: Value = response.json().expect("json");
    let port = |i: usize, key: &str| joined["tracks"][i][key].as_u64().expect("port") as u16;
    let relay = Relay::start(port(0, "port"), port(0, "rtcp_port"));
    let forwarded = rtp_forward(&janus, "ball", (relay.rtp_port, relay.rtcp_port), port(1, "port"));
    assert!(forwarded["error"].is_null(), "rtp_forward refused: {forwarded}");
    let since = std::time::SystemTime::now();
    wait_for("the ball moving on air", Duration::from_secs(20), || {
        moving_since(&bc, since)
    });
    relay.cut.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1000)); // the outage itself
    let asked_before = relay.requests.load(Ordering::SeqCst);
    relay.cut.store(false, Ordering::SeqCst);
    let resumed = std::time::SystemTime::now();
    wait_for(
        "the ball moving again after the outage",
        Duration::from_secs(15),
        || moving_since(&bc, resumed),
    );
    let asked = relay.requests.load(Ordering::SeqCst) - asked_before;
    println!("keyframe requests (RTCP FIR/PLI) from callcast to Janus after the outage: {asked}");
    assert!(asked >= 1, "no keyframe request went to Janus");
    bc.stop();
    server.check_log();
}

/// True when the last frames of the two newest segments, both written after `since`, differ in many pixels (the
/// ball moved between them: the picture is not frozen).
fn moving_since(bc: &Broadcast, since: std::time::SystemTime) -> Option<()> {
    let segments = bc.segments();
    let newest = segments.get(segments.len().checked_sub(2)?..)?;
    let mut frames = Vec::new();
    for segment in newest {
        let written = std::fs::metadata(segment).ok()?.modified().ok()?;
        let created = std::fs::metadata(segment).ok()?.created().unwrap_or(written);
        if created.min(written) <= since {
            return None;
        }
        frames.push(decode_last_frame(segment, W, H).ok()?);
    }
    let changed = frames[0]
        .rgb
        .chunks_exact(3)
        .zip(frames[1].rgb.chunks_exact(3))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 60))
        .count();
    (changed > 200).then_some(())
}

/// A UDP hop between Janus' forwarder and callcast for one video track: RTP one way (dropped while `cut`), RTCP
/// both ways on one socket (counting the keyframe requests callcast sends back).
struct Relay {
    rtp_port: u16,
    rtcp_port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    requests: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(to_rtp: u16, to_rtcp: u16) -> Self {
        use std::net::{SocketAddr, UdpSocket};
        let bind = || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind relay");
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            socket
        };
        let (rtp, rtcp) = (bind(), bind());
        let relay = Self {
            rtp_port: rtp.local_addr().expect("addr").port(),
            rtcp_port: rtcp.local_addr().expect("addr").port(),
            cut: Arc::default(),
            requests: Arc::default(),
            stop: Arc::default(),
        };
        let callcast_rtp = SocketAddr::from(([127, 0, 0, 1], to_rtp));
        let callcast_rtcp = SocketAddr::from(([127, 0, 0, 1], to_rtcp));
        let (cut, stop) = (relay.cut.clone(), relay.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((n, _)) = rtp.recv_from(&mut buf) {
                    if !cut.load(Ordering::SeqCst) {
                        let _ = rtp.send_to(&buf[..n], callcast_rtp);
                    }
                }
            }
        });
        let (requests, stop) = (relay.requests.clone(), relay.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut janus: Option<SocketAddr> = None;
            while !stop.load(Ordering::SeqCst) {
                let Ok((n, from)) = rtcp.recv_from(&mut buf) else {
                    continue;
                };
                if from == callcast_rtcp {
                    requests.fetch_add(count_keyframe_requests(&buf[..n]), Ordering::SeqCst);
                    if let Some(janus) = janus {
                        let _ = rtcp.send_to(&buf[..n], janus);
                    }
                } else {
                    janus = Some(from);
                    let _ = rtcp.send_to(&buf[..n], callcast_rtcp);
                }
            }
        });
        relay
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Keyframe requests in a compound RTCP packet: payload-specific feedback (payload type 206) of format 1 (PLI,
/// RFC 4585) or 4 (FIR, RFC 5104; what GStreamer's RTP session sends for a request that wants all headers).
fn count_keyframe_requests(mut packet: &[u8]) -> usize {
    let mut requests = 0;
    while packet.len() >= 4 {
        let (format, kind) = (packet[0] & 0x1f, packet[1]);
        let length = (usize::from(u16::from_be_bytes([packet[2], packet[3]])) + 1) * 4;
        if kind == 206 && (format == 1 || format == 4) {
            requests += 1;
        }
        packet = packet.get(length..).unwrap_or_default();
    }
    requests
}

/// How a sender describes H.264 + Opus over plain RTP (as `ffmpeg -f rtp` or GStreamer write it), plus a section
/// we do not take.
const H264_OPUS_OFFER: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=gst-launch\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
    m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n\
    m=audio 5002 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n\
    m=text 5004 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n";

/// `m=<media> <port> ...` of an SDP answer: the port, if the section is there.
fn answer_port(answer: &str, media: &str) -> Option<u16> {
    let line = answer.lines().find(|l| l.starts_with(&format!("m={media} ")))?;
    line.split(' ').nth(1)?.parse().ok()
}

#[test]
fn sdp_offer_participant_h264_and_opus() {
    let (first, last) = port_range(2, 2);
    let range = format!("{first}-{last}");
    let server = Server::start(&["--rtp-port-range", &range]);
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "sdp"},
            "layout": {"template": "grid"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
        }),
    );
    let offer = |body: &str| {
        http()
            .post(server.url("/v1/rooms/sdp/rtp?name=Described"))
            .header("content-type", "application/sdp")
            .body(body.to_string())
            .send()
            .expect("POST offer")
    };
    // A WebRTC offer is not a plain RTP session.
    let webrtc = offer(&crate::support::offers::well_formed_offer());
    assert_eq!(webrtc.status(), 400);
    assert_eq!(webrtc.json::<Value>().expect("json")["field"], "sdp");

    let response = offer(H264_OPUS_OFFER);
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/sdp");
    assert!(response.headers()["location"]
        .to_str()
        .expect("location")
        .starts_with("/v1/rooms/sdp/rtp/p_"));
    let answer = response.text().expect("answer");
    let (video, audio) = (answer_port(&answer, "video"), answer_port(&answer, "audio"));
    let (Some(video), Some(audio)) = (video, audio) else {
        panic!("no video or audio port in the answer:\n{answer}")
    };
    assert_eq!(
        answer_port(&answer, "text"),
        Some(0),
        "the text section is not rejected:\n{answer}"
    );
    assert!(
        [video, audio].iter().all(|p| (first..=last).contains(p) && p % 2 == 0),
        "{video} {audio} not even ports in {range}"
    );
    for line in [format!("a=rtcp:{}", video + 1), format!("a=rtcp:{}", audio + 1)] {
        assert!(answer.lines().any(|l| l == line), "no `{line}` in\n{answer}");
    }
    let _sender = KillOnDrop(
        Command::new("gst-launch-1.0")
            .args([
                "-q",
                "videotestsrc",
                "is-live=true",
                "pattern=solid-color",
                "foreground-color=0xffff00ff",
                "!",
            ])
            .args(["video/x-raw,width=320,height=240,framerate=15/1", "!"])
            .args([
                "x264enc",
                "tune=zerolatency",
                "speed-preset=ultrafast",
                "key-int-max=15",
                "!",
            ])
            .args([
                "rtph264pay",
                "pt=96",
                "config-interval=-1",
                "!",
                "udpsink",
                "host=127.0.0.1",
            ])
            .arg(format!("port={video}"))
            .args([
                "audiotestsrc",
                "is-live=true",
                "freq=1000",
                "!",
                "opusenc",
                "!",
                "rtpopuspay",
                "pt=111",
                "!",
            ])
            .args(["udpsink", "host=127.0.0.1"])
            .arg(format!("port={audio}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gst-launch-1.0"),
    );
    wait_for(
        "the described participant's magenta on air",
        Duration::from_secs(20),
        || centre_is(&bc.playlist, [255, 0, 255]),
    );
    assert_eq!(names(&bc), vec!["Described".to_string()]);
    let samples = mono_samples(&bc.segments().pop().expect("a segment"));
    let (level, floor) = (tone_level(&samples, TONE_HZ), tone_level(&samples, 1700.0));
    assert!(level > 0.01 && level > 10.0 * floor, "tone {level} floor {floor}");
    bc.stop();
    server.check_log();
}

#[test]
fn a_declared_source_keeps_an_earlier_sender_out() {
    let (first, last) = port_range(3, 1);
    let range = format!("{first}-{last}");
    let server = Server::start(&["--rtp-port-range", &range]);
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "declared"},
            "layout": {"template": "grid"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
        }),
    );
    let response = join(
        &server,
        "declared",
        &json!({"name": "Alice", "source": "127.0.0.1", "tracks": [
        {"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000}]}),
    );
    assert_eq!(response.status(), 201);
    let joined: Value = response.json().expect("json");
    let port = joined["tracks"][0]["port"].as_u64().expect("port") as u16;
    // 127.0.0.2 sends first: without the declared source its packets would be the first heard, and kept.
    let _intruder = intruder(port);
    std::thread::sleep(Duration::from_millis(1500)); // the intruder's head start, not a synchronisation
    let _sender = Sender::start((port, port + 1), None, 0xff00ff00);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(frame) = newest_frame(&bc.playlist) {
            let pixel = frame.pixel(CENTRE.0, CENTRE.1);
            assert!(!close_to(pixel, RED, 60), "the undeclared sender's red is on air");
            if close_to(pixel, GREEN, 60) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the declared sender's green never came on air"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    bc.stop();
    server.check_log();
}

/// The SRTP tests' master keys (key || salt, 30 bytes): the sender's, and another one.
const SENDER_KEY: [u8; 30] = *b"callcast-srtp-test-key-0123456";
const OTHER_KEY: [u8; 30] = *b"not-the-key-callcast-was-given";
/// 32 bytes of key and 12 of salt, for AEAD_AES_256_GCM.
const GCM_KEY: [u8; 44] = *b"callcast-aes-256-gcm-test-key-and-12-of-salt";
/// 16 bytes of key and 12 of salt, for AEAD_AES_128_GCM.
const GCM_128_KEY: [u8; 28] = *b"callcast-aes128-gcm-key+salt";
const BLUE: [u8; 3] = [0, 0, 255];

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `sender`'s green reaches the picture, a keyframe request from callcast reaches `to` (the picture recovers after
/// an outage on it), and the participant at `location` leaves with its `DELETE`.
fn on_air_asked_for_a_keyframe_and_gone(server: &Server, bc: &Broadcast, location: &str, sender: Sender, to: &str) {
    wait_for(&format!("green on air, sent to {to}"), Duration::from_secs(20), || {
        centre_is(&bc.playlist, GREEN)
    });
    let asked = recovers_on_a_keyframe_request(bc, &sender);
    println!("keyframe requests that reached {to}: {asked}");
    assert!(asked >= 1, "no keyframe request reached {to}");
    drop(sender);
    assert_eq!(
        http().delete(server.url(location)).send().expect("DELETE").status(),
        200
    );
    wait_for("the participant gone", Duration::from_secs(10), || {
        names(bc).is_empty().then_some(())
    });
}

/// Cuts the sender's video for a second while its colour changes to yellow: only a keyframe it makes on
/// callcast's request (it makes none by itself) brings yellow on air. Returns the requests that reached it.
fn recovers_on_a_keyframe_request(bc: &Broadcast, sender: &Sender) -> usize {
    let asked_before = sender.keyframe_requests.load(Ordering::SeqCst);
    sender.interrupt(true);
    sender.set_colour(0xffffff00);
    std::thread::sleep(Duration::from_millis(1000)); // the outage itself
    sender.interrupt(false);
    wait_for("yellow on air after the outage", Duration::from_secs(15), || {
        centre_is(&bc.playlist, YELLOW)
    });
    sender.keyframe_requests.load(Ordering::SeqCst) - asked_before
}

fn one_video_track(extra: Value) -> Value {
    let mut body = json!({"tracks": [{"kind": "video", "codec": "VP8", "payload_type": 100, "clock_rate": 90000}]});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

fn room_broadcast(server: &Server, room: &str) -> Broadcast {
    Broadcast::start(
        server,
        &json!({
            "source": {"kind": "room", "room": room},
            "layout": {"template": "grid"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
        }),
    )
}

/// Joins room `srtp` with one VP8 track under `srtp`; keeps the reply (to look for keys in it) and returns the
/// participant's location and its track's port.
fn join_srtp(server: &Server, name: &str, srtp: &Value, responses: &mut Vec<String>) -> (String, u16) {
    let response = join(server, "srtp", &one_video_track(json!({"name": name, "srtp": srtp})));
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().expect("location").to_string();
    let joined: Value = serde_json::from_str(&response.text().expect("body")).expect("json");
    responses.push(joined.to_string());
    (location, joined["tracks"][0]["port"].as_u64().expect("port") as u16)
}

/// SRTP with the key in the JSON request (mediasoup's `srtpParameters`): the sender's video is decrypted and
/// composited, callcast's SRTCP keyframe requests (same key) reach its encoder; a sender encrypting with another key
/// is never composited; the key appears in no response and nowhere in the server's log, even at debug level.
#[test]
fn srtp_participant_is_composited_and_a_wrong_key_is_not() {
    let (first, last) = port_range(4, 2);
    let range = format!("{first}-{last}");
    let server = Server::start_with_env(&["--rtp-port-range", &range], &[("RUST_LOG", "debug")]);
    let bc = room_broadcast(&server, "srtp");
    let mut responses = Vec::new();
    let srtp = json!({"crypto_suite": "AES_CM_128_HMAC_SHA1_80", "key_base64": base64(&SENDER_KEY)});

    let (location, port) = join_srtp(&server, "Alice", &srtp, &mut responses);
    let options = SenderOptions {
        srtp_key: Some(SENDER_KEY.to_vec()),
        ..SenderOptions::default()
    };
    let sender = Sender::start_with((port, port + 1), None, 0xff00ff00, &options);
    on_air_asked_for_a_keyframe_and_gone(&server, &bc, &location, sender, "the SRTP sender (SRTCP)");

    // AEAD_AES_256_GCM (RFC 7714, one of mediasoup's suites): decrypted, composited and asked for keyframes in
    // SRTCP of the same suite.
    let gcm = json!({"crypto_suite": "AEAD_AES_256_GCM", "key_base64": base64(&GCM_KEY)});
    let (location, port) = join_srtp(&server, "Gina", &gcm, &mut responses);
    let options = SenderOptions {
        srtp_key: Some(GCM_KEY.to_vec()),
        srtp_suite: AEAD_AES_256_GCM,
        ..SenderOptions::default()
    };
    let sender = Sender::start_with((port, port + 1), None, 0xff00ff00, &options);
    on_air_asked_for_a_keyframe_and_gone(&server, &bc, &location, sender, "the AES-256-GCM sender (SRTCP)");

    // The same request, but the sender encrypts with another key: every packet fails authentication.
    let (_, port) = join_srtp(&server, "Mallory", &srtp, &mut responses);
    let options = SenderOptions {
        srtp_key: Some(OTHER_KEY.to_vec()),
        ..SenderOptions::default()
    };
    let _mallory = Sender::start_with((port, port + 1), None, 0xffff0000, &options);
    wait_for("Mallory in the broadcast", Duration::from_secs(10), || {
        (names(&bc) == ["Mallory"]).then_some(())
    });
    let (watched_until, mut frames) = (Instant::now() + Duration::from_secs(4), 0);
    while Instant::now() < watched_until {
        if let Ok(frame) = newest_frame(&bc.playlist) {
            let pixel = frame.pixel(CENTRE.0, CENTRE.1);
            assert!(
                !close_to(pixel, RED, 60),
                "red from a sender with the wrong key is on air"
            );
            frames += 1;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(frames >= 5, "only {frames} frames looked at");
    responses.push(bc.status().to_string());
    bc.stop();

    let log = server.log_text();
    for secret in [
        base64(&SENDER_KEY),
        base64(&OTHER_KEY),
        base64(&GCM_KEY),
        String::from_utf8_lossy(&SENDER_KEY).into_owned(),
    ] {
        assert!(!log.contains(&secret), "the SRTP key is in the server log");
        for response in &responses {
            assert!(!response.contains(&secret), "the SRTP key is in a response: {response}");
        }
    }
    server.check_log();
}

/// rtcp-mux in JSON: RTCP shares the RTP port both ways (the reply's `rtcp_port` is the RTP port) and keyframe
/// requests reach the sender on its RTP socket. A declared `rtcp_return` gets the keyframe requests of a sender
/// whose RTCP leaves from elsewhere. Then an SDP offer of `RTP/SAVPF` with `a=crypto` (SDES) of two suites,
/// AEAD_AES_128_GCM (RFC 7714) first and AES_CM_128_HMAC_SHA1_80 second: the answer takes the first and gives
/// callcast's own key of that suite, the sender's GCM-protected video is decrypted and composited, and
/// callcast's SRTCP, encrypted with the answer's key, reaches the sender's encoder as keyframe requests.
#[test]
fn rtcp_mux_rtcp_return_and_sdp_crypto_participants() {
    // The second half of offset 4's eight ports (offset 5 would pass 65535); the SRTP test has the first half.
    let (first, last) = port_range(4, 4);
    let range = format!("{}-{last}", first + 4);
    let server = Server::start(&["--rtp-port-range", &range]);
    let bc = room_broadcast(&server, "mux");

    let response = join(
        &server,
        "mux",
        &one_video_track(json!({"name": "Carol", "rtcp_mux": true})),
    );
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("location").to_string());
    let joined: Value = response.json().expect("json");
    assert_eq!(status, 201, "{joined}");
    let location = location.expect("a Location");
    let port = joined["tracks"][0]["port"].as_u64().expect("port") as u16;
    assert_eq!(joined["tracks"][0]["rtcp_port"], json!(port), "{joined}");
    let options = SenderOptions {
        rtcp_mux: true,
        ..SenderOptions::default()
    };
    let sender = Sender::start_with((port, port), None, 0xff00ff00, &options);
    on_air_asked_for_a_keyframe_and_gone(&server, &bc, &location, sender, "the rtcp-mux sender's RTP socket");

    // A sender whose RTCP leaves from a socket other than the one it listens on declares its return port: the
    // keyframe requests reach it there (without the declaration they would go to where its RTCP comes from).
    let listen = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port");
    let listen_port = listen.local_addr().expect("addr").port();
    drop(listen); // free for the sender's udpsrc to bind just below
    let mut body = one_video_track(json!({"name": "Dave"}));
    body["tracks"][0]["rtcp_return"] = json!(format!("127.0.0.1:{listen_port}"));
    let response = join(&server, "mux", &body);
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().expect("location").to_string();
    let joined: Value = response.json().expect("json");
    let port = joined["tracks"][0]["port"].as_u64().expect("port") as u16;
    let options = SenderOptions {
        rtcp_listen: Some(listen_port),
        ..SenderOptions::default()
    };
    let sender = Sender::start_with((port, port + 1), None, 0xff00ff00, &options);
    on_air_asked_for_a_keyframe_and_gone(&server, &bc, &location, sender, "the declared RTCP return port");

    let offered = base64(&GCM_128_KEY);
    let offered_cm = base64(&SENDER_KEY);
    let offer = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=sender\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=video 5000 RTP/SAVPF 100\r\na=rtpmap:100 VP8/90000\r\na=rtcp-fb:100 nack pli\r\n\
         a=crypto:1 AEAD_AES_128_GCM inline:{offered}|2^31\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{offered_cm}|2^31\r\n"
    );
    let response = http()
        .post(server.url("/v1/rooms/mux/rtp?name=Described"))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .expect("POST offer");
    assert_eq!(response.status(), 201);
    let answer = response.text().expect("answer");
    assert!(
        !answer.contains(&offered) && !answer.contains(&offered_cm),
        "the sender's key is in the answer:\n{answer}"
    );
    assert!(!answer.contains("a=crypto:2"), "one suite answered:\n{answer}");
    let video = answer_port(&answer, "video").expect("a video port");
    assert!(
        answer.lines().any(|l| l == format!("m=video {video} RTP/SAVPF 100")),
        "{answer}"
    );
    let ours = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:1 AEAD_AES_128_GCM inline:"))
        .unwrap_or_else(|| panic!("no AEAD_AES_128_GCM a=crypto for tag 1 in the answer:\n{answer}"));
    let ours: [u8; 28] = {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(ours)
            .expect("base64 key");
        bytes.try_into().expect("a 28-byte key (16 of key, 12 of salt)")
    };
    let options = SenderOptions {
        srtp_key: Some(GCM_128_KEY.to_vec()),
        srtp_suite: AEAD_AES_128_GCM,
        srtcp_in_key: Some(ours.to_vec()),
        ..SenderOptions::default()
    };
    let sender = Sender::start_with((video, video + 1), None, 0xff0000ff, &options);
    wait_for(
        "the SDES (AES-128-GCM) sender's blue on air",
        Duration::from_secs(20),
        || centre_is(&bc.playlist, BLUE),
    );
    assert_eq!(names(&bc), vec!["Described".to_string()]);
    let asked = recovers_on_a_keyframe_request(&bc, &sender);
    println!("SRTCP keyframe requests (answer's key) that reached the SDES sender: {asked}");
    assert!(asked >= 1, "no keyframe request reached the SDES sender");
    bc.stop();
    let log = server.log_text();
    assert!(
        !log.contains(&offered) && !log.contains(&offered_cm),
        "an offered key is in the server log"
    );
    server.check_log();
}
