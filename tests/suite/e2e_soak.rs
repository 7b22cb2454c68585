//! A short soak (`callcast bench --soak 60s`): participants join and leave every 5 s, the layout switches every
//! 7 s, the RTMP server is restarted twice. Nothing the server holds grows, the RTMP output reconnects after every
//! restart, no frame is dropped, audio stays with video and the HLS timeline keeps to the wall clock.
//! The 30-minute run and its figures are in docs/reliability.md.

use serde_json::Value;
use std::process::Command;

#[test]
fn a_minute_of_churn_leaves_nothing_behind() {
    let out = Command::new("timeout")
        .args(["300", env!("CARGO_BIN_EXE_callcast"), "bench", "--soak", "60s"])
        .output()
        .expect("run callcast bench --soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON report");
    let n = |path: &str| report.pointer(path).and_then(Value::as_f64).unwrap_or(f64::NAN);

    assert!(n("/joins") >= 5.0 && n("/layout_switches") >= 6.0, "{report}");
    assert!(n("/rtmp_restarts") >= 2.0, "{report}");
    assert!(
        n("/rtmp_reconnects") >= n("/rtmp_restarts"),
        "every restart reconnected: {report}"
    );
    assert!(n("/frames_out") >= 60.0 * 29.0, "{report}");
    assert!(n("/frames_dropped") <= n("/frames_out") / 100.0, "{report}");
    // Same participants at both ends: threads and open files back where they were, memory close to it.
    assert!(n("/end/threads") <= n("/start/threads") + 4.0, "{report}");
    assert!(n("/end/open_files") <= n("/start/open_files") + 8.0, "{report}");
    assert!(
        n("/end/rss_bytes") <= n("/start/rss_bytes") + 64.0 * 1_048_576.0,
        "{report}"
    );
    // About one mark a second; most within 45 ms, the middle one well within.
    assert!(n("/av_marks") >= 45.0, "{report}");
    assert!(n("/av_offset_ms_p50").abs() <= 45.0, "{report}");
    assert!(n("/av_within_45ms_pct") >= 90.0, "{report}");
    // The outputs' timestamps keep to the wall clock: a few ms over the minute (one status tick of jitter).
    assert!(n("/timeline_drift_ms").abs() <= 50.0, "{report}");
}
