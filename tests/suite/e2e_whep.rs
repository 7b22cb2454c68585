//! WHEP output: a page on another origin watches a broadcast over WebRTC with a third-party client from npm
//! (whip-whep's WHEPClient) in Chromium, and sees the participant's colour in a decoded frame and an Opus track
//! decoding, and goes on decoding fresh pictures while another viewer is stuck (answered, never connected:
//! webrtcbin holds what is sent to it until DTLS is up) and a third, connected, is frozen (its Chromium stopped
//! with SIGSTOP: nothing read, no RTCP, while ICE still says connected), the broadcast's frame count growing; the
//! frozen viewer is dropped once silent; one viewer more than `max_viewers` gets 503; the client's DELETE ends
//! its viewer (status and `/metrics` count it), and a viewer still there at the stop ends with the broadcast. 404 for a broadcast without a whep output and 401 without a token are in `api_auth`.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::child_lines::{node_script, NodeTree};
use crate::support::media::close_to;
use crate::support::offers::well_formed_offer;
use crate::support::{http, publish, wait_for, Server};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// The participant's colour (an RGB that survives YUV 4:2:0 and back within the tolerance below).
const COLOUR: [u8; 3] = [0, 0, 255];

fn viewers(broadcast: &Broadcast) -> Option<u64> {
    Broadcast::output(&broadcast.status(), "out_0")["viewers"].as_u64()
}

/// `callcast_whep_viewers` of the broadcast's whep output in `/metrics`.
fn viewers_metric(server: &Server, broadcast: &Broadcast) -> Option<u64> {
    let text = http().get(server.url("/metrics")).send().ok()?.text().ok()?;
    let id = format!("broadcast_id=\"{}\"", broadcast.id);
    let line = text
        .lines()
        .find(|l| l.starts_with("callcast_whep_viewers{") && l.contains(&id))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[test]
fn a_page_on_another_origin_watches_over_whep_with_a_third_party_client() {
    if crate::support::rerun_in_loopback_namespace(
        module_path!(),
        "a_page_on_another_origin_watches_over_whep_with_a_third_party_client",
    ) {
        return;
    }
    let server = Server::start(&[]);
    // A keyframe every 4 s: a viewer's first picture in well under that comes from the keyframe it asked for.
    let broadcast = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "stage"},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 4},
            "outputs": [{"kind": "whep", "max_viewers": 3}, {"kind": "hls", "segment_seconds": 4, "window": 0}],
        }),
    );
    let _blue = publish(&server.whip_url("stage"), "blue", "color:0000ff");
    wait_for("the participant in the broadcast", Duration::from_secs(20), || {
        (participant_names(&broadcast.status()).len() == 1).then_some(())
    });
    let whep_url = server.url(&format!("/v1/broadcasts/{}/whep", broadcast.id));
    let status = broadcast.status();
    assert_eq!(
        Broadcast::output(&status, "out_0")["whep"].as_str(),
        Some(whep_url.strip_prefix(&server.url("")).unwrap()),
        "{status}"
    );
    assert_eq!(viewers(&broadcast), Some(0), "{status}");

    let (lines, mut stdin, _node) = node_script("whep_view.mjs", &[whep_url.as_ref()]);
    let watched: Value = lines.until(Duration::from_secs(40), |l| serde_json::from_str(l).ok());
    assert!(watched["error"].is_null(), "the page could not watch: {watched}");
    println!("WHEP time to first frame in Chromium: {} ms", watched["first_frame_ms"]);
    // Keyframes come every 4 s by themselves: a first picture in well under that came from the keyframe the
    // joining viewer had the broadcast make (330-620 ms seen, 3.7 s without the request).
    let first_frame_ms = watched["first_frame_ms"].as_f64().expect("first_frame_ms");
    assert!(
        first_frame_ms < 2500.0,
        "first frame after {first_frame_ms} ms: {watched}"
    );
    let origin = watched["origin"].as_str().expect("origin");
    assert!(
        !server.url("/").starts_with(origin),
        "the page must be on another origin: {watched}"
    );
    let location = watched["location"].as_str().expect("location").to_string();
    assert!(location.starts_with(&format!("{whep_url}/")), "{location}");

    // The broadcast's picture, decoded by Chromium: the participant fills the single tile.
    let pixel: Vec<u8> = serde_json::from_value(watched["pixel"].clone()).expect("pixel");
    assert!(
        close_to([pixel[0], pixel[1], pixel[2]], COLOUR, 60),
        "centre pixel {pixel:?}, expected the participant's {COLOUR:?}: {watched}"
    );
    assert_eq!(watched["size"], json!([640, 360]), "{watched}");
    assert_eq!(watched["video_codec"], "video/H264", "{watched}");
    // The sound: Opus, its track live and its decoder producing samples.
    let audio = &watched["audio"];
    assert_eq!(audio["codec"], "audio/opus", "{watched}");
    assert_eq!(audio["state"], "live", "{watched}");
    assert!(audio["packets"].as_u64().unwrap_or(0) > 10, "{watched}");
    assert!(audio["samples"].as_u64().unwrap_or(0) > 48_000 / 2, "{watched}");
    // The client trickled its candidates with the viewer's ETag, and each PATCH was taken.
    let trickled = watched["trickled"].as_array().expect("trickled");
    assert!(
        !trickled.is_empty() && trickled.iter().all(|s| s == 204),
        "trickle PATCHes: {watched}"
    );

    // A second page, connected and decoding, then frozen with everything it runs (SIGSTOP): its sockets stay
    // open and unread, it sends no RTCP, and webrtcbin's ICE still says connected.
    let (frozen_lines, _frozen_stdin, frozen) = NodeTree::start("whep_view.mjs", &[whep_url.as_ref()]);
    let frozen_watched: Value = frozen_lines.until(Duration::from_secs(40), |l| serde_json::from_str(l).ok());
    assert!(
        frozen_watched["error"].is_null(),
        "the second page could not watch: {frozen_watched}"
    );
    frozen.freeze();
    let frames_out = || broadcast.status()["frames_out"].as_u64().expect("frames_out");

    // A viewer of H.264 and Opus that never does ICE: answered, then stuck, its DTLS keys never set (webrtcbin
    // would hold whatever was pushed into it). The page goes on getting fresh pictures: 60 more (2 s of the
    // broadcast's 30 a second) within the wait; a station pushing into the stuck viewer would stop them at once
    // (with the station's check of the viewer's keys removed, this wait timed out).
    let stuck = http()
        .post(&whep_url)
        .header("content-type", "application/sdp")
        .body(well_formed_offer().replace("a=sendonly", "a=recvonly").replace(
            "a=rtpmap:96 VP8/90000\r\n",
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n",
        ))
        .send()
        .expect("POST the stuck viewer's offer");
    assert_eq!(stuck.status().as_u16(), 201);
    // Counted in the status and in /metrics, the stuck and frozen viewers too (checked at once: the frozen one
    // goes about 15 s after it froze).
    assert_eq!(viewers(&broadcast), Some(3));
    assert_eq!(viewers_metric(&server, &broadcast), Some(3));
    // One more than max_viewers: 503, with when to try again.
    let refused = http()
        .post(&whep_url)
        .header("content-type", "application/sdp")
        .body(well_formed_offer())
        .send()
        .expect("POST a second offer");
    assert_eq!(refused.status().as_u16(), 503);
    assert!(refused.headers().get("retry-after").is_some());
    let stuck_location = stuck.headers()["location"].to_str().unwrap().to_string();
    let etag = stuck.headers()["etag"].to_str().unwrap().to_string();
    // Trickle: an If-Match checked (none is taken too: the page's client sends none), the fragment read,
    // candidates taken.
    let candidate = "a=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n";
    for (if_match, body, expected) in [
        (Some("\"v_0000000000000000\""), candidate, 412),
        (Some(etag.as_str()), "not a fragment", 400),
        (Some(etag.as_str()), candidate, 204),
    ] {
        let mut patch = http()
            .patch(server.url(&stuck_location))
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(body);
        if let Some(tag) = if_match {
            patch = patch.header("if-match", tag);
        }
        let code = patch.send().expect("PATCH").status().as_u16();
        assert_eq!(code, expected, "PATCH with If-Match {if_match:?}: {body}");
    }
    let stuck_answer = stuck.text().unwrap();
    assert!(stuck_answer.contains("H264/90000"), "{stuck_answer}");
    let mut frames_decoded = || {
        writeln!(stdin, "frames").expect("write to node");
        lines.until(Duration::from_secs(10), |l| {
            serde_json::from_str::<Value>(l).ok()?.get("frames_decoded")?.as_u64()
        })
    };
    let (before, encoded) = (frames_decoded(), frames_out());
    wait_for(
        "60 more pictures decoded by the page beside the stuck and the frozen viewers",
        Duration::from_secs(10),
        || (frames_decoded() >= before + 60).then_some(()),
    );
    wait_for("the broadcast's frames going on", Duration::from_secs(10), || {
        (frames_out() >= encoded + 60).then_some(())
    });

    let deleted = http()
        .delete(server.url(&stuck_location))
        .send()
        .expect("DELETE the stuck viewer");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    // The page and the frozen viewer, or the page alone if the frozen one went already.
    let left = viewers(&broadcast);
    assert!(matches!(left, Some(1 | 2)), "{left:?} viewers after the DELETE");

    // The frozen viewer is dropped: silent for 15 s (no RTCP, no DTLS), noticed at a keyframe (every 4 s).
    // Meanwhile the page decodes on and the broadcast encodes on.
    let (before, encoded, frozen_at) = (frames_decoded(), frames_out(), std::time::Instant::now());
    wait_for("the frozen viewer dropped", Duration::from_secs(45), || {
        (viewers(&broadcast) == Some(1)).then_some(())
    });
    println!(
        "frozen viewer dropped {:?} after the stuck one's DELETE",
        frozen_at.elapsed()
    );
    let frozen_location = frozen_watched["location"].as_str().expect("location");
    let gone = http().delete(frozen_location).send().expect("DELETE the frozen viewer");
    assert_eq!(gone.status().as_u16(), 404, "the viewer dropped was not the frozen one");
    wait_for(
        "the page's pictures and the broadcast's frames going on beside the frozen viewer",
        Duration::from_secs(10),
        || (frames_decoded() >= before + 60 && frames_out() >= encoded + 60).then_some(()),
    );
    drop(frozen);

    // The places of the stuck and frozen viewers are free again, with the page still watching: a viewer that only
    // listens (Opus; its VP8-only video section gets nothing) is answered, and is still there when the broadcast
    // stops (its pipeline ends with the output, quietly).
    let listener = http()
        .post(&whep_url)
        .header("content-type", "application/sdp")
        .body(well_formed_offer().replace("a=sendonly", "a=recvonly"))
        .send()
        .expect("POST an audio-only offer");
    assert_eq!(listener.status().as_u16(), 201, "the freed place");
    assert_eq!(viewers(&broadcast), Some(2));

    // The client's stop() sends DELETE: the viewer is gone at once (a viewer whose connection closed without
    // one would go only at the next keyframe, up to 4 s on).
    writeln!(stdin, "stop").expect("write to node");
    lines.until(Duration::from_secs(15), |l| l.contains("\"stopped\"").then_some(()));
    wait_for("the viewer gone from the status", Duration::from_millis(1500), || {
        (viewers(&broadcast) == Some(1)).then_some(())
    });
    assert_eq!(viewers_metric(&server, &broadcast), Some(1));
    let again = http().delete(&location).send().expect("DELETE again");
    assert_eq!(again.status().as_u16(), 404, "the viewer outlived the client's DELETE");
    let stopped = broadcast.stop();
    assert_eq!(stopped["state"], "ended");
    // Each joining viewer had a keyframe made out of turn, restarting the encoder's 4 s interval: the HLS beside
    // them kept its target duration, its segments ending early at such a keyframe rather than running on to
    // the next one (up to 8 s). The encoder counts its interval in frames (120): each frame a loaded machine
    // never made (`frames_dropped`) stretches a segment by a frame's time.
    let dropped = stopped["frames_dropped"].as_f64().unwrap_or(0.0);
    let longest = 4.5 + dropped / 30.0;
    let playlist = std::fs::read_to_string(&broadcast.playlist).expect("the HLS playlist");
    let durations: Vec<f64> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:")?.split(',').next()?.parse().ok())
        .collect();
    assert!(durations.len() >= 2, "{playlist}");
    assert!(
        durations.iter().all(|&d| d < longest),
        "a segment past {longest:.3} s ({dropped} frames dropped): {playlist}"
    );
    if dropped == 0.0 {
        assert!(playlist.contains("#EXT-X-TARGETDURATION:4\n"), "{playlist}");
    }
    server.check_log();
}
