//! `callcast bench`: what a broadcast costs on this machine, measured end to end against real peers (synthetic
//! participants in a separate process, nginx-rtmp as the ingest), with an encode-only baseline from the same run;
//! and `--soak DURATION`, a long show under churn. Prints one JSON object per scenario, then a table.
//! `--audio-only` measures an audio-only broadcast against the same call with no broadcast and a composited one.

mod audio_only;
pub mod av_sync;
mod baseline;
mod capacity;
mod cold_start;
mod floor;
pub mod ingest;
pub mod janus;
mod join_time;
mod latency;
mod ll_hls_follow;
mod ll_hls_latency;
mod overlay_blend;
mod overlay_pairs;
pub mod peer;
mod pictures;
mod playback;
mod scenario;
mod server;
mod server_window;
pub mod soak;
mod viewer;
mod whep_client;
mod whep_viewers;

use anyhow::{Context, Result};
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Participants per scenario (comma-separated: one scenario each).
    #[arg(long, value_delimiter = ',', default_value = "4")]
    pub participants: Vec<u32>,
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    #[arg(long, default_value_t = 720)]
    pub height: u32,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    #[arg(long, default_value_t = 2500)]
    pub bitrate_kbps: u32,
    /// x264 preset of the broadcast and the baselines (default: the broadcast default).
    #[arg(long, value_enum, default_value_t)]
    pub preset: crate::mix::preset::X264Preset,
    /// Concurrent broadcasts per scenario (comma-separated, grown in order: the series stops at the first count
    /// that drops or skips 0.5% of frames or more). Baselines are measured for single broadcasts only.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub broadcasts: Vec<u32>,
    /// Show at most this many tiles (the others are heard, not decoded).
    #[arg(long)]
    pub max_tiles: Option<u32>,
    /// Seconds after the broadcast starts before measuring.
    #[arg(long, default_value_t = 10)]
    pub warmup_s: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 60)]
    pub window_s: u64,
    /// Skip the encode-only baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Publishers send H.264 at the canvas size and bitrate, shown alone (`single`): measures the
    /// zero-transcode path (no floor or encode-only baseline: nothing is decoded or encoded).
    #[arg(long)]
    pub zero_transcode: bool,
    /// Participants publish into a real Janus VideoRoom (started by the bench on loopback, one process each) and
    /// the broadcasts join it as a hidden subscriber, instead of the built-in room over WHIP.
    #[arg(long)]
    pub janus: bool,
    /// How participants join the built-in room (comma-separated: one scenario each, measured in the same run):
    /// `whip`, or `rtp` (plain RTP, `callcast publish --rtp`).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "whip",
        conflicts_with = "janus"
    )]
    pub via: Vec<scenario::Via>,
    /// Broadcasts with `video.passthrough: false`: with `--zero-transcode`, the same H.264 participant decoded,
    /// composited and encoded, for comparison.
    #[arg(long)]
    pub no_passthrough: bool,
    /// Measure an audio-only broadcast (`video: null`) instead: the first --participants count in a room with
    /// no broadcast, with an audio-only one and with a composited one at --width/--height/--fps, all to HLS, in
    /// one run (prints one JSON line).
    #[arg(long, conflicts_with_all = ["janus", "zero_transcode", "soak"])]
    pub audio_only: bool,
    /// Broadcasts with a `tracks` output too (every participant's tracks written as received): its cost is the
    /// difference from the same run without, and the `tracks:src` threads (the files' muxing) in `cores_by_thread`.
    #[arg(long)]
    pub tracks: bool,
    /// Broadcasts with a `record` output too (the composite's H.264 and AAC into an MP4, no encode): its cost is
    /// the difference from the same run without, and the `mp4mux` thread in `cores_by_thread`. Such broadcasts
    /// composite always (`video.passthrough` false).
    #[arg(long, conflicts_with = "zero_transcode")]
    pub record: bool,
    /// Extra renditions on the broadcasts' `hls` output, `HEIGHT:KBPS` each (e.g. `360:800`): their cost (one
    /// decode of the output's H.264, a scale and an x264 encode each) is the difference from the same run
    /// without; they run on the output's branch queues (`queue:src` in `cores_by_thread`).
    #[arg(long, value_delimiter = ',', value_parser = parse_rendition, conflicts_with = "audio_only")]
    pub hls_renditions: Vec<(u32, u32)>,
    /// Measure WHEP viewers instead: one broadcast (grid of the first --participants count at --width/--height/
    /// --fps, a `whep` output) with no viewer, then with this many, in one run (prints one JSON line): cores and
    /// memory per viewer, and glass-to-viewer latency read from the first tile's clock stamp.
    #[arg(long, conflicts_with_all = ["janus", "zero_transcode", "soak", "audio_only"])]
    pub whep_viewers: Option<u32>,
    /// Measure glass-to-part latency over low-latency HLS instead: one broadcast (grid of the first
    /// --participants count at --width/--height/--fps, a low-latency `hls` output) followed like an LL-HLS player
    /// (blocking reloads, each part fetched once listed, decoded), from the first tile's clock stamp to the part
    /// fully fetched (prints one JSON line). A player's distance from the live edge comes on top.
    #[arg(long, conflicts_with_all = ["janus", "zero_transcode", "soak", "audio_only", "whep_viewers"])]
    pub ll_hls_latency: bool,
    /// A static title and logo over each broadcast's canvas (compare with the same run without).
    #[arg(long)]
    pub overlays: bool,
    /// Measure the overlay layer alone instead (no broadcast; prints one JSON line): its CPU time per frame on a
    /// --width x --height canvas with the title and logo of --overlays and without, in --pairs alternating rounds of
    /// --blend-frames frames; a --fade-ms layout cross-fade's frames against the same frames without; and on a
    /// live source at --fps, how many frames a change takes to show.
    #[arg(long, conflicts_with_all = ["capacity", "soak", "audio_only", "cold_start"])]
    pub overlay_blend: bool,
    #[arg(long, default_value_t = 600)]
    pub blend_frames: u32,
    /// Measure the overlays in a broadcast instead, decided on a busy machine: one broadcast of the first
    /// --participants count (replaying) at --width/--height/--fps, the title and logo of --overlays put on and
    /// taken off by `PATCH`, --pairs pairs of --window-s windows with and without (alternating order), then
    /// --pairs pairs of layout switches cut and faded over --fade-ms (prints one JSON line).
    #[arg(long, conflicts_with_all = ["capacity", "soak", "audio_only", "cold_start", "overlay_blend"])]
    pub overlay_pairs: bool,
    /// Rounds of --overlay-blend and pairs of --overlay-pairs (each one without and one with).
    #[arg(long, default_value_t = 6)]
    pub pairs: u32,
    /// Changes --overlay-blend times on air, each way and for each fade.
    #[arg(long, default_value_t = 20)]
    pub blend_changes: u32,
    /// The cross-fade --overlay-blend measures.
    #[arg(long, default_value_t = 1000)]
    pub fade_ms: u32,
    /// What the participants send (comma-separated: one scenario each, measured in the same run): `synthetic`
    /// (encoded live; the default) or `replay` (a clip encoded once and looped, `callcast publish --replay`).
    /// Each line reports the publishers' CPU apart, as `publisher_cores`.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub publisher: Vec<scenario::Publisher>,
    /// Find how many concurrent broadcasts of the first --participants count (at --width/--height/--fps) this
    /// machine holds: steps of --step-s seconds, grown until one drops or skips 0.5% of frames or pictures, with
    /// the per-broadcast floor from the same run. Publishers replay (unless --publisher says otherwise).
    #[arg(long, conflicts_with_all = ["janus", "zero_transcode", "soak", "audio_only"])]
    pub capacity: bool,
    /// Seconds measured per --capacity step (after a warm-up of half that, at most 5 s).
    #[arg(long, default_value_t = 20)]
    pub step_s: u64,
    /// Most broadcasts a --capacity step runs (default: 1.5 x what the floor predicts).
    #[arg(long)]
    pub capacity_max: Option<u32>,
    /// With --capacity: print the summary as one JSON line only.
    #[arg(long)]
    pub json: bool,
    /// Time a batch job's cold start instead: with a call of the first --participants count already in progress
    /// (in a Janus room on loopback), `callcast run job.json` from spawn to the first FLV video tag at the local
    /// nginx-rtmp, --cold-start-runs times (prints one JSON line).
    #[arg(long, conflicts_with_all = ["capacity", "soak", "audio_only"])]
    pub cold_start: bool,
    #[arg(long, default_value_t = 5)]
    pub cold_start_runs: u32,
    /// Time joins instead (comma-separated ways, alternated run by run: `rtp`, `whip`): with a grid broadcast of
    /// a room at --width/--height/--fps already on the local nginx-rtmp (the first --participants count in the
    /// room), one participant at a time joins (its publisher per --publisher, synthetic by default), from its join
    /// request (the `POST`) to the first frame out of the ingest showing its clock stamp (and to the first showing
    /// a picture captured after the request), then leaves; --join-runs per way. Prints p50/p95/min/max per way
    /// (one JSON line with --json).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with_all = ["capacity", "soak", "audio_only", "janus", "cold_start"])]
    pub join_time: Vec<scenario::Via>,
    #[arg(long, default_value_t = 10)]
    pub join_runs: u32,
    /// Run a soak instead: e.g. 30m, 90s, 1h.
    #[arg(long, value_parser = parse_duration)]
    pub soak: Option<Duration>,
}

/// `HEIGHT:KBPS` of `--hls-renditions`.
fn parse_rendition(text: &str) -> Result<(u32, u32), String> {
    let (height, kbps) = text.split_once(':').ok_or("HEIGHT:KBPS, e.g. 360:800")?;
    Ok((
        height.parse().map_err(|e| format!("height {height}: {e}"))?,
        kbps.parse().map_err(|e| format!("kbps {kbps}: {e}"))?,
    ))
}

/// `90s`, `30m`, `1h` or plain seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw}: expected e.g. 90s, 30m or 1h"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{raw}: the unit is s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

pub fn run(args: BenchArgs) -> Result<()> {
    let exe = std::env::current_exe().context("locating the callcast binary")?;
    if let Some(duration) = args.soak {
        let report = soak::run(&exe, duration)?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    if args.audio_only {
        let run = server_window::OneBroadcast::from_args(&args);
        println!("{}", serde_json::to_string(&audio_only::run(&exe, &run)?)?);
        return Ok(());
    }
    if let Some(viewers) = args.whep_viewers {
        let run = server_window::OneBroadcast::from_args(&args);
        println!("{}", serde_json::to_string(&whep_viewers::run(&exe, &run, viewers)?)?);
        return Ok(());
    }
    if args.overlay_blend {
        let run = overlay_blend::BlendRun {
            width: args.width,
            height: args.height,
            fps: args.fps,
            frames: args.blend_frames.max(2),
            rounds: args.pairs.max(1),
            fade_ms: args.fade_ms,
            changes: args.blend_changes.max(1),
        };
        println!("{}", serde_json::to_string(&overlay_blend::run(&run)?)?);
        return Ok(());
    }
    if args.overlay_pairs {
        let run = server_window::OneBroadcast::from_args(&args);
        println!(
            "{}",
            serde_json::to_string(&overlay_pairs::run(&exe, &run, args.pairs.max(1), args.fade_ms)?)?
        );
        return Ok(());
    }
    if args.ll_hls_latency {
        let run = server_window::OneBroadcast::from_args(&args);
        println!("{}", serde_json::to_string(&ll_hls_latency::run(&exe, &run)?)?);
        return Ok(());
    }
    if args.capacity {
        return run_capacity(&exe, &args);
    }
    if args.cold_start {
        let run = cold_start::ColdStartRun {
            participants: args.participants.first().copied().unwrap_or(4),
            width: args.width,
            height: args.height,
            fps: args.fps,
            publisher: args.publisher.first().copied().unwrap_or(scenario::Publisher::Replay),
            runs: args.cold_start_runs,
        };
        println!("{}", serde_json::to_string(&cold_start::run(&exe, &run)?)?);
        return Ok(());
    }
    if !args.join_time.is_empty() {
        let run = join_time::JoinTimeRun {
            participants: args.participants.first().copied().unwrap_or(4),
            width: args.width,
            height: args.height,
            fps: args.fps,
            ways: args.join_time.clone(),
            runs: args.join_runs,
            publisher: args.publisher.first().copied().unwrap_or_default(),
        };
        let report = join_time::run(&exe, &run)?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_join_table(&report);
        }
        return Ok(());
    }
    if args.zero_transcode && args.publisher.contains(&scenario::Publisher::Replay) {
        anyhow::bail!("--publisher replay sends VP8: --zero-transcode needs publishers of H.264");
    }
    let publishers = if args.publisher.is_empty() {
        vec![scenario::Publisher::Synthetic]
    } else {
        args.publisher.clone()
    };
    let mut rows = Vec::new();
    let publishers = &publishers;
    for (&participants, &via, &publisher) in args.participants.iter().flat_map(|p| {
        args.via
            .iter()
            .flat_map(move |v| publishers.iter().map(move |k| (p, v, k)))
    }) {
        for &broadcasts in &args.broadcasts {
            let sc = scenario::Scenario {
                participants,
                broadcasts,
                width: args.width,
                height: args.height,
                fps: args.fps,
                bitrate_kbps: args.bitrate_kbps,
                preset: args.preset,
                max_tiles: args.max_tiles,
                zero_transcode: args.zero_transcode,
                janus: args.janus,
                via,
                passthrough: !args.no_passthrough,
                tracks: args.tracks,
                record: args.record,
                hls_renditions: args.hls_renditions.clone(),
                overlays: args.overlays,
                publisher,
                warmup: Duration::from_secs(args.warmup_s),
                window: Duration::from_secs(args.window_s),
            };
            let line = measure_scenario(&exe, &sc, args.no_baseline || args.zero_transcode || broadcasts > 1)?;
            println!("{line}");
            let dropping = dropped_share(&line) >= MAX_DROPPED_PCT;
            rows.push(line);
            if args.broadcasts.len() > 1 {
                if dropping {
                    println!(
                        "{broadcasts} concurrent broadcasts drop or skip >= {MAX_DROPPED_PCT}% of frames: \
                         not growing further"
                    );
                    break;
                }
                println!("{broadcasts} concurrent broadcasts: clean");
            }
        }
    }
    print_table(&rows);
    Ok(())
}

/// `--capacity`: the search, then its summary (one JSON line with `--json`).
fn run_capacity(exe: &std::path::Path, args: &BenchArgs) -> Result<()> {
    let step = Duration::from_secs(args.step_s.max(1));
    let base = scenario::Scenario {
        participants: args.participants.first().copied().unwrap_or(4),
        broadcasts: 1,
        width: args.width,
        height: args.height,
        fps: args.fps,
        bitrate_kbps: args.bitrate_kbps,
        preset: args.preset,
        max_tiles: args.max_tiles,
        zero_transcode: false,
        janus: false,
        via: args.via.first().copied().unwrap_or(scenario::Via::Whip),
        passthrough: true,
        tracks: args.tracks,
        record: args.record,
        hls_renditions: args.hls_renditions.clone(),
        overlays: args.overlays,
        publisher: args.publisher.first().copied().unwrap_or(scenario::Publisher::Replay),
        warmup: capacity::warmup_for(step),
        window: step,
    };
    let summary = capacity::run(exe, &base, args.capacity_max)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

/// A broadcast dropping this share of its frames (or more) is past what the machine carries.
const MAX_DROPPED_PCT: f64 = 0.5;

/// The larger of the output's dropped frames and the first tile's skipped pictures, in percent: a mixer that
/// falls behind still fills every output tick (with older pictures), so the output counter alone reads clean.
fn dropped_share(line: &serde_json::Value) -> f64 {
    let pct = |key: &str| line[key].as_f64().unwrap_or(0.0);
    pct("dropped_pct").max(pct("tile_skipped_pct"))
}

/// One scenario with its baselines (unless skipped), as the JSON line the bench prints.
fn measure_scenario(exe: &std::path::Path, sc: &scenario::Scenario, skip_baselines: bool) -> Result<serde_json::Value> {
    let ingest = ingest::NginxRtmp::try_start_on(peer::free_port())?;
    let figures = scenario::run(exe, sc, &ingest)?;
    let (floor, encode_only) = if skip_baselines {
        (None, None)
    } else {
        (
            Some(floor::floor_cores(sc, &ingest.url("floor"))?),
            Some(baseline::encode_only_cores(sc)?),
        )
    };
    let ratio = |base: Option<f64>| {
        base.filter(|b| *b > 0.0)
            .map(|b| (figures.cores / b * 100.0).round() / 100.0)
    };
    let mut line = serde_json::to_value(&figures)?;
    line["floor_cores"] = serde_json::json!(floor);
    line["cores_per_floor"] = serde_json::json!(ratio(floor));
    line["encode_only_cores"] = serde_json::json!(encode_only);
    line["cores_per_encode_only"] = serde_json::json!(ratio(encode_only));
    Ok(line)
}

fn print_join_table(report: &serde_json::Value) {
    println!(
        "\n{:>5} {:>5} {:>8} {:>8} {:>8} {:>8}",
        "way", "runs", "p50", "p95", "min", "max"
    );
    let ms = |v: &serde_json::Value| v.as_i64().map_or("-".into(), |m| format!("{m} ms"));
    for way in report["join_time"].as_array().into_iter().flatten() {
        println!(
            "{:>5} {:>5} {:>8} {:>8} {:>8} {:>8}",
            way["way"].as_str().unwrap_or("?"),
            way["runs"].to_string(),
            ms(&way["p50_ms"]),
            ms(&way["p95_ms"]),
            ms(&way["min_ms"]),
            ms(&way["max_ms"]),
        );
    }
    println!(
        "machine busy {} (load average {})",
        report["machine_busy"], report["load_average_1m"]
    );
}

fn print_table(rows: &[serde_json::Value]) {
    println!(
        "\n{:>12} {:>10} {:>11} {:>6} {:>10} {:>9} {:>8} {:>8} {:>11} {:>9} {:>9} {:>15} {:>6} {:>12} {:>6}",
        "participants",
        "broadcasts",
        "canvas",
        "cores",
        "publishers",
        "rss MB",
        "fps",
        "dropped",
        "tile rep/skip",
        "start hls",
        "start rtmp",
        "latency p50/95",
        "floor",
        "encode-only",
        "busy"
    );
    for r in rows {
        let s = &r["scenario"];
        let ms = |v: &serde_json::Value| v.as_u64().map_or("-".into(), |m| format!("{m} ms"));
        println!(
            "{:>12} {:>10} {:>11} {:>6.3} {:>10} {:>9} {:>8.2} {:>8} {:>11} {:>9} {:>9} {:>15} {:>6} {:>12} {:>6.2}",
            s["participants"].to_string(),
            s["broadcasts"].to_string(),
            format!("{}x{}@{}", s["width"], s["height"], s["fps"]),
            r["cores"].as_f64().unwrap_or(0.0),
            format!(
                "{:.3} {}",
                r["publisher_cores"].as_f64().unwrap_or(0.0),
                if s["publisher"] == "replay" { "R" } else { "S" }
            ),
            r["rss_mb_peak"].to_string(),
            r["fps_out"].as_f64().unwrap_or(0.0),
            r["frames_dropped"].to_string(),
            format!("{}/{}", r["tile_repeated"], r["tile_skipped"]),
            ms(&r["start_ms_hls"]),
            ms(&r["start_ms_rtmp"]),
            match (r["latency_ms_p50"].as_i64(), r["latency_ms_p95"].as_i64()) {
                (Some(p50), Some(p95)) => format!("{p50}/{p95} ms"),
                _ => "-".into(),
            },
            r["floor_cores"].as_f64().map_or("-".into(), |c| format!("{c:.3}")),
            r["encode_only_cores"]
                .as_f64()
                .map_or("-".into(), |c| format!("{c:.3}")),
            r["machine_busy"].as_f64().unwrap_or(0.0),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_people_write_them() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(super::parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(super::parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(super::parse_duration("3d").is_err());
        assert!(super::parse_duration("m").is_err());
    }
}
