//! `callcast bench` in CI: a short scenario (1 participant, 5 s) with both baselines runs end to end and every
//! figure it prints is there and plausible. The figures themselves are measured outside CI
//! (docs/benchmarks.md); this checks the measuring works.

use serde_json::Value;
use std::process::Command;

/// Runs `callcast bench` with `args` (at most 240 s); its stdout and first JSON line.
fn bench(args: &[&str]) -> (String, Value) {
    let out = Command::new("timeout")
        .args(["240", env!("CARGO_BIN_EXE_callcast"), "bench"])
        .args(args)
        .output()
        .expect("run callcast bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_str(stdout.lines().next().expect("a JSON line")).expect("JSON");
    (stdout, line)
}

#[test]
fn a_five_second_scenario_prints_every_figure() {
    let (stdout, line) = bench(&["--participants", "1", "--warmup-s", "2", "--window-s", "5"]);
    assert_eq!(line["scenario"]["via"], "whip", "{line}");
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

/// `--via rtp`: the participant joins as plain RTP (`callcast publish --rtp`) and its frames reach the ingest
/// with their clock stamps, as over WHIP.
#[test]
fn participants_can_join_over_plain_rtp() {
    let (_, line) = bench(&[
        "--participants",
        "1",
        "--via",
        "rtp",
        "--no-baseline",
        "--warmup-s",
        "2",
        "--window-s",
        "3",
    ]);
    let n = |key: &str| line[key].as_f64().unwrap_or(f64::NAN);
    assert_eq!(line["scenario"]["via"], "rtp", "{line}");
    assert!(n("cores") > 0.02 && n("cores") < 2.0, "{line}");
    assert!(n("fps_out") >= 25.0, "{line}");
    assert!(n("latency_samples") >= 60.0, "{line}");
    assert_eq!(n("latency_unread"), 0.0, "{line}");
}

/// `--overlay-blend` measures the overlay layer on its own: the title and logo cost the layer's thread more than no
/// overlay does, a cross-fade's frames more than the overlays alone, and cuts show on the next frame or the one
/// after (the one in flight). The figures of the notes come from release builds; this is a debug build.
#[test]
fn the_overlay_blend_bench_measures_each_figure() {
    let (_, line) = bench(&[
        "--overlay-blend",
        "--blend-frames",
        "30",
        "--pairs",
        "1",
        "--blend-changes",
        "3",
    ]);
    let n = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let first = |v: &Value| n(&v[0]);
    let stat = &line["static"];
    assert!(
        first(&stat["with_us_per_frame"]) > first(&stat["without_us_per_frame"]),
        "{line}"
    );
    assert!(n(&stat["cores_median"]) > 0.0, "{line}");
    let fade = &line["cross_fade"];
    assert_eq!(fade["frames"], 30, "{line}");
    assert!(
        first(&fade["fading_us_per_frame"]) > first(&fade["overlays_alone_us_per_frame"]),
        "{line}"
    );
    let cut = &line["on_air"]["fade_ms_0"];
    assert_eq!(cut["frames_to_show"].as_array().map(Vec::len), Some(3), "{line}");
    assert!(cut["max"].as_u64().is_some_and(|m| (1..=2).contains(&m)), "{line}");
    let pictures = line["pictures"].as_array().expect("pictures");
    assert_eq!(pictures.len(), 2, "{line}");
    assert!(pictures.iter().all(|p| p["width"].as_u64() > Some(10)), "{line}");
}
