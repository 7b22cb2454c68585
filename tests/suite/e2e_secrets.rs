//! Secrets never leave: a run that uses an RTMP stream key, an SRT passphrase and stream id, an API token (also as
//! a WHEP source's bearer token) and a Janus pin, including the errors each can cause, and then every API response
//! and the whole server log are searched for them.

use crate::support::{publish_with, wait_for, KillOnDrop, Server};
use callcast::tools::bench::ingest::NginxRtmp;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "tok-7f3e9a51c2";
const KEY: &str = "live_key_5d1c0b77";
const PIN: &str = "pin-88c2e1";
/// An SRT output's stream id (its passphrase is `KEY`).
const SRT_ID: &str = "srt-sid-2a9e64";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Sends a request with the token; returns status and body text, and keeps the body for the final search.
fn call(seen: &mut Vec<String>, method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, String) {
    let mut request = client().request(method, url).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("request");
    let code = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    seen.push(text.clone());
    (code, text)
}

#[test]
fn keys_tokens_and_pins_appear_nowhere() {
    let nginx = NginxRtmp::start();
    // Everything callcast logs, debug included, is searched (the only test in this file: no other thread reads
    // the environment meanwhile).
    std::env::set_var("RUST_LOG", "callcast=debug,info");
    let server = Server::start(&["--api-token", TOKEN]);
    std::env::remove_var("RUST_LOG");
    let mut seen = Vec::new();
    let whip = server.whip_url("secret");
    let _red: KillOnDrop = publish_with(
        &whip,
        "red",
        &["--pattern", "color:ff0000", "--tone", "0", "--token", TOKEN],
        std::process::Stdio::null(),
    );

    let (code, created) = call(
        &mut seen,
        reqwest::Method::POST,
        &server.url("/v1/broadcasts"),
        Some(
            json!({"source": {"kind": "room", "room": "secret"}, "video": {"width": 320, "height": 180},
                    "outputs": [{"kind": "rtmp", "url": nginx.url(KEY)},
                                {"kind": "rtmp", "url": format!("rtmp://127.0.0.1:9/live/{KEY}")},
                                {"kind": "hls"},
                                {"kind": "srt", "url": format!("srt://127.0.0.1:9?streamid={SRT_ID}&passphrase={KEY}")},
                                {"kind": "whep"}]}),
        ),
    );
    assert_eq!(code, 201, "{created}");
    let id = serde_json::from_str::<Value>(&created).expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let status_url = server.url(&format!("/v1/broadcasts/{id}"));
    wait_for(
        "RTMP live and the dead targets retrying",
        Duration::from_secs(30),
        || {
            let (_, text) = call(&mut seen, reqwest::Method::GET, &status_url, None);
            let s: Value = serde_json::from_str(&text).ok()?;
            let retrying = |i: usize| s["outputs"][i]["reconnects"].as_u64().is_some_and(|n| n >= 1);
            (s["outputs"][0]["state"] == "live" && retrying(1) && retrying(3)).then_some(())
        },
    );

    // A WHEP source pulling this broadcast's whep output: the stream given the token is let in (so the token is
    // sent, as a bearer token), the one without it is refused with a 401 and retries.
    let whep_url = server.url(&format!("/v1/broadcasts/{id}/whep"));
    let (code, pulling) = call(
        &mut seen,
        reqwest::Method::POST,
        &server.url("/v1/broadcasts"),
        Some(
            json!({"source": {"kind": "whep", "streams": [{"url": whep_url, "token": TOKEN, "name": "with"},
                                                          {"url": whep_url, "name": "without"}]},
                    "video": {"width": 320, "height": 180}, "outputs": [{"kind": "hls"}]}),
        ),
    );
    assert_eq!(code, 201, "{pulling}");
    let pulling_url = server.url(&format!(
        "/v1/broadcasts/{}",
        serde_json::from_str::<Value>(&pulling).expect("JSON")["id"]
            .as_str()
            .expect("id")
    ));
    wait_for(
        "the stream with the token pulling, the other refused",
        Duration::from_secs(20),
        || {
            let (_, text) = call(&mut seen, reqwest::Method::GET, &pulling_url, None);
            let s: Value = serde_json::from_str(&text).ok()?;
            let streams = &s["source"]["streams"];
            let refused = streams[1]["error"].as_str().is_some_and(|e| e.contains("401"));
            (streams[0]["state"] == "pulling" && refused).then_some(())
        },
    );
    call(&mut seen, reqwest::Method::DELETE, &pulling_url, None);

    // A Janus call that cannot be joined, with a pin: the failure reason must not carry it.
    let dead_janus = format!("http://127.0.0.1:{}/janus", crate::support::free_port());
    let (_, janus) = call(
        &mut seen,
        reqwest::Method::POST,
        &server.url("/v1/broadcasts"),
        Some(
            json!({"source": {"kind": "janus", "url": dead_janus, "room": 1234, "pin": PIN},
                    "outputs": [{"kind": "hls"}]}),
        ),
    );
    let janus_id = serde_json::from_str::<Value>(&janus).expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_for("the Janus broadcast failed", Duration::from_secs(15), || {
        let (_, text) = call(
            &mut seen,
            reqwest::Method::GET,
            &server.url(&format!("/v1/broadcasts/{janus_id}")),
            None,
        );
        text.contains("\"failed\"").then_some(())
    });

    // Mistakes that carry secrets are refused without echoing them.
    for bad in [
        json!({"source": {"kind": "room", "room": "secret"}, "outputs": [{"kind": "rtmp", "url": format!("rtmpx://h/app/{KEY}")}]}),
        json!({"source": {"kind": "room", "room": "secret"}, "outputs": [{"kind": "rtmp", "url": format!("rtmp://h/{KEY}")}]}),
        json!({"source": {"kind": "janus", "url": format!("http://u:{PIN}@h/janus"), "room": 1, "pin": PIN}, "outputs": [{"kind": "hls"}]}),
        json!({"source": {"kind": "room", "room": "secret"}, "outputs": [{"kind": "srt", "url": format!("srt://h?passphrase={KEY}")}]}),
        json!({"source": {"kind": "room", "room": "secret"}, "outputs": [{"kind": "srt", "url": format!("srt://h:1?streamid={SRT_ID}&{KEY}=x")}]}),
    ] {
        let (code, _) = call(
            &mut seen,
            reqwest::Method::POST,
            &server.url("/v1/broadcasts"),
            Some(bad),
        );
        assert_eq!(code, 400);
    }
    let wrong = client()
        .get(server.url("/v1/broadcasts"))
        .bearer_auth(format!("{TOKEN}x"))
        .send()
        .expect("GET");
    assert_eq!(wrong.status().as_u16(), 401);
    seen.push(wrong.text().unwrap_or_default());

    for path in ["/v1/broadcasts", "/metrics", "/readyz", "/v1/openapi.json"] {
        call(&mut seen, reqwest::Method::GET, &server.url(path), None);
    }
    call(&mut seen, reqwest::Method::DELETE, &status_url, None);
    call(&mut seen, reqwest::Method::GET, &server.url("/v1/broadcasts"), None);

    let log = server.log_text();
    assert!(
        log.contains("DEBUG") && log.contains("output failed"),
        "the log has content: {log}"
    );
    for secret in [KEY, TOKEN, PIN, SRT_ID] {
        assert!(!log.contains(secret), "{secret} in the server log");
        for body in &seen {
            assert!(!body.contains(secret), "{secret} in an API response: {body}");
        }
    }
}
