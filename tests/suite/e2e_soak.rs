//! A short soak (`callcast bench --soak 60s`): participants join and leave every 5 s, the layout switches every
//! 7 s, the RTMP server is restarted twice. Nothing the server holds grows, the RTMP output reconnects after every
//! restart, no frame is missing from the output, audio stays with video, and what a viewer of the HLS output gets
//! keeps to the wall clock of its arrival and shows the pinned participant's pictures (read by their clock
//! stamps) once each, with few shown twice or never. The 30-minute run and its figures are in docs/reliability.md.

use serde_json::Value;
use std::process::Command;

// Tolerances. Measured on the 2-core machine while other helpers' builds ran (so not as CI runs it, alone):
// at load 8: 0 holes, 0/2 lone flashes/beeps, drift +92 ms, spread 344 ms, every stamp read, 2.4% of frames
// repeated and 4.2% skipped (fails: a publisher at nice 10 starved of CPU paints its stamps late, which reads as
// skipped); at load 10-12: drift +50 and +59 ms, spread 534 and 340 ms, repeated 4.6-9.7%, skipped 9.7-14% (the
// A/V check failed there too). Breaking the product shows each check fails: video timestamps 0.2% slow gave 4
// frames more than their span (frames_dropped still 0) and drift +188 ms; dropping every 15th decoded
// video frame of the participants gave 43% repeated and 55% skipped.
/// Output frames missing from the timeline (one tolerated for a frame at the edges of the window).
const MAX_HOLES: f64 = 1.0;
/// Flashes without a beep and beeps without a flash, each (a layout switch can hide a flash).
const MAX_LONE_MARKS: f64 = 3.0;
/// The lag of the HLS output behind the wall clock of its arrival may move this much over the minute. A minute
/// cannot measure drift finer: segment arrivals scatter by ~150 ms around their trend, so a least-squares slope
/// over 34 two-second segments is uncertain by ~90 ms (one sigma) over the span; the lead's run at load 4-6 read
/// +101 ms on the unbroken product. 300 ms (3 sigma) catches a clock off by 0.5% or more; finer errors show as
/// holes (0.2% slow gave 4), and the 30-minute run in docs/reliability.md measures drift properly.
const MAX_DRIFT_MS: f64 = 300.0;
/// Segments arrive within this of their trend (a stall the output never caught up on is a step in the lag);
/// 340-534 ms were read under load.
const MAX_LAG_SPREAD_MS: f64 = 700.0;
/// Shares of the output frames where the pinned participant's stamp reads, shows a picture again, skips one.
const MIN_READ_SHARE: f64 = 0.95;
const MAX_REPEATED_SHARE: f64 = 0.03;
const MAX_SKIPPED_SHARE: f64 = 0.03;

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
    println!("{report}");
    let n = |path: &str| report.pointer(path).and_then(Value::as_f64).unwrap_or(f64::NAN);

    assert!(n("/joins") >= 5.0 && n("/layout_switches") >= 6.0, "{report}");
    assert!(n("/rtmp_restarts") >= 2.0, "{report}");
    assert!(
        n("/rtmp_reconnects") >= n("/rtmp_restarts"),
        "every restart reconnected: {report}"
    );
    assert!(n("/frames_out") >= 60.0 * 29.0, "{report}");
    // Holes in the output's timeline, as the broadcast counts them and as a viewer decoding the HLS finds them.
    assert!(n("/frames_dropped") <= MAX_HOLES, "{report}");
    assert!(n("/viewer_frames_missing").abs() <= MAX_HOLES, "{report}");
    // Same participants at both ends: threads and open files back where they were, memory close to it.
    // Besides tokio's threads: its blocking pool keeps idle threads 10 s (see the report's field).
    assert!(
        n("/threads_besides_tokio/1") <= n("/threads_besides_tokio/0") + 4.0,
        "{report}"
    );
    assert!(n("/end/open_files") <= n("/start/open_files") + 8.0, "{report}");
    assert!(
        n("/end/rss_bytes") <= n("/start/rss_bytes") + 64.0 * 1_048_576.0,
        "{report}"
    );
    // About one mark a second; most within 45 ms, the middle one well within; the marks that paired with
    // nothing (a flash missed around a layout switch, a beep taken for one) counted and bounded.
    assert!(n("/av_marks") >= 45.0, "{report}");
    assert!(n("/av_offset_ms_p50").abs() <= 45.0, "{report}");
    assert!(n("/av_within_45ms_pct") >= 90.0, "{report}");
    assert!(
        n("/av_lone_flashes") <= MAX_LONE_MARKS && n("/av_lone_beeps") <= MAX_LONE_MARKS,
        "{report}"
    );
    // What a viewer got: a segment every 2 s through the run, arriving in step with its timestamps.
    assert!(n("/viewer_segments") >= 25.0, "{report}");
    assert!(n("/viewer_drift_ms").abs() <= MAX_DRIFT_MS, "{report}");
    assert!(n("/viewer_lag_spread_ms") <= MAX_LAG_SPREAD_MS, "{report}");
    // The pinned participant's pictures, by their clock stamps: nearly every output frame shows one, and
    // hardly any is shown twice or never.
    let frames = n("/pictures/frames");
    assert!(frames >= 60.0 * 29.0, "{report}");
    assert!(n("/pictures/read") >= frames * MIN_READ_SHARE, "{report}");
    assert!(n("/pictures/repeated") <= frames * MAX_REPEATED_SHARE, "{report}");
    assert!(n("/pictures/skipped") <= frames * MAX_SKIPPED_SHARE, "{report}");
}
