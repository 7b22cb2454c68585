//! `callcast bench --overlay-blend`: what the overlay layer itself costs, with no broadcast around it and so
//! without the noise of a busy machine: the layer's own element (`OverlayLayer`: a pass-through whose output pad blends)
//! between a test source and a fake sink, and the CPU time of the thread running it read as each frame enters the
//! element and as it leaves (`CLOCK_THREAD_CPUTIME_ID`: other processes' load does not count). Three figures:
//! - static overlays: the bench's title and logo (`scenario::bench_overlays`, rendered as the server renders
//!   them) against no overlay, over the same frames, in alternating rounds;
//! - a layout cross-fade: the frame taken and blended beneath the overlays for the fade's length, against the
//!   same frames with the overlays alone;
//! - a change on air: on a live source at the canvas rate, how many output frames after `show` returns the first
//!   frame carrying the change is (1: the next one), read from the frames' pixels.

use crate::broadcast::overlays::{validate, OverlayRequest};
use crate::mix::overlay_clock::Moment;
use crate::mix::overlay_layer::{Layered, OverlayLayer};
use crate::mix::overlay_render::{render, Assets, Placed};
use anyhow::{Context, Result};
use gst::prelude::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct BlendRun {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Frames per static round.
    pub frames: u32,
    pub rounds: u32,
    /// A cross-fade's length.
    pub fade_ms: u32,
    /// Changes timed on the live source.
    pub changes: u32,
}

/// One bench overlay, rendered.
struct Picture {
    id: String,
    fade_ms: u32,
    placed: Placed,
}

pub fn run(run: &BlendRun) -> Result<Value> {
    gst::init()?;
    let rendered_at = Instant::now();
    let pictures = bench_pictures(run.width, run.height)?;
    let render_ms = rendered_at.elapsed().as_secs_f64() * 1000.0;
    let (_, busy0) = crate::procstat::machine_busy(None);

    // Static: rounds of (without, with), the order swapped every round.
    let (mut without, mut with, mut first_with) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..run.rounds {
        for shown in [round % 2 == 1, round % 2 == 0] {
            let frames = frame_costs(run, if shown { &pictures } else { &[] }, None)?;
            if shown {
                first_with.push(frames[0]);
                with.push(mean(&frames[1..]));
            } else {
                without.push(mean(&frames[1..]));
            }
        }
    }
    let diffs: Vec<f64> = with.iter().zip(&without).map(|(w, o)| w - o).collect();
    let cores = |us: f64| round4(us * f64::from(run.fps) / 1e6);

    // Cross-fade: the fade's frames (the first one takes the picture) against the same frames without a fade.
    let fade_frames = (u64::from(run.fade_ms) * u64::from(run.fps)).div_ceil(1000) as usize + 1;
    let fade_run = BlendRun {
        frames: fade_frames as u32 + run.fps,
        ..*run
    };
    let (mut fading, mut plain, mut taking) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..run.rounds {
        for fade in [round % 2 == 1, round % 2 == 0] {
            let frames = frame_costs(&fade_run, &pictures, fade.then_some(run.fade_ms))?;
            if fade {
                taking.push(frames[0]);
                fading.push(mean(&frames[1..fade_frames]));
            } else {
                plain.push(mean(&frames[1..fade_frames]));
            }
        }
    }
    let fade_diffs: Vec<f64> = fading.iter().zip(&plain).map(|(f, p)| f - p).collect();
    let (busy, _) = crate::procstat::machine_busy(Some(busy0));

    let changes = changes_on_air(run, &pictures)?;
    Ok(json!({
        "mode": "overlay_blend",
        "width": run.width, "height": run.height, "fps": run.fps,
        "frames_per_round": run.frames, "rounds": run.rounds,
        "pictures": pictures.iter().map(|p| json!({"id": p.id, "width": p.placed.picture.width(),
            "height": p.placed.picture.height()})).collect::<Vec<_>>(),
        "render_ms": round3(render_ms),
        "static": {
            "without_us_per_frame": without.iter().copied().map(round3).collect::<Vec<_>>(),
            "with_us_per_frame": with.iter().copied().map(round3).collect::<Vec<_>>(),
            "first_frame_with_us": first_with.iter().copied().map(round3).collect::<Vec<_>>(),
            "diff_us_median": round3(median(&diffs)),
            "diff_us_min": round3(min(&diffs)),
            "diff_us_max": round3(max(&diffs)),
            "cores_median": cores(median(&diffs)),
            "cores_max": cores(max(&diffs)),
        },
        "cross_fade": {
            "ms": run.fade_ms,
            "frames": fade_frames - 1,
            "overlays_alone_us_per_frame": plain.iter().copied().map(round3).collect::<Vec<_>>(),
            "fading_us_per_frame": fading.iter().copied().map(round3).collect::<Vec<_>>(),
            "taking_frame_us": taking.iter().copied().map(round3).collect::<Vec<_>>(),
            "diff_us_median": round3(median(&fade_diffs)),
            "diff_us_min": round3(min(&fade_diffs)),
            "diff_us_max": round3(max(&fade_diffs)),
            "cores_while_fading_median": cores(median(&fade_diffs)),
        },
        "on_air": changes,
        "machine_busy": round3(busy),
    }))
}

/// The bench's overlays as the server draws them on a `width` x `height` canvas.
fn bench_pictures(width: u32, height: u32) -> Result<Vec<Picture>> {
    let requests: Vec<OverlayRequest> = serde_json::from_value(super::scenario::bench_overlays())?;
    let overlays = validate(requests)?;
    let assets = Assets::new(crate::config::DEFAULT_ASSETS_DIR.into());
    let at = Moment {
        now: std::time::SystemTime::now(),
        live_since: None,
    };
    overlays
        .iter()
        .map(|o| {
            let drawing = o.drawing(&assets, at).context("a bench overlay without a drawing")?;
            let placed = render(&drawing, (width, height), assets.font())
                .with_context(|| format!("overlay {} not drawn (is the font under assets/?)", o.id))?;
            Ok(Picture {
                id: o.id.clone(),
                fade_ms: o.fade_ms,
                placed,
            })
        })
        .collect()
}

fn layered(pictures: &[Picture], fade_ms: Option<u32>) -> Vec<Layered<'_>> {
    pictures
        .iter()
        .map(|p| Layered {
            id: &p.id,
            fade_ms: fade_ms.unwrap_or(p.fade_ms),
            placed: &p.placed,
            then: None,
        })
        .collect()
}

/// The layer's CPU time on each of `run.frames` frames (µs) with `pictures` on air from the start (at once: no
/// fade in), and a cross-fade of `fade` ms asked for before the first frame.
fn frame_costs(run: &BlendRun, pictures: &[Picture], fade: Option<u32>) -> Result<Vec<f64>> {
    let layer = OverlayLayer::new()?;
    layer.show(&layered(pictures, Some(0)))?;
    // Held: a cross-fade nobody waits for any more is cut.
    let _taken = fade.map(|ms| layer.cross_fade(ms));
    let costs = Arc::new(Mutex::new(Vec::with_capacity(run.frames as usize)));
    let recorded = costs.clone();
    let pipeline = frames_through(&layer, run, false, move |_, cpu_ns| {
        recorded.lock().unwrap().push(cpu_ns as f64 / 1000.0);
    })?;
    wait_eos(&pipeline, Duration::from_secs(600))?;
    let costs = std::mem::take(&mut *costs.lock().unwrap());
    anyhow::ensure!(
        costs.len() == run.frames as usize,
        "{} frames of {}",
        costs.len(),
        run.frames
    );
    Ok(costs)
}

/// A black `run` canvas through the layer's element into a fake sink, playing: live (at the frame rate) or as
/// fast as it goes. `each` gets every frame as it leaves the element, with the CPU time the element's thread
/// spent on it.
fn frames_through(
    layer: &OverlayLayer,
    run: &BlendRun,
    live: bool,
    each: impl Fn(&gst::BufferRef, u64) + Send + Sync + 'static,
) -> Result<gst::Pipeline> {
    let pipeline = gst::Pipeline::new();
    let source = gst::ElementFactory::make("videotestsrc")
        .property("is-live", live)
        .property("num-buffers", run.frames as i32)
        .property_from_str("pattern", "solid-color")
        .property("foreground-color", 0xff00_0000u32)
        .build()?;
    let caps = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::I420)
                .width(run.width as i32)
                .height(run.height as i32)
                .framerate(gst::Fraction::new(run.fps as i32, 1))
                .build(),
        )
        .build()?;
    let sink = gst::ElementFactory::make("fakesink").property("sync", live).build()?;
    pipeline.add_many([&source, &caps, layer.element(), &sink])?;
    gst::Element::link_many([&source, &caps, layer.element(), &sink])?;
    // Both probes run on the one streaming thread: the difference is what the element did with the frame.
    let entered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = entered.clone();
    let element = layer.element();
    element
        .static_pad("sink")
        .context("overlaycomposition sink")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            start.store(thread_cpu_ns(), std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    element.static_pad("src").context("overlaycomposition src")?.add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            let cpu = thread_cpu_ns().saturating_sub(entered.load(std::sync::atomic::Ordering::Relaxed));
            if let Some(buffer) = info.buffer() {
                each(buffer, cpu);
            }
            gst::PadProbeReturn::Ok
        },
    );
    pipeline.set_state(gst::State::Playing)?;
    Ok(pipeline)
}

fn wait_eos(pipeline: &gst::Pipeline, limit: Duration) -> Result<()> {
    let bus = pipeline.bus().context("bus")?;
    let message = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(limit.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null)?;
    match message.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => anyhow::bail!("blend pipeline: {} ({:?})", e.error(), e.debug()),
        _ => anyhow::bail!("blend pipeline: no end after {limit:?}"),
    }
}

/// On a live source: the title put on air (with a fade of 0 and of its default length) and taken off again
/// `run.changes` times each, at instants spread over the frame interval; per change, the output frame (counted
/// from the first to leave the element after `show` returned, 1 being that one) whose pixels under the title
/// first differ from the last frame out before.
fn changes_on_air(run: &BlendRun, pictures: &[Picture]) -> Result<Value> {
    let title = pictures.first().context("no title")?;
    let mut by_fade = serde_json::Map::new();
    for fade in [0, title.fade_ms] {
        let live = BlendRun {
            frames: u32::MAX / 2,
            ..*run
        };
        let layer = OverlayLayer::new()?;
        // Per frame out, the sum of the luma under the title.
        let sums = Arc::new(Mutex::new(Vec::<u64>::new()));
        let recorded = sums.clone();
        let (w, h) = (run.width as usize, run.height as usize);
        let (x0, y0) = (title.placed.x as usize, title.placed.y as usize);
        let (tw, th) = (
            title.placed.picture.width() as usize,
            title.placed.picture.height() as usize,
        );
        let pipeline = frames_through(&layer, &live, true, move |buffer, _| {
            // The Y plane first, its stride the width (even widths).
            let sum = buffer.map_readable().map_or(0, |map| {
                (y0..(y0 + th).min(h))
                    .flat_map(|y| map[y * w + x0..y * w + (x0 + tw).min(w)].iter())
                    .map(|&l| u64::from(l))
                    .sum()
            });
            recorded.lock().unwrap().push(sum);
        })?;
        let frame = Duration::from_secs(1) / run.fps;
        let settle = Duration::from_millis(u64::from(fade)) + frame * 3;
        let (mut on, mut off) = (Vec::new(), Vec::new());
        std::thread::sleep(settle);
        for i in 0..run.changes {
            for (shown, frames) in [(true, &mut on), (false, &mut off)] {
                // Spread over the frame interval, so a change lands at every phase of the streaming thread.
                std::thread::sleep(settle + frame * i / run.changes.max(1));
                let wanted = if shown { std::slice::from_ref(title) } else { &[] };
                layer.show(&layered(wanted, Some(fade)))?;
                let (before, reference) = {
                    let sums = sums.lock().unwrap();
                    (sums.len(), *sums.last().context("no frame out yet")?)
                };
                let deadline = Instant::now() + Duration::from_secs(5);
                let first = loop {
                    let changed = sums.lock().unwrap()[before..].iter().position(|&s| s != reference);
                    if let Some(i) = changed {
                        break i as u64 + 1;
                    }
                    anyhow::ensure!(Instant::now() < deadline, "the change never showed");
                    std::thread::sleep(Duration::from_millis(1));
                };
                frames.push(first);
            }
        }
        pipeline.set_state(gst::State::Null)?;
        by_fade.insert(
            format!("fade_ms_{fade}"),
            json!({"frames_to_show": on, "frames_to_clear": off,
                   "max": on.iter().chain(&off).max()}),
        );
    }
    Ok(Value::Object(by_fade))
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

pub(super) fn median(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round4(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}
