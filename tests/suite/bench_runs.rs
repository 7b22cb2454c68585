//! `callcast bench` in CI: a short scenario (1 participant, 5 s) with both baselines runs end to end and every
//! figure it prints is there and plausible. The figures themselves are measured outside CI
//! (docs/benchmarks.md); this checks the measuring works.

use serde_json::Value;
use std::process::Command;

#[test]
fn a_five_second_scenario_prints_every_figure() {
    let out = Command::new("timeout")
        .args([
            "240",
            env!("CARGO_BIN_EXE_callcast"),
            "bench",
            "--participants",
            "1",
            "--warmup-s",
            "2",
            "--window-s",
            "5",
        ])
        .output()
        .expect("run callcast bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_str(stdout.lines().next().expect("a JSON line")).expect("JSON");
    let n = |key: &str| line[key].as_f64().unwrap_or(f64::NAN);

    assert!(n("cores") > 0.02 && n("cores") < 2.0, "{line}");
    assert!(n("fps_out") >= 25.0, "{line}");
    assert!(n("dropped_pct") < 5.0, "{line}");
    assert!(n("rss_mb_peak") > 20.0, "{line}");
    assert!(n("start_ms_rtmp") > 0.0 && n("start_ms_rtmp") < 10_000.0, "{line}");
    assert!(n("start_ms_hls") > 0.0, "{line}");
    // Every frame of the window came back through the ingest with its clock stamp read.
    assert!(n("latency_samples") >= 100.0, "{line}");
    assert!(n("latency_ms_p50") > 0.0 && n("latency_ms_p95") < 2000.0, "{line}");
    assert!(n("latency_ms_p50") <= n("latency_ms_p95"), "{line}");
    assert_eq!(n("latency_unread"), 0.0, "{line}");
    assert!(n("floor_cores") > 0.02 && n("encode_only_cores") > 0.01, "{line}");
    assert!(n("cores_per_floor") > 0.0, "{line}");
    assert!(
        stdout.contains("participants broadcasts"),
        "the table follows: {stdout}"
    );
}
