//! The replay publisher's clip: `LOOP_S` seconds of the synthetic participant's media (test picture with its clock
//! stamp, tone), encoded and packetized once at start as fast as the machine goes, kept as RTP packets.
//!
//! The clock stamp of frame `j` is the clip's own time, `j * 1000 / FPS` ms, not a wall clock: the looper sends
//! each frame at the wall-clock instant congruent to it modulo the clip's length, so the stamp reads as the send
//! time modulo `LOOP_MS` (`clock_stamp::resolve_looped` turns it back into the wall clock).

use super::looper::Slot;
use crate::gst_util::{add_and_link, make, make_with};
use crate::tools::publish::{PublishArgs, FPS};
use anyhow::{bail, Context, Result};
use gst::prelude::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Length of the clip: long enough that a stamp modulo it cannot be mistaken (latency is far below it).
pub const LOOP_MS: u64 = crate::tools::clock_stamp::LOOPED_PERIOD_MS;
pub const LOOP_S: u32 = (LOOP_MS / 1000) as u32;
/// Keyframes every second: a receiver joining (or asking for one, which a recording cannot answer) waits at most
/// this long.
const KEYFRAME_DIST: i32 = 30;
const VIDEO_RATE: u32 = 90_000;
const AUDIO_RATE: u32 = 48_000;
const OPUS_FRAME_MS: u32 = 20;

/// One track of the clip: its RTP caps, packets (numbered as in `slots`) and length in ticks.
pub struct ClipTrack {
    pub caps: gst::Caps,
    pub packets: Vec<Vec<u8>>,
    pub slots: Vec<Slot>,
    pub period: u32,
    pub clock_rate: u32,
}

/// What the recording's appsink collected, with the frames the encoder made keyframes.
#[derive(Default)]
struct Collected {
    caps: Option<gst::Caps>,
    packets: Vec<(u64, Vec<u8>)>,
    keyframe_pts: HashSet<u64>,
}

/// Records the clip: video first (unless `--no-video`), then audio.
pub fn record(args: &PublishArgs) -> Result<Vec<ClipTrack>> {
    let mut tracks = Vec::new();
    if !args.no_video {
        tracks.push(record_video(args)?);
    }
    tracks.push(record_audio(args)?);
    Ok(tracks)
}

fn record_video(args: &PublishArgs) -> Result<ClipTrack> {
    let pipeline = gst::Pipeline::with_name("replay-clip-video");
    let src = crate::tools::publish::video_source(&args.pattern)?;
    src.set_property("is-live", false);
    src.set_property("num-buffers", (LOOP_S * FPS as u32) as i32);
    let raw = make("capsfilter")?;
    raw.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", args.size.0)
            .field("height", args.size.1)
            .field("framerate", gst::Fraction::new(FPS, 1))
            .build(),
    );
    if args.clock_stamp {
        stamp_clip_time(&raw.static_pad("src").expect("capsfilter src"), args.size);
    }
    let enc = make_with("vp8enc", &[("deadline", "1"), ("cpu-used", "8")])?;
    enc.set_property("keyframe-max-dist", KEYFRAME_DIST);
    enc.set_property("target-bitrate", (args.video_kbps * 1000) as i32);
    // No picture IDs: they would step back at the loop point.
    let pay = make_with("rtpvp8pay", &[("pt", "96"), ("picture-id-mode", "none")])?;
    let collected = Arc::new(Mutex::new(Collected::default()));
    note_keyframes(&enc, collected.clone());
    let sink = collecting_sink(collected.clone())?;
    add_and_link(&pipeline, &[&src, &raw, &enc, &pay, &sink])?;
    run_to_end(&pipeline)?;
    let collected = std::mem::take(&mut *collected.lock().unwrap());
    track(collected, VIDEO_RATE, LOOP_S * VIDEO_RATE)
}

fn record_audio(args: &PublishArgs) -> Result<ClipTrack> {
    let pipeline = gst::Pipeline::with_name("replay-clip-audio");
    let samples = AUDIO_RATE * OPUS_FRAME_MS / 1000;
    let src = make("audiotestsrc")?;
    src.set_property("samplesperbuffer", samples as i32);
    // One buffer more than the clip: the encoder's lookahead holds the last one back.
    src.set_property("num-buffers", (LOOP_S * 1000 / OPUS_FRAME_MS + 1) as i32);
    if args.tone > 0.0 {
        src.set_property("freq", args.tone);
        src.set_property("volume", 0.3f64);
    } else {
        src.set_property_from_str("wave", "silence");
    }
    let raw = make("capsfilter")?;
    raw.set_property(
        "caps",
        "audio/x-raw,format=S16LE,rate=48000,channels=2".parse::<gst::Caps>()?,
    );
    let enc = make("opusenc")?;
    let pay = make_with("rtpopuspay", &[("pt", "111")])?;
    let collected = Arc::new(Mutex::new(Collected::default()));
    let sink = collecting_sink(collected.clone())?;
    add_and_link(&pipeline, &[&src, &raw, &enc, &pay, &sink])?;
    run_to_end(&pipeline)?;
    let mut collected = std::mem::take(&mut *collected.lock().unwrap());
    // Every Opus packet can start a stream.
    collected.keyframe_pts = collected.packets.iter().map(|(pts, _)| *pts).collect();
    track(collected, AUDIO_RATE, LOOP_S * AUDIO_RATE)
}

/// Paints each frame's place in the clip (ms from its start) as its clock stamp.
fn stamp_clip_time(pad: &gst::Pad, size: (i32, i32)) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let frame = buffer.pts().map_or(0, |pts| frame_index(pts.nseconds()));
        let ms = (frame * 1000 + FPS as u64 / 2) / FPS as u64;
        if let Ok(mut map) = buffer.make_mut().map_writable() {
            crate::tools::clock_stamp::stamp_i420(map.as_mut_slice(), size.0 as usize, size.1 as usize, ms);
        }
        gst::PadProbeReturn::Ok
    });
}

/// The frame a PTS belongs to (nearest frame of the clip's rate).
fn frame_index(pts_ns: u64) -> u64 {
    (pts_ns * FPS as u64 + 500_000_000) / 1_000_000_000
}

fn note_keyframes(encoder: &gst::Element, collected: Arc<Mutex<Collected>>) {
    let pad = encoder.static_pad("src").expect("encoder src");
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                if let Some(pts) = buffer.pts() {
                    collected.lock().unwrap().keyframe_pts.insert(pts.nseconds());
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

fn collecting_sink(collected: Arc<Mutex<Collected>>) -> Result<gst::Element> {
    let sink = gst_app::AppSink::builder().sync(false).build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let mut collected = collected.lock().unwrap();
                if collected.caps.is_none() {
                    collected.caps = sample.caps().map(|c| c.to_owned());
                }
                let mut push = |buffer: &gst::BufferRef| {
                    if let (Some(pts), Ok(map)) = (buffer.pts(), buffer.map_readable()) {
                        collected.packets.push((pts.nseconds(), map.to_vec()));
                    }
                };
                if let Some(list) = sample.buffer_list() {
                    list.iter().for_each(&mut push);
                } else if let Some(buffer) = sample.buffer() {
                    push(buffer);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(sink.upcast())
}

fn run_to_end(pipeline: &gst::Pipeline) -> Result<()> {
    pipeline
        .set_state(gst::State::Playing)
        .context("recording the replay clip")?;
    let bus = pipeline.bus().expect("pipeline bus");
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => bail!("recording the replay clip: {}", crate::gst_util::describe_error(e)),
        _ => bail!("recording the replay clip took over 60 s"),
    }
}

/// The collected packets as a clip track of `period` ticks: timestamps from the first packet's PTS, packets
/// past the period left out.
fn track(collected: Collected, clock_rate: u32, period: u32) -> Result<ClipTrack> {
    let caps = collected.caps.context("the replay clip recorded nothing")?;
    let first = collected.packets.first().map(|(pts, _)| *pts).unwrap_or(0);
    let mut started = HashSet::new();
    let (mut packets, mut slots) = (Vec::new(), Vec::new());
    for (pts, bytes) in collected.packets {
        let ts = ((pts - first) as u128 * u128::from(clock_rate) + 500_000_000) / 1_000_000_000;
        if ts >= u128::from(period) {
            break;
        }
        slots.push(Slot {
            ts: ts as u32,
            keyframe_start: collected.keyframe_pts.contains(&pts) && started.insert(pts),
        });
        packets.push(bytes);
    }
    anyhow::ensure!(
        slots.first().is_some_and(|s| s.keyframe_start),
        "the replay clip does not start with a keyframe"
    );
    // Which sequence numbers and timestamp offset the payloader picked is of no use: the looper numbers packets.
    let mut caps = caps;
    if let Some(s) = caps.make_mut().structure_mut(0) {
        s.remove_fields(["seqnum-offset", "timestamp-offset", "seqnum"]);
    }
    Ok(ClipTrack {
        caps,
        packets,
        slots,
        period,
        clock_rate,
    })
}
