//! WHIP as web apps use it (RFC 9725): a page on another origin publishes with a third-party client from npm
//! (whip-whep's WHIPClient, which offers before gathering and trickles its candidates), is composited, and
//! restarts ICE over PATCH and goes on on the new credentials, leaves with its DELETE; CORS preflights follow the configured origins; trickle PATCH and its preconditions;
//! ICE servers in `Link`, TURN with credentials a real coturn takes.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::child_lines::node_script;
use crate::support::media::{close_to, last_frame};
use crate::support::offers::well_formed_offer;
use crate::support::{free_port, http, wait_for, KillOnDrop, Server};
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

/// The statuses of the PATCH requests the page reported (`patches`), in order.
fn patch_statuses(report: &Value) -> Vec<u64> {
    report["patches"]
        .as_array()
        .expect("patches")
        .iter()
        .filter_map(Value::as_u64)
        .collect()
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
    let whip_url = server.whip_url("web");
    let (lines, mut stdin, _node) = node_script(
        "whip_publish.mjs",
        &[whip_url.as_ref(), TOKEN.as_ref(), camera.as_os_str()],
    );

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
    let patches = patch_statuses(&published);
    assert!(!patches.is_empty() && patches.iter().all(|s| *s == 204), "{published}");

    // Composited: the browser's lime camera fills the single tile.
    wait_for("the browser in the broadcast", Duration::from_secs(20), || {
        (participant_names(&broadcast.status()).len() == 1).then_some(())
    });
    wait_for("the browser's camera on air", Duration::from_secs(20), || {
        let frame = last_frame(&broadcast.segments().pop()?, 640, 360)?;
        close_to(frame.pixel(320, 180), [0, 255, 0], 60).then_some(())
    });

    // An ICE restart by the client's restart() (RFC 9725 §4.4: a PATCH with `If-Match: *` and new credentials,
    // answered 200 with ours): chromium's selected pair runs on both new credentials, and frames sent after it
    // (a magenta canvas instead of the camera) reach the broadcast; the ETag from before no longer matches.
    writeln!(stdin, "restart magenta").expect("write to node");
    let restarted: Value = lines.until(Duration::from_secs(30), |l| {
        serde_json::from_str::<Value>(l)
            .ok()
            .filter(|v| v.get("restarted").is_some())
    });
    let restarted = &restarted["restarted"];
    assert!(restarted["error"].is_null(), "the restart failed: {restarted}");
    let (before, after) = (&restarted["before"], &restarted["after"]);
    assert_ne!(
        after["local"], before["local"],
        "chromium's new credentials: {restarted}"
    );
    assert_ne!(
        after["remote"], before["remote"],
        "the server's new credentials: {restarted}"
    );
    assert_eq!(after["selectedLocal"], after["local"], "{restarted}");
    assert_eq!(after["selectedRemote"], after["remote"], "{restarted}");
    // Every PATCH so far: the trickles (204), one restart (200), then the new candidates trickled (204).
    let statuses = patch_statuses(restarted);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{restarted}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 204), "{restarted}");
    println!("ICE restart as chromium saw it: {restarted}");
    let old_etag = published["etag"].as_str().expect("etag");
    assert_ne!(restarted["etag"].as_str(), Some(old_etag), "{restarted}");
    let stale = http()
        .patch(&location)
        .bearer_auth(TOKEN)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .header("if-match", old_etag)
        .body("a=end-of-candidates\r\n")
        .send()
        .expect("PATCH");
    assert_eq!(stale.status().as_u16(), 412, "the ETag from before the restart");
    wait_for("frames sent after the restart on air", Duration::from_secs(20), || {
        let frame = last_frame(&broadcast.segments().pop()?, 640, 360)?;
        close_to(frame.pixel(320, 180), [255, 0, 255], 60).then_some(())
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
    let (status, body) = patch(Some(&etag), sdpfrag, "a=ice-ufrag:wxyz\r\n");
    assert_eq!(status, 400, "an ICE restart without its password: {body}");
    assert!(body.contains("sdpfrag") && body.contains("ice-pwd"), "{body}");

    // An ICE restart (RFC 9725 §4.4): new credentials answered with ours, and a new ETag the old one no
    // longer matches.
    let restart = http()
        .patch(&location)
        .header("content-type", sdpfrag)
        .header("if-match", &etag)
        .body("a=ice-ufrag:wxyz\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")
        .send()
        .expect("PATCH restart");
    assert_eq!(restart.status().as_u16(), 200);
    assert_eq!(header(&restart, "content-type").as_deref(), Some(sdpfrag));
    let new_etag = header(&restart, "etag").expect("a new ETag");
    assert_ne!(new_etag, etag);
    let answer = restart.text().expect("sdpfrag");
    let ours = |key: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {key} in {answer:?}"))
    };
    let (ufrag, pwd) = (ours("a=ice-ufrag:"), ours("a=ice-pwd:"));
    assert!(ufrag.len() >= 4 && pwd.len() >= 22, "{answer:?}");
    assert!(
        answer.contains("a=candidate:") && answer.contains(" 127.0.0.1 "),
        "{answer:?}"
    );
    assert!(
        !answer.contains("wxyz"),
        "our credentials, not the client's: {answer:?}"
    );
    assert_eq!(
        patch(Some(&etag), sdpfrag, fragment).0,
        412,
        "the old ETag after the restart"
    );
    let after = "a=ice-ufrag:wxyz\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=video 9 RTP/AVP 0\r\na=mid:0\r\n\
                 a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n";
    assert_eq!(
        patch(Some(&new_etag), sdpfrag, after).0,
        204,
        "trickle on the restarted session"
    );
    // `*` asks for a restart too (whip-whep sends it).
    let restart_stuv = || {
        let response = http()
            .patch(&location)
            .header("content-type", sdpfrag)
            .header("if-match", "*")
            .body("a=ice-ufrag:stuv\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")
            .send()
            .expect("PATCH restart");
        let etag = header(&response, "etag");
        (response.status().as_u16(), etag, response.text().unwrap_or_default())
    };
    let (status, stuv_etag, body) = restart_stuv();
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(&ufrag), "each restart has new credentials: {body}");
    // A trickle naming the tag from before that restart is refused (it raced the restart: it must not act on the
    // restarted session, whose credentials it does not know).
    assert_eq!(
        patch(Some(&new_etag), sdpfrag, after).0,
        412,
        "the tag from before the second restart"
    );
    // The same restart again (its answer lost on the way): the same answer and tag, not a second restart.
    let repeated = restart_stuv();
    assert_eq!(repeated, (200, stuv_etag.clone(), body.clone()), "a restart retried");
    // A restart whose candidate names a section the offer has not is refused whole: the session keeps its
    // credentials (the retried restart still gets the same answer).
    let (status, refused) = patch(
        Some("*"),
        sdpfrag,
        "a=ice-ufrag:qrst\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=mid:9\r\n\
         a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
    );
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        restart_stuv(),
        (200, stuv_etag, body),
        "the refused restart changed the session"
    );
}

/// TURN in `Link` (RFC 9725 §4.6): each configured TURN URI comes with a credential of the client's own, made
/// from the shared secret as coturn's `use-auth-secret` checks it; a real coturn with that secret relays for
/// it (its own client, `turnutils_uclient`, allocates and gets its packet back through the relay) and refuses
/// a forged one. The shared secret is in no response and not in the log.
#[test]
fn turn_links_carry_credentials_a_real_turn_server_takes() {
    const SECRET: &str = "turn-shared-secret-of-the-test";
    let port = free_port();
    let work = tempfile::tempdir().expect("tempdir");
    let _coturn = KillOnDrop(
        Command::new("turnserver")
            .args([
                "--listening-ip",
                "127.0.0.1",
                "--relay-ip",
                "127.0.0.1",
                "--listening-port",
            ])
            .arg(port.to_string())
            .args([
                "--use-auth-secret",
                "--static-auth-secret",
                SECRET,
                "--realm",
                "callcast.test",
            ])
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
                "--log-file",
                "stdout",
            ])
            .arg("--pidfile")
            .arg(work.path().join("turnserver.pid"))
            .arg("--userdb")
            .arg(work.path().join("turndb"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnserver (coturn, installed by deploy/install-deps.sh)"),
    );
    let turn_url = format!("turn:127.0.0.1:{port}?transport=udp");
    let server = Server::start_with_env(
        &["--turn-url", &turn_url, "--stun-server", "stun://127.0.0.1:3478"],
        &[("CALLCAST_TURN_SECRET", SECRET)],
    );
    let offer = http()
        .post(server.whip_url("turn"))
        .header("content-type", "application/sdp")
        .body(well_formed_offer())
        .send()
        .expect("POST offer");
    assert_eq!(offer.status().as_u16(), 201);
    let links: Vec<String> = offer
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let location = header(&offer, "location").expect("Location");
    let body = offer.text().expect("answer");
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0], "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
    let turn = &links[1];
    let prefix = format!("<{turn_url}>; rel=\"ice-server\"; username=\"");
    assert!(
        turn.starts_with(&prefix) && turn.ends_with("; credential-type=\"password\""),
        "{turn}"
    );
    let param = |name: &str| -> String {
        let start = turn.find(&format!("{name}=\"")).expect("parameter") + name.len() + 2;
        turn[start..].split('"').next().expect("closing quote").to_string()
    };
    let (username, credential) = (param("username"), param("credential"));
    // The username is the expiry, a day on, and the participant (the session's id, last in its Location).
    let (expiry, user) = username.split_once(':').expect("expiry:user");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expiry: u64 = expiry.parse().expect("expiry in seconds");
    assert!(expiry.abs_diff(now_s + 24 * 3600) <= 60, "expiry {expiry}, now {now_s}");
    assert!(location.ends_with(&format!("/{user}")), "{username} against {location}");

    let relayed = |credential: &str| {
        let out = Command::new("turnutils_uclient")
            .args([
                "-y", "-n", "1", "-m", "1", "-l", "100", "-u", &username, "-w", credential, "-p",
            ])
            .arg(port.to_string())
            .arg("127.0.0.1")
            .output()
            .expect("run turnutils_uclient (coturn)");
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Total lost packets 0 ")
    };
    // coturn answers once it has started: until then the allocation fails like a refused one.
    wait_for(
        "coturn to relay with the linked credential",
        Duration::from_secs(30),
        || relayed(&credential).then_some(()),
    );
    // Another first character: a credential of another secret, as far as coturn can tell.
    let first = if credential.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{first}{}", &credential[1..]);
    assert!(!relayed(&forged), "coturn relayed with a forged credential");

    for text in [links.join("\n"), body, server.log_text()] {
        assert!(!text.contains(SECRET), "the TURN secret leaked: {text}");
    }
    server.check_log();
}
