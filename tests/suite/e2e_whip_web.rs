//! WHIP as web apps use it (RFC 9725): a page on another origin publishes with a third-party client from npm
//! (whip-whep's WHIPClient, which offers before gathering and trickles its candidates), is composited, and
//! leaves with its DELETE; CORS preflights follow the configured origins; trickle PATCH and its preconditions;
//! ICE servers in `Link`.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::child_lines::ChildLines;
use crate::support::media::{close_to, last_frame};
use crate::support::offers::well_formed_offer;
use crate::support::{browser_script, http, wait_for, KillOnDrop, Server};
use reqwest::blocking::Response;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "web-room-secret";

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A 640x360 camera of one colour for chromium's fake capture.
fn camera(dir: &std::path::Path, colour: &str) -> std::path::PathBuf {
    let file = dir.join(format!("{colour}.y4m"));
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("color=c={colour}:s=640x360:r=30"))
        .args(["-t", "1", "-pix_fmt", "yuv420p"])
        .arg(&file)
        .status()
        .expect("ffmpeg");
    assert!(made.success(), "ffmpeg made no camera file");
    file
}

#[test]
fn a_page_on_another_origin_publishes_with_a_third_party_whip_client() {
    if crate::support::rerun_in_loopback_namespace(
        module_path!(),
        "a_page_on_another_origin_publishes_with_a_third_party_whip_client",
    ) {
        return;
    }
    let server = Server::start(&["--room-token", &format!("web={TOKEN}")]);
    let broadcast = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "web"},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 30}],
        }),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let camera = camera(dir.path(), "lime");
    let mut node = Command::new("node")
        .arg(browser_script("whip_publish.mjs"))
        .arg(server.whip_url("web"))
        .arg(TOKEN)
        .arg(&camera)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (deploy/install-deps.sh installs it)");
    let lines = ChildLines::of(&mut node);
    let mut stdin = node.stdin.take().expect("piped stdin");
    let _node = KillOnDrop(node);

    let published: Value = lines.until(Duration::from_secs(45), |l| serde_json::from_str(l).ok());
    assert!(published["error"].is_null(), "the page could not publish: {published}");
    let location = published["location"].as_str().expect("location").to_string();
    let page_origin = published["origin"].as_str().expect("origin");
    assert!(
        !server.url("/").starts_with(page_origin),
        "the page must be on another origin: {published}"
    );
    assert!(location.starts_with(&server.url("/v1/rooms/web/whip/p")), "{location}");
    // Its candidates came by trickle, each PATCH taken.
    let patches: Vec<u64> = published["patches"]
        .as_array()
        .expect("patches")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(!patches.is_empty() && patches.iter().all(|s| *s == 204), "{published}");

    // Composited: the browser's lime camera fills the single tile.
    wait_for("the browser in the broadcast", Duration::from_secs(20), || {
        (participant_names(&broadcast.status()).len() == 1).then_some(())
    });
    wait_for("the browser's camera on air", Duration::from_secs(20), || {
        let frame = last_frame(&broadcast.segments().pop()?, 640, 360)?;
        close_to(frame.pixel(320, 180), [0, 255, 0], 60).then_some(())
    });

    // The client's stop() sends DELETE: the session is gone at once (well before the 5 s media timeout).
    writeln!(stdin, "stop").expect("write to node");
    lines.until(Duration::from_secs(15), |l| l.contains("\"stopped\"").then_some(()));
    let session = http().get(&location).bearer_auth(TOKEN).send().expect("GET session");
    assert_eq!(
        session.status().as_u16(),
        404,
        "the session outlived the client's DELETE"
    );
    let room = crate::support::get_json(&server.url("/v1/rooms/web"));
    assert_eq!(room["participants"], json!([]), "{room}");
    wait_for("the browser gone from the broadcast", Duration::from_secs(10), || {
        participant_names(&broadcast.status()).is_empty().then_some(())
    });
    assert_eq!(broadcast.stop()["state"], "ended");
}

/// A CORS preflight for `method` on `path` from `origin`.
fn preflight(server: &Server, path: &str, origin: &str, method: &str) -> Response {
    http()
        .request(reqwest::Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .expect("OPTIONS")
}

#[test]
fn preflights_follow_the_allowed_origins() {
    // Default: any origin may use the WHIP routes, none the control API.
    let open = Server::start(&[]);
    let whip = preflight(&open, "/v1/rooms/r/whip", "http://app.example.com", "POST");
    assert!(whip.status().is_success(), "{}", whip.status());
    assert_eq!(header(&whip, "access-control-allow-origin").as_deref(), Some("*"));
    let methods = header(&whip, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("PATCH") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = header(&whip, "access-control-allow-headers")
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(header(&whip, "accept-post").as_deref(), Some("application/sdp"));
    let resource = preflight(&open, "/v1/rooms/r/whip/p_1", "http://app.example.com", "PATCH");
    assert_eq!(header(&resource, "access-control-allow-origin").as_deref(), Some("*"));
    let api = preflight(&open, "/v1/broadcasts", "http://app.example.com", "POST");
    assert_eq!(
        header(&api, "access-control-allow-origin"),
        None,
        "the control API is not for other origins"
    );

    // Configured: only the listed origins, each for its routes.
    let strict = Server::start(&[
        "--whip-allowed-origin",
        "http://app.example.com",
        "--api-allowed-origin",
        "https://ops.example.com",
    ]);
    let allowed = preflight(&strict, "/v1/rooms/r/whip", "http://app.example.com", "POST");
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("http://app.example.com")
    );
    for (path, origin) in [
        ("/v1/rooms/r/whip", "http://evil.example.com"),
        ("/v1/rooms/r/whip", "https://ops.example.com"),
        ("/v1/broadcasts", "http://app.example.com"),
    ] {
        let refused = preflight(&strict, path, origin, "POST");
        assert_eq!(
            header(&refused, "access-control-allow-origin"),
            None,
            "{origin} on {path}"
        );
    }
    let ops = preflight(&strict, "/v1/broadcasts", "https://ops.example.com", "POST");
    assert_eq!(
        header(&ops, "access-control-allow-origin").as_deref(),
        Some("https://ops.example.com")
    );
}

#[test]
fn trickle_patches_need_the_sessions_etag_and_ice_servers_are_linked() {
    let server = Server::start(&["--stun-server", "stun://127.0.0.1:3478"]);
    let offer = http()
        .post(server.whip_url("trickle"))
        .header("content-type", "application/sdp")
        .header("origin", "http://app.example.com")
        .body(well_formed_offer())
        .send()
        .expect("POST offer");
    assert_eq!(offer.status().as_u16(), 201);
    let etag = header(&offer, "etag").expect("ETag");
    assert_eq!(
        header(&offer, "link").as_deref(),
        Some("<stun:127.0.0.1:3478>; rel=\"ice-server\"")
    );
    let exposed = header(&offer, "access-control-expose-headers")
        .unwrap_or_default()
        .to_lowercase();
    for name in ["location", "link", "etag"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    let location = server.url(&header(&offer, "location").expect("Location"));
    let fragment = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=video 9 RTP/AVP 0\r\na=mid:0\r\n\
                    a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
    let patch = |if_match: Option<&str>, content_type: &str, body: &str| {
        let mut request = http()
            .patch(&location)
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        let response = request.send().expect("PATCH");
        let status = response.status().as_u16();
        (status, response.text().unwrap_or_default())
    };
    let sdpfrag = "application/trickle-ice-sdpfrag";
    assert_eq!(patch(Some(&etag), sdpfrag, fragment).0, 204);
    assert_eq!(patch(None, sdpfrag, fragment).0, 428);
    assert_eq!(patch(Some("\"another\""), sdpfrag, fragment).0, 412);
    assert_eq!(patch(Some(&etag), "application/sdp", fragment).0, 415);
    let (status, body) = patch(
        Some(&etag),
        sdpfrag,
        "a=mid:9\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("sdpfrag"), "{body}");
    let (status, body) = patch(
        Some("*"),
        sdpfrag,
        "a=ice-ufrag:wxyz\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
    );
    assert_eq!(status, 501, "an ICE restart is refused clearly: {body}");
    assert!(body.contains("ICE restart"), "{body}");
}
