//! `callcast bench --ll-hls-latency`: how long after capture a low-latency HLS part is in a viewer's hands. One
//! broadcast (grid of the participants, one `{"kind":"hls","low_latency":true}` output) is followed the way an
//! LL-HLS player does: blocking playlist reloads (`_HLS_msn`/`_HLS_part` of the preload hint), and every part
//! fetched as soon as a reload lists it. The parts (after the init segment) are decoded in the bench's process;
//! each decoded frame's clock stamp (first tile) is subtracted from the wall clock at which the part it came in
//! was fully fetched. The decode itself is not counted (frames are matched to their part by PTS at the
//! demuxer). A player adds its distance from the live edge on top (hls.js aims at `PART-HOLD-BACK`).

use super::latency::{first_grid_tile, percentile, stamp_of, Smoothness};
use super::ll_hls_follow::{first_to_fetch, listing, video_samples, Listing};
use super::peer::wait_until;
use super::server_window::{measure, wait_live, OneBroadcast};
use crate::layout::Rect;
use crate::wall_clock::now_ms;
use anyhow::{Context, Result};
use gst::prelude::*;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROOM: &str = "bench";
/// Frames traced from the demuxer to the decoder's output; more than a segment's worth behind is lost.
const MAX_PENDING: usize = 256;

/// The sinks do not sync: frames are measured as they come out of the decoder. Audio is demuxed and dropped.
const DECODE: &str = "appsrc name=src is-live=true format=bytes caps=video/quicktime ! qtdemux name=demux \
    demux.video_0 ! queue ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 \
    ! appsink name=frames sync=false async=false \
    demux.audio_0 ! queue ! fakesink sync=false async=false";

/// A fetched part whose video samples the demuxer has not all handed out yet.
struct Fetched {
    fetched_ms: u64,
    samples: u32,
    handed_out: u32,
}

#[derive(Default)]
struct Tally {
    parts: VecDeque<Fetched>,
    /// Per demuxed video sample: PTS, when its part was fetched, first or last sample of its part.
    arrivals: VecDeque<(gst::ClockTime, u64, bool, bool)>,
    /// Fetched minus stamp: every frame, each part's first frame, each part's last frame.
    every: Vec<i64>,
    first: Vec<i64>,
    last: Vec<i64>,
    /// Wall-clock ms from a reload's answer listing a part to that part fully fetched.
    listed_to_fetched: Vec<i64>,
    unread: u64,
    unmatched: u64,
    smoothness: Smoothness,
}

impl Tally {
    fn reset(&mut self) {
        for v in [
            &mut self.every,
            &mut self.first,
            &mut self.last,
            &mut self.listed_to_fetched,
        ] {
            v.clear();
        }
        self.unread = 0;
        self.unmatched = 0;
        self.smoothness = Smoothness::default();
    }

    /// A video sample left the demuxer: it belongs to the oldest part not yet handed out in full.
    fn demuxed(&mut self, pts: gst::ClockTime) {
        while self.parts.front().is_some_and(|p| p.handed_out >= p.samples) {
            self.parts.pop_front();
        }
        let Some(part) = self.parts.front_mut() else {
            self.unmatched += 1;
            return;
        };
        part.handed_out += 1;
        let (first, last) = (part.handed_out == 1, part.handed_out == part.samples);
        let fetched = part.fetched_ms;
        if self.arrivals.len() == MAX_PENDING {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back((pts, fetched, first, last));
    }

    fn decoded(&mut self, pts: gst::ClockTime, stamped: Option<u64>) {
        let arrived = match self.arrivals.iter().position(|a| a.0 == pts) {
            Some(at) => self.arrivals.drain(..=at).next_back(),
            None => None,
        };
        if let Some(stamp) = stamped {
            self.smoothness
                .note(stamp, 1000.0 / f64::from(crate::tools::publish::FPS));
        }
        match (stamped, arrived) {
            (None, _) => self.unread += 1,
            (Some(_), None) => self.unmatched += 1,
            (Some(glass), Some((_, fetched, first, last))) => {
                let ms = fetched as i64 - glass as i64;
                self.every.push(ms);
                if first {
                    self.first.push(ms);
                }
                if last {
                    self.last.push(ms);
                }
            }
        }
    }
}

fn spread(values: &[i64]) -> Value {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    json!({"p50": percentile(&sorted, 50), "p95": percentile(&sorted, 95), "samples": sorted.len()})
}

/// The decode pipeline, fed by `follow`.
fn decoder(tile: Rect, tally: &Arc<Mutex<Tally>>) -> Result<(gst::Pipeline, gst_app::AppSrc)> {
    let pipeline = gst::parse::launch(DECODE)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("the decode is not a pipeline"))?;
    let by_name = |name: &str| pipeline.by_name(name).with_context(|| format!("{name} in the decode"));
    let demuxed = tally.clone();
    by_name("demux")?.connect_pad_added(move |_, pad| {
        if pad.name().starts_with("video") {
            let tally = demuxed.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                    tally.lock().unwrap().demuxed(pts);
                }
                gst::PadProbeReturn::Ok
            });
        }
    });
    let source = (
        crate::tools::publish::WIDTH as usize,
        crate::tools::publish::HEIGHT as usize,
    );
    let frames = tally.clone();
    by_name("frames")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("frames is not an appsink"))?
        .set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some((pts, stamped)) = stamp_of(&sample, tile, source) {
                        frames.lock().unwrap().decoded(pts, stamped);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    let src = by_name("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| anyhow::anyhow!("src is not an appsrc"))?;
    pipeline.set_state(gst::State::Playing).context("starting the decode")?;
    Ok((pipeline, src))
}

/// Follows the playlist at `base` (the output's folder URL) until `stop`, pushing the init segment and then
/// every part into `src`. Returns the playlist's `PART-HOLD-BACK` and the parts fetched.
fn follow(base: &str, src: &gst_app::AppSrc, tally: &Mutex<Tally>, stop: &AtomicBool) -> Result<(Option<f64>, u64)> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let get = |file: &str| -> Result<Vec<u8>> {
        let response = http.get(format!("{base}/{file}")).send()?;
        anyhow::ensure!(response.status().is_success(), "GET {file}: {}", response.status());
        Ok(response.bytes()?.to_vec())
    };
    let playlist = |query: &str| -> Result<Listing> {
        Ok(listing(&String::from_utf8_lossy(&get(&format!("index.m3u8{query}"))?)))
    };
    let (mut listed, start) = wait_until("a part starting with a keyframe", Duration::from_secs(30), || {
        let l = playlist("").ok()?;
        first_to_fetch(&l).map(|start| (l, start))
    })?;
    let map = listed.map.clone().context("no EXT-X-MAP")?;
    src.push_buffer(gst::Buffer::from_slice(get(&map)?))?;
    let mut listed_ms = now_ms();
    let mut last = None;
    let mut fetched_parts = 0;
    while !stop.load(Ordering::Relaxed) {
        anyhow::ensure!(
            listed.map.as_ref() == Some(&map),
            "the output restarted (a new init segment)"
        );
        for part in &listed.parts {
            if part.at < start || last.is_some_and(|l| part.at <= l) {
                continue;
            }
            let bytes = get(&part.uri)?;
            let fetched_ms = now_ms();
            let samples = video_samples(&bytes).with_context(|| format!("{}: no video trun", part.uri))?;
            {
                let mut t = tally.lock().unwrap();
                t.listed_to_fetched.push(fetched_ms as i64 - listed_ms as i64);
                t.parts.push_back(Fetched {
                    fetched_ms,
                    samples,
                    handed_out: 0,
                });
            }
            src.push_buffer(gst::Buffer::from_slice(bytes))?;
            last = Some(part.at);
            fetched_parts += 1;
        }
        let (msn, part) = listed.hint.context("no preload hint")?;
        listed = playlist(&format!("?_HLS_msn={msn}&_HLS_part={part}"))?;
        listed_ms = now_ms();
    }
    Ok((listed.part_hold_back_s, fetched_parts))
}

pub fn run(exe: &Path, run: &OneBroadcast) -> Result<Value> {
    crate::gst_util::init()?;
    let (server, _publisher) = run.start_room(exe, ROOM, &["--clock-stamp"])?;
    // One-second segments and keyframes, as in the end-to-end test where hls.js' distance from the live edge was
    // measured (segments start on keyframes).
    let id = server.start_grid(
        ROOM,
        json!({"width": run.width, "height": run.height, "fps": run.fps, "keyframe_interval_s": 1}),
        json!([{"kind": "hls", "low_latency": true, "segment_seconds": 1}]),
    )?;
    wait_live(&server, &id)?;

    let tile = first_grid_tile(run.width, run.height, run.participants as usize)?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (pipeline, src) = decoder(tile, &tally)?;
    let stop = Arc::new(AtomicBool::new(false));
    let base = format!("{}/v1/broadcasts/{id}/hls", server.addr);
    let follower = {
        let (tally, stop) = (tally.clone(), stop.clone());
        std::thread::spawn(move || follow(&base, &src, &tally, &stop))
    };
    std::thread::sleep(run.warmup);
    tally.lock().unwrap().reset();
    let window = measure(&server.pid(), run.window)?;
    stop.store(true, Ordering::Relaxed);
    let followed = follower.join().map_err(|_| anyhow::anyhow!("the follower panicked"))?;
    if let Some(bus) = pipeline.bus() {
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                eprintln!("LL-HLS decode: {}", crate::gst_util::describe_error(e));
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    let _ = server.send("DELETE", &format!("/v1/broadcasts/{id}"), None);
    let (hold_back, parts) = followed?;
    let t = tally.lock().unwrap();
    Ok(json!({
        "scenario": {"participants": run.participants, "output": "hls low_latency, segment_seconds 1, keyframe_interval_s 1",
                     "canvas": format!("{}x{}@{}", run.width, run.height, run.fps),
                     "window_s": run.window.as_secs()},
        "glass_to_part_ms": spread(&t.every),
        "glass_to_part_first_frame_ms": spread(&t.first),
        "glass_to_part_last_frame_ms": spread(&t.last),
        "listed_to_fetched_ms": spread(&t.listed_to_fetched),
        "part_hold_back_s": hold_back,
        "parts_fetched": parts,
        "latency_unread": t.unread,
        "latency_unmatched": t.unmatched,
        "repeated": t.smoothness.repeated,
        "skipped": t.smoothness.skipped,
        "server": window,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decoded_frame_is_timed_from_the_part_it_came_in() {
        let mut t = Tally::default();
        let ms = gst::ClockTime::from_mseconds;
        t.parts.push_back(Fetched {
            fetched_ms: 10_000,
            samples: 2,
            handed_out: 0,
        });
        t.parts.push_back(Fetched {
            fetched_ms: 10_300,
            samples: 1,
            handed_out: 0,
        });
        for pts in [0, 33, 66] {
            t.demuxed(ms(pts));
        }
        t.demuxed(ms(99)); // no part fetched for it
        t.decoded(ms(0), Some(9_600));
        t.decoded(ms(33), None);
        t.decoded(ms(66), Some(9_700));
        t.decoded(ms(500), Some(9_800)); // never demuxed
        assert_eq!(t.every, [400, 600]);
        assert_eq!(t.first, [400, 600], "the first of part one, the only one of part two");
        assert_eq!(t.last, [600], "part one's last frame did not read");
        assert_eq!((t.unread, t.unmatched), (1, 2));
    }
}
