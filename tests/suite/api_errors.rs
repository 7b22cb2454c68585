//! Bad input gets a clear 4xx naming the field, without a socket (router called in-process).

use axum::http::StatusCode;
use serde_json::Value;

fn app() -> (axum::Router, crate::in_process::AppDir) {
    crate::in_process::app(&[])
}

async fn call(app: &axum::Router, method: &str, uri: &str, content_type: &str, body: &str) -> (StatusCode, Value) {
    let (status, text) = crate::in_process::send(app, method, uri, &[("content-type", content_type)], body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post_broadcast(app: &axum::Router, body: &str) -> (StatusCode, Value) {
    call(app, "POST", "/v1/broadcasts", "application/json", body).await
}

#[tokio::test]
async fn malformed_broadcast_requests_name_the_field() {
    let (app, _dir) = app();
    let cases = [
        ("{\"source\":", "body"),
        ("[]", "body"),
        (
            r#"{"source":{"kind":"zoom","room":"a"},"outputs":[{"kind":"hls"}]}"#,
            "source.kind",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"rtmp","url":"http://example.com/app/key"}]}"#,
            "outputs[0].url",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"video":{"width":0},"outputs":[{"kind":"hls"}]}"#,
            "video.width",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"rtmp","url":"rtmp://h/app/k","reconnect_initial_ms":5000,"reconnect_max_interval_s":2}]}"#,
            "outputs[0].reconnect_max_interval_s",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"rtmp","url":"rtmp://h/app/k","tls_verify":false}]}"#,
            "outputs[0].tls_verify",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls"}],"video_timeout_s":0}"#,
            "video_timeout_s",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls"}],"webhook_url":"ftp://x/y"}"#,
            "webhook_url",
        ),
        // A rendition as tall as the 720p picture, one with a bitrate out of range, one of no picture.
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"rtmp","url":"rtmp://h/app/k"},{"kind":"hls","renditions":[{"height":720,"bitrate_kbps":800}]}]}"#,
            "outputs[1].renditions[0].height",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls","renditions":[{"height":360,"bitrate_kbps":800},{"height":240,"bitrate_kbps":50}]}]}"#,
            "outputs[0].renditions[1].bitrate_kbps",
        ),
        (
            r#"{"source":{"kind":"room","room":"a"},"video":null,"outputs":[{"kind":"hls","renditions":[{"height":360,"bitrate_kbps":800}]}]}"#,
            "outputs[0].renditions",
        ),
        (r#"{"source":{"kind":"room","room":"a"},"outputs":[]}"#, "outputs"),
        (r#"{"source":{"kind":"room","room":"a"}}"#, "outputs"),
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls"}],"colour":"red"}"#,
            "colour",
        ),
        // A clock in a zone the tz database does not know (a fixed offset and `Europe/Paris` are accepted).
        (
            r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"hls"}],"overlays":[{"kind":"clock","timezone":"+01:00"},{"kind":"clock","timezone":"Europe/Paris"},{"kind":"clock","timezone":"Europe/Atlantis"}]}"#,
            "overlays[2].timezone",
        ),
    ];
    for (body, field) in cases {
        let (status, json) = post_broadcast(&app, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {json}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{json}");
        assert_eq!(json["field"], field, "{body}: {json}");
    }
}

#[tokio::test]
async fn rtmp_url_errors_never_echo_the_key() {
    let (app, _dir) = app();
    let body =
        r#"{"source":{"kind":"room","room":"a"},"outputs":[{"kind":"rtmp","url":"ftp://h/app/sk_do_not_echo"}]}"#;
    let (status, json) = post_broadcast(&app, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!json.to_string().contains("sk_do_not_echo"), "{json}");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (app, _dir) = app();
    let (status, json) = call(&app, "POST", "/v1/broadcasts", "text/plain", "{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{json}");
}

#[tokio::test]
async fn unknown_or_hostile_ids_are_404() {
    let (app, _dir) = app();
    for uri in [
        "/v1/broadcasts/bc_0000000000000000",
        "/v1/broadcasts/..%2F..%2Fetc",
        "/v1/broadcasts/nope",
        "/v1/broadcasts/bc_0000000000000000/hls/index.m3u8",
        "/v1/broadcasts/bc_0000000000000000/hls/..%2F..%2Fserver.log",
        "/v1/broadcasts/..%2Fx/hls/index.m3u8",
    ] {
        let (status, json) = call(&app, "GET", uri, "application/json", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {json}");
    }
    let (status, _) = call(
        &app,
        "DELETE",
        "/v1/broadcasts/bc_0000000000000000",
        "application/json",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

const NO_USABLE_CODEC_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:100 AV1X/90000\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\na=setup:actpass\r\n";

#[tokio::test]
async fn whip_offer_without_usable_codec_is_a_quick_400() {
    let (app, _dir) = app();
    let started = std::time::Instant::now();
    let (status, json) = call(
        &app,
        "POST",
        "/v1/rooms/r/whip",
        "application/sdp",
        NO_USABLE_CODEC_OFFER,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert_eq!(json["field"], "sdp");
    assert!(json["error"].as_str().unwrap_or("").contains("AV1X"), "{json}");
    assert!(started.elapsed().as_secs() < 2, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn whip_garbage_and_wrong_type_are_rejected() {
    let (app, _dir) = app();
    let (status, json) = call(&app, "POST", "/v1/rooms/r/whip", "application/sdp", "hello").await;
    assert_eq!(
        (status, json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("sdp")),
        "{json}"
    );
    let (status, _) = call(&app, "POST", "/v1/rooms/r/whip", "application/json", "{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, json) = call(
        &app,
        "POST",
        "/v1/rooms/..%2Fx/whip",
        "application/sdp",
        NO_USABLE_CODEC_OFFER,
    )
    .await;
    assert_eq!(
        (status, json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("room")),
        "{json}"
    );
    let (status, _) = call(
        &app,
        "DELETE",
        "/v1/rooms/r/whip/p_0000000000000000",
        "application/sdp",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (app, _dir) = app();
    let huge_json = format!(
        "{{\"source\":{{\"kind\":\"room\",\"room\":\"{}\"}}}}",
        "a".repeat(300 * 1024)
    );
    let (status, _) = call(&app, "POST", "/v1/broadcasts", "application/json", &huge_json).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let huge_sdp = format!("v=0\r\n{}", "a=x\r\n".repeat(20 * 1024));
    let (status, json) = call(&app, "POST", "/v1/rooms/r/whip", "application/sdp", &huge_sdp).await;
    assert_eq!(
        (status, json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("sdp")),
        "{json}"
    );
    assert!(
        json["error"].as_str().is_some_and(|e| e.contains("larger than")),
        "{json}"
    );
}

/// Errors the extractors find before a handler runs (size limit, path, query string) get the same JSON body as
/// every other error, not axum's plain text.
#[tokio::test]
async fn extractor_rejections_are_json() {
    let (app, _dir) = app();
    let huge_json = format!("{{\"pad\":\"{}\"}}", "a".repeat(300 * 1024));
    for uri in ["/v1/broadcasts", "/v1/broadcasts/bc_0000000000000000/outputs"] {
        let (status, json) = call(&app, "POST", uri, "application/json", &huge_json).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {json}");
        assert_eq!(json["field"], "body", "{uri}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| e.contains("larger than")),
            "{json}"
        );
    }
    // The WHIP body is read by the handler's own extractor: the safety net still answers JSON.
    let huge_sdp = format!("v=0\r\n{}", "a=x\r\n".repeat(60 * 1024));
    let (status, json) = call(&app, "POST", "/v1/rooms/r/whip", "application/sdp", &huge_sdp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert_eq!(json["field"], "body", "{json}");

    for (uri, field) in [
        ("/v1/broadcasts/%FF%FE", "id"),
        ("/v1/broadcasts/bc_0000000000000000/hls/%C3%28.ts", "file"),
        ("/v1/layouts/%80grid/preview.png", "name"),
        ("/v1/rooms/%FF/whip/p_0000000000000000", "room"),
    ] {
        let method = if uri.contains("/whip/") { "DELETE" } else { "GET" };
        let (status, json) = call(&app, method, uri, "application/json", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
        assert_eq!(json["field"], field, "{uri}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| e.contains("UTF-8")),
            "{uri}: {json}"
        );
    }

    for uri in [
        "/v1/layouts/grid/preview.png?participants=many",
        "/v1/layouts/grid/preview.png?participants=-1",
    ] {
        let (status, json) = call(&app, "GET", uri, "application/json", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
        assert_eq!(json["field"], "query", "{uri}: {json}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{json}");
    }

    // No route, or the wrong method: JSON too, and the 405 keeps its `Allow`.
    let (status, json) = call(&app, "GET", "/v1/nothing-here", "application/json", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    assert!(json["error"].is_string(), "{json}");
    let (status, json) = call(&app, "PUT", "/v1/broadcasts", "application/json", "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{json}");
    assert!(json["error"].is_string(), "{json}");
}

/// Everything after the RTMP application name is the stream key, even with `/`, `?` or `%2F` in it: no part of
/// it comes back in a created broadcast, its status, the list, or an error about another field.
#[tokio::test]
async fn rtmp_keys_with_slashes_and_queries_are_never_shown() {
    let (app, _dir) = app();
    let urls = [
        "rtmp://127.0.0.1:9/live/seg_alpha/seg_beta/KEY_gamma",
        "rtmp://127.0.0.1:9/live/KEY_delta%2Fenc_epsilon",
        "rtmp://127.0.0.1:9/live/KEY_zeta?auth=QUERY_eta&x=QUERY_theta",
    ];
    let secrets = ["seg_alpha", "seg_beta", "KEY_", "enc_epsilon", "QUERY_", "auth=", "%2F"];
    let assert_clean = |what: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
    };
    let outputs: Vec<Value> = urls
        .iter()
        .map(|u| serde_json::json!({"kind": "rtmp", "url": u}))
        .collect();
    let request = serde_json::json!({"source": {"kind": "room", "room": "keys"}, "outputs": outputs});
    let (status, created) = post_broadcast(&app, &request.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_clean("the created broadcast", &created.to_string());
    let shown: Vec<&str> = created["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["url"].as_str().expect("url"))
        .collect();
    assert_eq!(shown, ["rtmp://127.0.0.1:9/live/***"; 3], "{created}");
    let id = created["id"].as_str().expect("id");
    for uri in [format!("/v1/broadcasts/{id}"), "/v1/broadcasts".to_string()] {
        let (_, text) = crate::in_process::send(&app, "GET", &uri, &[], "").await;
        assert_clean(&uri, &text);
    }
    // Nothing listens on port 9: each output's connection error (the element's own message) is shown, scrubbed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let errors = loop {
        let (_, text) = crate::in_process::send(&app, "GET", &format!("/v1/broadcasts/{id}"), &[], "").await;
        assert_clean("the status", &text);
        let status: Value = serde_json::from_str(&text).expect("JSON");
        let errors: Vec<String> = status["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .filter_map(|o| o["error"].as_str().map(str::to_string))
            .collect();
        if errors.len() == urls.len() {
            break errors;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no error on every output: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(errors.iter().all(|e| !e.is_empty()), "{errors:?}");
    // An error about another field of the same output.
    let mut bad = serde_json::json!({"source": {"kind": "room", "room": "keys"}, "outputs": outputs});
    bad["outputs"][0]["reconnect_initial_ms"] = serde_json::json!(-1);
    let (status, error) = post_broadcast(&app, &bad.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_clean("the error", &error.to_string());
    let (status, _) = call(&app, "DELETE", &format!("/v1/broadcasts/{id}"), "application/json", "").await;
    assert_eq!(status, StatusCode::OK);
}
