//! Nothing is left behind per broadcast: one server runs 30 broadcasts one after another (two participants in
//! the built-in room, HLS out), and its threads, open files, GStreamer objects and resident memory come back to
//! where they were after the first few.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::gst_objects::{alive_objects, tracer_env};
use crate::support::{publish, wait_for, KillOnDrop, Server};
use callcast::procstat::{usage, Usage};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const ROOM: &str = "leaks";
const BROADCASTS: usize = 30;
/// Broadcasts before the baseline: the first ones load plugins, fill caches and start pools that stay.
const WARM_UP: usize = 3;
/// The broadcast after which memory is read a second time; from here on it must stay flat.
const MIDWAY: usize = 10;
/// Threads that come and go on their own (idle pool threads of GLib and tokio retire after 10-15 s).
const THREAD_SLACK: u64 = 4;
/// Sockets and pipes of a broadcast still closing when the figures are read.
const FD_SLACK: u64 = 4;
/// GStreamer objects of one type that may be alive beyond the baseline (a participant's pad or task caught in
/// a different moment); a leak per broadcast adds one per broadcast, 27 here.
const OBJECT_SLACK: i64 = 3;
/// Growth allowed between broadcast 10 and 30. With two malloc arenas (below) the server's RSS moved within
/// +-4 MB over 50 broadcasts here (110-116 MB), with or without the hub's old leak of one appsink per
/// broadcast (too small to see at 320x180: the object count above catches it); 10 MB over 20 broadcasts
/// catches anything of 500 KB or more per broadcast.
const RSS_SLACK_BYTES: u64 = 10 * 1024 * 1024;

/// The server's environment: the leaks tracer (`support::gst_objects`) lists the GStreamer objects alive on
/// SIGUSR1. glibc gives each new thread up to 8 malloc arenas per core, each keeping what it once held: RSS then
/// climbs for dozens of broadcasts (+15 MB from broadcast 10 to 30, slowing) without any leak. Two arenas make
/// RSS reflect what is allocated.
fn env(gst_log: &Path) -> Vec<(&'static str, String)> {
    let mut env = tracer_env(gst_log);
    env.push(("MALLOC_ARENA_MAX", "2".into()));
    env
}

fn broadcast(server: &Server) -> Broadcast {
    Broadcast::start(
        server,
        &json!({
            "source": {"kind": "room", "room": ROOM},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1}],
        }),
    )
}

/// Live with both participants on it and its HLS output writing.
fn fully_live(status: &Value) -> bool {
    status["state"] == "live" && participant_names(status).len() == 2 && status["outputs"][0]["state"] == "live"
}

fn read(pid: &str) -> Usage {
    usage(pid).expect("the server's /proc entry")
}

/// Types with more objects alive in `now` than in `before` beyond the slack, with both counts.
fn grown(before: &BTreeMap<String, i64>, now: &BTreeMap<String, i64>) -> Vec<String> {
    now.iter()
        .filter_map(|(kind, &n)| {
            let was = before.get(kind).copied().unwrap_or(0);
            (n > was + OBJECT_SLACK).then(|| format!("{kind} {was} -> {n}"))
        })
        .collect()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

#[test]
fn thirty_broadcasts_leave_nothing_behind() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let gst_log = scratch.path().join("gst-leaks.log");
    let env = env(&gst_log);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(&[], &env);
    let pid = server.process.pid().to_string();
    let _red: KillOnDrop = publish(&server.whip_url(ROOM), "red", "color:ff0000");
    let _blue: KillOnDrop = publish(&server.whip_url(ROOM), "blue", "color:0000ff");
    let started = Instant::now();
    let mut baseline = None;
    let mut midway = None;
    for n in 1..=BROADCASTS {
        let bc = broadcast(&server);
        wait_for(&format!("broadcast {n} live"), Duration::from_secs(20), || {
            fully_live(&bc.status()).then_some(())
        });
        let ended = bc.stop();
        assert_eq!(ended["state"], "ended", "broadcast {n}: {ended}");
        if n == WARM_UP {
            baseline = Some((read(&pid), alive_objects(&pid, &gst_log)));
        }
        if n == MIDWAY {
            midway = Some(read(&pid));
        }
    }
    let elapsed = started.elapsed();
    let (baseline, objects_before) = baseline.expect("baseline read");
    let midway = midway.expect("midway read");
    // Threads and files of the last broadcast close a moment after it reports `ended`.
    let settled =
        |u: &Usage| u.threads <= baseline.threads + THREAD_SLACK && u.open_files <= baseline.open_files + FD_SLACK;
    let mut end = read(&pid);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !settled(&end) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        end = read(&pid);
    }
    let objects_after = alive_objects(&pid, &gst_log);
    let total = |m: &BTreeMap<String, i64>| m.values().sum::<i64>();
    let figures = format!(
        "{BROADCASTS} broadcasts in {:.1} s; after {WARM_UP}: {} threads, {} fds, {} GStreamer objects, {:.1} MB; \
         after {MIDWAY}: {} threads, {} fds, {:.1} MB; after {BROADCASTS}: {} threads, {} fds, {} GStreamer \
         objects, {:.1} MB (RSS {:+.1} MB since {MIDWAY})",
        elapsed.as_secs_f64(),
        baseline.threads,
        baseline.open_files,
        total(&objects_before),
        mb(baseline.rss_bytes),
        midway.threads,
        midway.open_files,
        mb(midway.rss_bytes),
        end.threads,
        end.open_files,
        total(&objects_after),
        mb(end.rss_bytes),
        (end.rss_bytes as f64 - midway.rss_bytes as f64) / 1_048_576.0,
    );
    println!("leak figures: {figures}");
    assert!(
        end.threads <= baseline.threads + THREAD_SLACK,
        "threads grew: {figures}"
    );
    assert!(
        end.open_files <= baseline.open_files + FD_SLACK,
        "open files grew: {figures}"
    );
    let grown = grown(&objects_before, &objects_after);
    assert!(grown.is_empty(), "GStreamer objects left behind: {grown:?}; {figures}");
    assert!(
        end.rss_bytes <= midway.rss_bytes + RSS_SLACK_BYTES,
        "resident memory kept growing: {figures}"
    );
    server.check_log();
}
