//! RTMPS outputs verify the server's certificate: against the system's CAs plus `rtmp_ca_file`; a certificate
//! for another host is refused with a clear output error; `tls_verify: false` is an explicit, logged choice.
//! The ingest is nginx-rtmp behind an nginx `stream` TLS terminator, with a CA the test makes.

use crate::support::broadcast::Broadcast;
use crate::support::media::streams;
use crate::support::tls::{TestCa, TlsTerminator};
use crate::support::{wait_for, Server};
use callcast::tools::bench::ingest::NginxRtmp;
use serde_json::{json, Value};
use std::time::Duration;

fn output<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["outputs"]
        .as_array()
        .and_then(|outputs| outputs.iter().find(|o| o["id"] == id))
        .unwrap_or_else(|| panic!("no output {id} in {status}"))
}

fn small(outputs: Value) -> Value {
    json!({
        "source": {"kind": "room", "room": "tls"},
        "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
        "outputs": outputs,
    })
}

#[test]
fn rtmps_outputs_verify_the_ingest_certificate() {
    let ca = TestCa::new();
    let ingest = NginxRtmp::start();
    let tls = TlsTerminator::start(&ca, ingest.port);
    let ca_file = ca.ca_file();
    let server = Server::start(&["--rtmp-ca-file", ca_file.to_str().expect("utf-8 path")]);
    let bc = Broadcast::start(
        &server,
        &small(json!([
            {"kind": "rtmp", "url": format!("rtmps://localhost:{}/live/trusted", tls.good_port)},
            {"kind": "rtmp", "url": format!("rtmps://localhost:{}/live/otherhost", tls.wrong_port)},
            {"kind": "rtmp", "url": format!("rtmps://localhost:{}/live/unchecked", tls.wrong_port), "tls_verify": false},
        ])),
    );
    let status = wait_for(
        "the trusted outputs live, the other refused",
        Duration::from_secs(30),
        || {
            let s = bc.status();
            let refused = output(&s, "out_1")["error"].as_str().is_some();
            (output(&s, "out_0")["state"] == "live" && output(&s, "out_2")["state"] == "live" && refused).then_some(s)
        },
    );
    let refused = output(&status, "out_1");
    assert!(
        matches!(refused["state"].as_str(), Some("reconnecting") | Some("failed")),
        "{refused}"
    );
    let error = refused["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(error.contains("certificate is not trusted"), "{error}");
    let log = server.log_text();
    // The warning names the output (broadcast, output id, the URL with its key hidden), never its key.
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("verification is off")).collect();
    assert!(!warnings.is_empty(), "the unchecked output is logged");
    let redacted = format!("rtmps://localhost:{}/live/***", tls.wrong_port);
    for line in &warnings {
        assert!(
            line.contains(&bc.id) && line.contains("output_id=out_2") && line.contains(&redacted),
            "{line}"
        );
    }
    assert!(!log.contains("unchecked"), "the unchecked output's key is in the log");
    // The key is never in the status or the log, even in a TLS error.
    assert!(!status.to_string().contains("otherhost") && !log.contains("otherhost"));

    wait_for("the trusted stream recorded", Duration::from_secs(20), || {
        std::fs::metadata(ingest.recording("trusted"))
            .ok()
            .filter(|m| m.len() > 20_000)
    });
    assert_eq!(bc.stop()["state"], "ended");
    let recorded = streams(ingest.recording("trusted").to_str().expect("path"));
    assert!(
        recorded
            .iter()
            .any(|(kind, codec, ..)| kind == "video" && codec == "h264"),
        "{recorded:?}"
    );
    assert!(
        !ingest.recording("otherhost").exists(),
        "nothing went through the wrong-host certificate"
    );
    drop(tls);
}

#[test]
fn without_the_ca_the_ingest_is_not_trusted() {
    let ca = TestCa::new();
    let ingest = NginxRtmp::start();
    let tls = TlsTerminator::start(&ca, ingest.port);
    let server = Server::start(&[]);
    let bc = Broadcast::start(
        &server,
        &small(json!([
            {"kind": "rtmp", "url": format!("rtmps://localhost:{}/live/untrusted", tls.good_port)},
            {"kind": "hls", "segment_seconds": 1},
        ])),
    );
    let status = wait_for("the untrusted output refused", Duration::from_secs(30), || {
        let s = bc.status();
        (output(&s, "out_0")["error"].as_str().is_some() && output(&s, "out_1")["state"] == "live").then_some(s)
    });
    let error = output(&status, "out_0")["error"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(error.contains("certificate is not trusted"), "{error}");
    assert_eq!(bc.stop()["state"], "ended");
    assert!(!ingest.recording("untrusted").exists());
    // The handshake reached the terminator and was given up by us, not by it.
    assert!(tls.error_log().contains("SSL"), "{}", tls.error_log());
}
