//! One measured broadcast: N participants (one publisher process, one encode, N joins) in a room, composited to
//! HLS and to a local nginx-rtmp; start time to the first HLS segment and the first FLV video tag, then CPU,
//! memory and frames over a steady window.

use super::ingest::NginxRtmp;
use super::janus::{JanusServer, ROOM as JANUS_ROOM, ROOM_PIN};
use super::latency::{first_grid_tile, LatencyProbe};
use super::peer::wait_until;
use super::server::{janus_publisher, publisher, rtp_publisher, BenchServer};
use crate::procstat::{cores_by_thread_name, machine_busy, threads_cpu, usage};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// How the synthetic participants join the built-in room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Whip,
    Rtp,
}

/// What the synthetic participants send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Publisher {
    /// Test picture and tone encoded live (one VP8 + Opus encode per publisher process).
    #[default]
    Synthetic,
    /// A clip encoded once at start and looped (`callcast publish --replay`): next to no CPU.
    Replay,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Scenario {
    pub participants: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub preset: crate::mix::preset::X264Preset,
    /// Concurrent broadcasts, each of its own room of `participants` (its own publisher process).
    pub broadcasts: u32,
    /// `max_tiles` of the grid (default: everyone on screen).
    pub max_tiles: Option<u32>,
    /// Publishers send H.264 at the canvas size and the broadcast uses `single`: their stream goes out as is.
    pub zero_transcode: bool,
    /// Participants in a real Janus room, joined by the broadcasts as a subscriber (else the built-in room).
    pub janus: bool,
    /// How participants join the built-in room.
    pub via: Via,
    /// `video.passthrough` of the broadcasts (off: the same scenario composited and encoded, to compare).
    pub passthrough: bool,
    /// A `tracks` output too: every participant's tracks written as received.
    pub tracks: bool,
    /// A `record` output too: the composite into an MP4.
    pub record: bool,
    /// Extra renditions (height, kbps) on the `hls` output.
    pub hls_renditions: Vec<(u32, u32)>,
    /// A static title and logo over the canvas (`overlays`), drawn the whole run.
    pub overlays: bool,
    /// What the participants send.
    pub publisher: Publisher,
    #[serde(skip)]
    pub warmup: Duration,
    #[serde(skip)]
    pub window: Duration,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub scenario: Scenario,
    /// Gateway CPU seconds per wall second over the window.
    pub cores: f64,
    /// The publisher processes' CPU seconds per wall second over the same window (not in `cores`).
    pub publisher_cores: f64,
    pub rss_mb_peak: f64,
    pub rss_mb_end: f64,
    pub threads: u64,
    pub fps_out: f64,
    pub frames_dropped: u64,
    pub dropped_pct: f64,
    /// From `POST /v1/broadcasts` to the first complete HLS segment on disk.
    pub start_ms_hls: Option<u64>,
    /// From `POST /v1/broadcasts` to the first FLV video tag the RTMP server wrote.
    pub start_ms_rtmp: Option<u64>,
    /// How busy the whole machine was over the window (0..1): a loaded machine makes every figure worse.
    pub machine_busy: f64,
    /// Glass to ingest: from the publisher's clock stamp in a frame to that frame coming out of the RTMP
    /// ingest (read back in the first tile), over the window.
    pub latency_ms_p50: Option<i64>,
    pub latency_ms_p95: Option<i64>,
    pub latency_samples: u64,
    /// Frames whose stamp did not read, rejected rather than guessed.
    pub latency_unread: u64,
    /// Frames whose stamp read but whose arrival was not found by PTS (a matching fault; should be 0).
    pub latency_unmatched: u64,
    /// The first tile over the window: output frames showing the same publisher frame again, and publisher
    /// frames that never reached the output (dropped by the mixer's inputs or the receive path).
    pub tile_repeated: u64,
    pub tile_skipped: u64,
    /// `tile_skipped` per publisher frame over the window, in percent.
    pub tile_skipped_pct: f64,
    /// Where `cores` went: the server's threads over the window by kind (name without the element's number),
    /// largest first.
    pub cores_by_thread: Vec<(String, f64)>,
}

const ROOM: &str = "bench";
/// Keyframes as often as HLS segments (1 s): what a viewer waiting for the first segment needs.
pub const KEYFRAME_INTERVAL_S: u32 = 1;

pub fn run(exe: &Path, sc: &Scenario, ingest: &NginxRtmp) -> Result<Figures> {
    let server = BenchServer::start(exe)?;
    let copies = sc.participants.to_string();
    let rooms: Vec<String> = (0..sc.broadcasts.max(1))
        .map(|b| if b == 0 { ROOM.to_string() } else { format!("{ROOM}{b}") })
        .collect();
    let mut publishers = Vec::new();
    let size = format!("{}x{}", sc.width, sc.height);
    let kbps = sc.bitrate_kbps.to_string();
    let mut flags = vec!["--pattern", "ball", "--clock-stamp"];
    if sc.publisher == Publisher::Replay {
        flags.push("--replay");
    }
    if sc.zero_transcode {
        flags.extend(["--codec", "h264", "--size", &size, "--video-kbps", &kbps]);
    }
    let janus = if sc.janus { Some(JanusServer::start()?) } else { None };
    if let Some(janus) = &janus {
        // One room for every broadcast: N broadcasts of the same call. One process per publisher (Janus joins
        // one participant per session).
        for i in 1..=sc.participants {
            publishers.push(janus_publisher(exe, janus, &format!("p {i}"), &flags)?);
        }
        let n = sc.participants as usize;
        wait_until("the publishers in Janus", Duration::from_secs(60), || {
            let listed = janus.list_participants().ok()?;
            (listed.iter().filter(|(_, publishing)| *publishing).count() >= n).then_some(())
        })?;
    } else {
        flags.extend(["--copies", &copies]);
        for room in &rooms {
            publishers.push(match sc.via {
                Via::Whip => publisher(exe, &server.whip_url(room), "p", &flags)?,
                Via::Rtp => rtp_publisher(exe, &server.rtp_url(room), "p", &flags)?,
            });
            server.wait_participants(room, sc.participants as usize, Duration::from_secs(60))?;
        }
    }
    let mut layout = json!({"template": if sc.zero_transcode { "single" } else { "grid" }});
    if let Some(max) = sc.max_tiles {
        layout["max_tiles"] = json!(max);
    }
    let mut ids = Vec::new();
    let mut starts = None;
    for room in &rooms {
        let renditions: Vec<Value> = sc
            .hls_renditions
            .iter()
            .map(|(height, kbps)| json!({"height": height, "bitrate_kbps": kbps}))
            .collect();
        let mut outputs = vec![
            json!({"kind": "hls", "segment_seconds": 1, "renditions": renditions}),
            json!({"kind": "rtmp", "url": ingest.url(room)}),
        ];
        if sc.tracks {
            outputs.push(json!({"kind": "tracks"}));
        }
        if sc.record {
            outputs.push(json!({"kind": "record"}));
        }
        let posted = Instant::now();
        let created = server.send(
            "POST",
            "/v1/broadcasts",
            Some(&json!({
                "source": match &janus {
                    Some(janus) => json!({"kind": "janus", "url": janus.url(), "room": JANUS_ROOM, "pin": ROOM_PIN}),
                    None => json!({"kind": "room", "room": room}),
                },
                "layout": layout,
                "video": {"width": sc.width, "height": sc.height, "fps": sc.fps, "bitrate_kbps": sc.bitrate_kbps, "preset": sc.preset,
                          "keyframe_interval_s": KEYFRAME_INTERVAL_S, "passthrough": sc.passthrough && !sc.record},
                "outputs": outputs,
                "overlays": if sc.overlays { bench_overlays() } else { json!([]) },
            })),
        )?;
        let id = created["id"].as_str().context("broadcast id")?.to_string();
        if starts.is_none() {
            // Start times of the first broadcast, on an otherwise idle server.
            starts = Some(start_times(&server, &id, ingest, posted)?);
        }
        ids.push(id);
    }
    let (start_ms_hls, start_ms_rtmp) = starts.context("no broadcast")?;
    // Playing from the warmup on, so the connection and the first keyframe are behind it when the window starts.
    let shown = sc.participants.min(sc.max_tiles.unwrap_or(u32::MAX)) as usize;
    let (tile, source) = if sc.zero_transcode {
        let (w, h) = (sc.width as i32, sc.height as i32);
        (crate::layout::Rect { x: 0, y: 0, w, h }, (w as usize, h as usize))
    } else {
        let source = (
            crate::tools::publish::WIDTH as usize,
            crate::tools::publish::HEIGHT as usize,
        );
        (first_grid_tile(sc.width, sc.height, shown)?, source)
    };
    let latency = LatencyProbe::start(&ingest.url(ROOM), tile, source)?;
    std::thread::sleep(sc.warmup);
    latency.reset();

    let pid = server.pid();
    // Frames out and dropped, summed over the broadcasts.
    let frames = |server: &BenchServer| -> Result<(u64, u64)> {
        let mut sum = (0, 0);
        for id in &ids {
            let s: Value = server.send("GET", &format!("/v1/broadcasts/{id}"), None)?;
            sum.0 += s["frames_out"].as_u64().unwrap_or(0);
            sum.1 += s["frames_dropped"].as_u64().unwrap_or(0);
        }
        Ok(sum)
    };
    let publisher_pids: Vec<String> = publishers.iter().map(|p| p.0.id().to_string()).collect();
    // Per publisher, so one that exits during the window is left out of both readings, not just the second.
    let publishers_cpu = || -> Vec<Option<f64>> { publisher_pids.iter().map(|p| usage(p).map(|u| u.cpu_s)).collect() };
    let (_, busy0) = machine_busy(None);
    let p0 = publishers_cpu();
    let u0 = usage(&pid).context("server usage")?;
    let threads0 = threads_cpu(&pid);
    let (f0, d0) = frames(&server)?;
    let t0 = Instant::now();
    let mut rss_peak = u0.rss_bytes;
    while t0.elapsed() < sc.window {
        std::thread::sleep(Duration::from_secs(1).min(sc.window.saturating_sub(t0.elapsed())));
        rss_peak = rss_peak.max(usage(&pid).map_or(0, |u| u.rss_bytes));
    }
    let u1 = usage(&pid).context("server usage")?;
    let p1 = publishers_cpu();
    let threads1 = threads_cpu(&pid);
    let (f1, d1) = frames(&server)?;
    let secs = t0.elapsed().as_secs_f64();
    let (busy, _) = machine_busy(Some(busy0));
    let latency = latency.finish();
    for id in &ids {
        let _ = server.send("DELETE", &format!("/v1/broadcasts/{id}"), None);
    }
    drop(publishers);
    let mb = |b: u64| (b as f64 / 1_048_576.0 * 10.0).round() / 10.0;
    let expected = f64::from(sc.fps) * secs * ids.len() as f64;
    Ok(Figures {
        scenario: sc.clone(),
        cores: round3((u1.cpu_s - u0.cpu_s) / secs),
        publisher_cores: round3(p0.iter().zip(&p1).filter_map(|(a, b)| Some((*b)? - (*a)?)).sum::<f64>() / secs),
        rss_mb_peak: mb(rss_peak.max(u1.rss_bytes)),
        rss_mb_end: mb(u1.rss_bytes),
        threads: u1.threads,
        // Per broadcast (their mean).
        fps_out: round3((f1 - f0) as f64 / secs / ids.len() as f64),
        frames_dropped: d1 - d0,
        dropped_pct: round3((d1 - d0) as f64 * 100.0 / expected),
        start_ms_hls,
        start_ms_rtmp,
        machine_busy: round3(busy),
        latency_ms_p50: latency.p50_ms,
        latency_ms_p95: latency.p95_ms,
        latency_samples: latency.samples,
        latency_unread: latency.unread,
        latency_unmatched: latency.unmatched,
        tile_repeated: latency.smoothness.repeated,
        tile_skipped: latency.smoothness.skipped,
        tile_skipped_pct: round3(
            latency.smoothness.skipped as f64 * 100.0 / (f64::from(crate::tools::publish::FPS) * secs),
        ),
        cores_by_thread: cores_by_thread_name(&threads0, &threads1, secs),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Polls every 10 ms for the first HLS segment and the first FLV video tag (20 s at most).
fn start_times(
    server: &BenchServer,
    id: &str,
    ingest: &NginxRtmp,
    posted: Instant,
) -> Result<(Option<u64>, Option<u64>)> {
    let playlist = server.playlist(id);
    let recording = ingest.recording(ROOM);
    let (mut hls, mut rtmp) = (None, None);
    let deadline = posted + Duration::from_secs(20);
    while (hls.is_none() || rtmp.is_none()) && Instant::now() < deadline {
        let ms = Some(posted.elapsed().as_millis() as u64);
        if hls.is_none() && std::fs::read_to_string(&playlist).is_ok_and(|t| t.contains(".ts")) {
            hls = ms;
        }
        if rtmp.is_none() && std::fs::read(&recording).is_ok_and(|b| has_video_tag(&b)) {
            rtmp = ms;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    anyhow::ensure!(
        hls.is_some() || rtmp.is_some(),
        "the broadcast produced nothing in 20 s"
    );
    Ok((hls, rtmp))
}

/// True when an FLV file holds at least one complete video tag (type 9).
pub fn has_video_tag(flv: &[u8]) -> bool {
    // 9-byte header, then (previous tag size: 4 bytes, tag: 11-byte header + data) repeated.
    let mut at = 9 + 4;
    while at + 11 <= flv.len() {
        let kind = flv[at];
        let size = (usize::from(flv[at + 1]) << 16) | (usize::from(flv[at + 2]) << 8) | usize::from(flv[at + 3]);
        let end = at + 11 + size;
        if end > flv.len() {
            return false;
        }
        if kind & 0x1f == 9 {
            return true;
        }
        at = end + 4;
    }
    false
}

/// A title on a box and a 64x32 logo, as an operator would put on air, clear of the first tile's clock stamp
/// (top-left) that the latency probe reads.
pub(super) fn bench_overlays() -> serde_json::Value {
    use base64::Engine;
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, 64, 32);
    encoder.set_color(png::ColorType::Rgba);
    let pixels = [255u8, 200, 0, 230].repeat(64 * 32);
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&pixels);
    }
    let data = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    json!([
        {"id": "title", "kind": "text", "text": "Town hall: quarterly results", "x": 0.45, "y": 0.86, "height": 0.08,
         "color": "ffffff", "background": "0000ffcc"},
        {"id": "logo", "kind": "image", "data": data, "x": 0.85, "y": 0.04, "height": 0.12, "opacity": 0.9},
    ])
}

#[cfg(test)]
mod tests {
    use super::has_video_tag;

    #[test]
    fn finds_the_first_video_tag() {
        let header = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let tag = |kind: u8, data: &[u8]| {
            let mut t = vec![kind, 0, 0, data.len() as u8, 0, 0, 0, 0, 0, 0, 0];
            t.extend_from_slice(data);
            t.extend_from_slice(&[0, 0, 0, 0]);
            t
        };
        let mut flv = header.clone();
        flv.extend(tag(18, b"meta"));
        assert!(!has_video_tag(&flv));
        flv.extend(tag(8, b"audio"));
        assert!(!has_video_tag(&flv));
        let mut partial = flv.clone();
        partial.extend(&tag(9, b"video")[..12]);
        assert!(!has_video_tag(&partial), "an incomplete tag does not count");
        flv.extend(tag(9, b"video"));
        assert!(has_video_tag(&flv));
    }
}
