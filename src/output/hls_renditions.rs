//! An HLS output's extra renditions (`hls_ladder`): the output decodes the broadcast's one H.264 once, and each
//! rendition scales it (`videoscale`) and encodes it (one `x264enc`), muxed with the broadcast's own AAC into
//! segments of its own. Nothing is composited again, and the renditions live and die with the output.
//! The decode, scale and encode part (`scaled_encodes`) also feeds a low-latency output's ladder (`ll_hls`).
//!
//! Players switch renditions between segments, so every rendition has its keyframes and its cuts at the same
//! timestamps as the main one: the main track's probe (`hls::cut_at_keyframes`) notes each keyframe and each cut
//! in a `Cadence`; a rendition's encoder is made to key the decoded frame with a keyframe's timestamp, and its
//! segment is cut before its keyframe with a cut's timestamp.
//!
//! ```text
//! h264parse ─ tee ─ queue ──────────────────────────────────────────────────────── mpegtsmux (main)
//!                 └ queue ─ avdec_h264 ─ tee ─ queue ─ videoscale ─ caps ─ x264enc ─ h264parse ─ mpegtsmux ─ multifilesink
//! aacparse ── tee ─ queue ─ mpegtsmux (main)                     (one branch per rendition)       │
//!                 └ queue ────────────────────────────────────────────────────────────────────────┘
//! ```

use super::hls_ladder::{folder, render_multivariant, Ladder, Variant};
use super::hls_writer::HlsPlaylist;
use crate::gst_util::{make, make_with};
use anyhow::{Context, Result};
use gst::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The renditions' encoder speed: the broadcast's default preset (`mix::preset`).
const RENDITION_PRESET: &str = "superfast";
/// Keyframes come from the main rendition's (forced, `force_keyframes`); x264 adds none of its own in between.
const NO_OWN_KEYFRAMES: &str = "100000";
/// How many keyframe timestamps a `Cadence` remembers: many intervals more than a rendition lags behind.
const CADENCE_MEMORY: usize = 64;
/// Media a branch queue holds while another branch (a rendition's encode) catches up.
const BRANCH_QUEUE_NS: u64 = 3_000_000_000;
/// Where the multivariant playlist is written before it is renamed into place (not servable).
const MULTIVARIANT_TMP: &str = ".multivariant.m3u8.tmp";

/// The running time of `pts` on `pad` (by its segment).
pub(super) fn running_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0).and_then(|s| {
        s.segment()
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(pts))
    })
}

/// The main rendition's keyframes and cuts, by running time (ns), for the other renditions to follow: the
/// same frame has the same running time everywhere in the pipeline, but not the same timestamp (x264enc moves
/// its timestamps to at least 1000 hours, and its segment with them).
#[derive(Default)]
pub(super) struct Cadence {
    keyframes: Mutex<BTreeSet<u64>>,
    cuts: Mutex<BTreeSet<u64>>,
}

impl Cadence {
    /// The main rendition has a keyframe at running time `at`; `cut`: its segment is cut there.
    pub(super) fn keyframe(&self, at: gst::ClockTime, cut: bool) {
        let pts = at;
        remember(&self.keyframes, pts);
        if cut {
            remember(&self.cuts, pts);
        }
    }

    fn is_keyframe(&self, pts: gst::ClockTime) -> bool {
        lock(&self.keyframes).contains(&pts.nseconds())
    }

    fn is_cut(&self, pts: gst::ClockTime) -> bool {
        lock(&self.cuts).contains(&pts.nseconds())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn remember(set: &Mutex<BTreeSet<u64>>, pts: gst::ClockTime) {
    let mut set = lock(set);
    set.insert(pts.nseconds());
    while set.len() > CADENCE_MEMORY {
        set.pop_first();
    }
}

/// The elements of the main rendition the ladder hangs off.
pub(super) struct Main<'a> {
    pub video_parse: &'a gst::Element,
    pub audio_parse: &'a gst::Element,
    pub mux: &'a gst::Element,
    pub sink: &'a gst::Element,
}

/// Adds the ladder's branches to `pipeline` and links the main rendition's tracks into `main.mux` through them.
/// Writes the multivariant playlist in `dir` once every rendition is known; returns the extra renditions'
/// playlists (their folders under `dir`).
pub(super) fn add(
    pipeline: &gst::Pipeline,
    main: Main<'_>,
    ladder: &Ladder,
    dir: &Path,
    window: u32,
    timing: super::hls::SegmentTiming,
    cadence: Arc<Cadence>,
) -> Result<Vec<HlsPlaylist>> {
    let multivariant = Arc::new(Multivariant::new(dir, ladder, timing.segment_seconds));
    let video_tee = make("tee")?;
    let audio_tee = make("tee")?;
    pipeline.add_many([&video_tee, &audio_tee])?;
    main.video_parse.link(&video_tee)?;
    main.audio_parse.link(&audio_tee)?;
    branch(pipeline, &video_tee, &[], main.mux)?;
    branch(pipeline, &audio_tee, &[], main.mux)?;
    watch_stream(
        &main.video_parse.static_pad("src").context("h264parse src")?,
        &multivariant,
        0,
    );
    let listed = multivariant.clone();
    super::hls::after_each_cut(
        &main.sink.static_pad("sink").context("multifilesink sink")?,
        move || listed.listed(0),
    );

    let encodes = scaled_encodes(pipeline, &video_tee, ladder, cadence.clone(), true)?;
    let mut playlists = Vec::new();
    for (i, (rendition, (encoder, parse))) in ladder.renditions.iter().zip(encodes).enumerate() {
        let rendition_dir = dir.join(folder(rendition.height));
        std::fs::create_dir_all(&rendition_dir)?;
        // Its playlist follows the sink first: the multivariant playlist's probe below sees it written.
        let (mux, sink, playlist) =
            super::hls::segment_writer(pipeline, &rendition_dir, window, timing.target_seconds())?;
        parse.link(&mux)?;
        branch(pipeline, &audio_tee, &[], &mux)?;
        cut_with_main(&encoder, &parse, cadence.clone())?;
        let sink_pad = sink.static_pad("sink").context("multifilesink sink")?;
        watch_stream(&parse.static_pad("src").context("h264parse src")?, &multivariant, i + 1);
        let listed = multivariant.clone();
        super::hls::after_each_cut(&sink_pad, move || listed.listed(i + 1));
        playlists.push(playlist);
    }
    Ok(playlists)
}

/// The extra renditions' encodes, shared by the plain and the low-latency ladders: `video_tee` (the main
/// rendition's H.264) decoded once, then per rendition `videoscale ! capsfilter ! x264enc ! h264parse`, each
/// keyed where the main rendition has a keyframe (`cadence`). Returns each rendition's `x264enc` and
/// `h264parse`, in the ladder's order, the parser's src pad left for the caller to link. `in_band_headers`: SPS/PPS before every keyframe
/// (MPEG-TS segments decode on their own with them; an fMP4 rendition has them in its init segment).
pub(super) fn scaled_encodes(
    pipeline: &gst::Pipeline,
    video_tee: &gst::Element,
    ladder: &Ladder,
    cadence: Arc<Cadence>,
    in_band_headers: bool,
) -> Result<Vec<(gst::Element, gst::Element)>> {
    let decoder = make("avdec_h264")?;
    let decoded = make("tee")?;
    pipeline.add_many([&decoder, &decoded])?;
    branch(pipeline, video_tee, &[], &decoder)?;
    decoder.link(&decoded)?;
    force_keyframes(&decoder, cadence)?;
    let mut parsers = Vec::new();
    for rendition in &ladder.renditions {
        let scale = make("videoscale")?;
        let size = make("capsfilter")?;
        size.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("width", ladder.width_for(rendition.height) as i32)
                .field("height", rendition.height as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        );
        let encoder = make_with(
            "x264enc",
            &[
                ("tune", "zerolatency"),
                ("speed-preset", RENDITION_PRESET),
                ("threads", "1"),
                ("pass", "cbr"),
                ("key-int-max", NO_OWN_KEYFRAMES),
                ("bframes", "0"),
                ("option-string", "scenecut=0"),
            ],
        )?;
        encoder.set_property("bitrate", rendition.bitrate_kbps);
        let parse = if in_band_headers {
            make_with("h264parse", &[("config-interval", "-1")])?
        } else {
            make("h264parse")?
        };
        pipeline.add_many([&scale, &size, &encoder, &parse])?;
        branch(pipeline, &decoded, &[&scale, &size, &encoder], &parse)?;
        parsers.push((encoder, parse));
    }
    Ok(parsers)
}

/// `tee ! queue ! elements... ! into`: each branch of a tee on its own thread, so a rendition's encode never
/// holds up the main rendition (and a muxer waiting for one track never blocks the tee feeding the other).
/// `elements` are already in the pipeline.
pub(super) fn branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    elements: &[&gst::Element],
    into: &gst::Element,
) -> Result<()> {
    let queue = make("queue")?;
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", BRANCH_QUEUE_NS);
    pipeline.add(&queue)?;
    let chain: Vec<&gst::Element> = [tee, &queue]
        .into_iter()
        .chain(elements.iter().copied())
        .chain([into])
        .collect();
    gst::Element::link_many(chain).context("linking a rendition branch")?;
    Ok(())
}

/// Drops the force-key-unit events arriving on `pad`: another part of the pipeline sends its own.
fn drop_key_unit_events(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| match &info.data {
        Some(gst::PadProbeData::Event(event)) if gst_video::ForceKeyUnitEvent::is(event) => {
            crate::gst_util::swallow(info)
        }
        _ => gst::PadProbeReturn::Ok,
    });
}

/// The main rendition's cut events are dropped before the decoder (each rendition cuts its own segments), and
/// a decoded frame that was a keyframe in the main rendition is preceded by a request that the encoders key it.
fn force_keyframes(decoder: &gst::Element, cadence: Arc<Cadence>) -> Result<()> {
    drop_key_unit_events(&decoder.static_pad("sink").context("avdec_h264 sink")?);
    let count = AtomicU32::new(0);
    decoder
        .static_pad("src")
        .context("avdec_h264 src")?
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let at = info
                .buffer()
                .and_then(|b| b.pts())
                .and_then(|pts| running_time(pad, pts));
            if at.is_some_and(|at| cadence.is_keyframe(at)) {
                // No running time: the encoder keys the next frame it takes, this one. (Its running time as
                // the encoder reckons it need not match this pad's, and a request it finds older than its last
                // keyframe it drops.)
                let request = gst_video::DownstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .count(count.fetch_add(1, Ordering::Relaxed) + 1)
                    .build();
                pad.push_event(request);
            }
            gst::PadProbeReturn::Ok
        });
    Ok(())
}

/// The encoder's own force-key-unit events (one per forced keyframe) are dropped, and a cut is sent before each
/// keyframe at a main rendition's cut, after the parser (which would hold it back until the next keyframe).
fn cut_with_main(encoder: &gst::Element, parse: &gst::Element, cadence: Arc<Cadence>) -> Result<()> {
    drop_key_unit_events(&encoder.static_pad("src").context("x264enc src")?);
    let count = AtomicU32::new(0);
    parse
        .static_pad("src")
        .context("h264parse src")?
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(pts) = buffer
                .pts()
                .filter(|_| !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT))
            else {
                return gst::PadProbeReturn::Ok;
            };
            if running_time(pad, pts).is_some_and(|at| cadence.is_cut(at)) {
                super::hls::push_cut(pad, pts, count.fetch_add(1, Ordering::Relaxed) + 1);
            }
            gst::PadProbeReturn::Ok
        });
    Ok(())
}

/// Tells `multivariant` what rendition `index`'s stream is (size, codec) at each of its keyframes.
fn watch_stream(parsed: &gst::Pad, multivariant: &Arc<Multivariant>, index: usize) {
    let multivariant = multivariant.clone();
    parsed.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
            return gst::PadProbeReturn::Ok;
        }
        let codec = buffer
            .map_readable()
            .ok()
            .and_then(|m| super::hls_ladder::avc1_codec(&m));
        let size = pad.current_caps().and_then(|caps| {
            let s = caps.structure(0)?;
            Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
        });
        if let (Some(codec), Some((width, height))) = (codec, size) {
            multivariant.seen(index, width as u32, height as u32, codec);
        }
        gst::PadProbeReturn::Ok
    });
}

/// The multivariant playlist: written once every rendition's stream was seen and its media playlist lists a
/// segment (a player finds every playlist it names), and again if a stream changes (the zero-transcode switch
/// puts a participant's H.264, with its own size and profile, on air).
pub(super) struct Multivariant {
    dir: PathBuf,
    /// Per rendition, the main one first: what is listed before the stream is seen, and what was seen.
    slots: Mutex<Vec<Slot>>,
    written: Mutex<String>,
    fps: u32,
}

struct Slot {
    folder: String,
    bandwidth: u64,
    seen: Option<(u32, u32, String)>,
    listed: bool,
}

impl Multivariant {
    pub(super) fn new(dir: &Path, ladder: &Ladder, segment_seconds: u32) -> Self {
        let main = (ladder.main.height, ladder.main.bitrate_kbps);
        let slots = std::iter::once(main)
            .chain(ladder.renditions.iter().map(|r| (r.height, r.bitrate_kbps)))
            .map(|(height, kbps)| Slot {
                folder: folder(height),
                bandwidth: ladder.bandwidth(kbps, segment_seconds),
                seen: None,
                listed: false,
            })
            .collect();
        Self {
            dir: dir.to_path_buf(),
            slots: Mutex::new(slots),
            written: Mutex::default(),
            fps: ladder.main.fps,
        }
    }

    pub(super) fn seen(&self, index: usize, width: u32, height: u32, codec: String) {
        let mut slots = lock(&self.slots);
        let seen = Some((width, height, codec));
        if slots[index].seen != seen {
            slots[index].seen = seen;
            self.write_if_ready(&slots);
        }
    }

    pub(super) fn listed(&self, index: usize) {
        let mut slots = lock(&self.slots);
        if !std::mem::replace(&mut slots[index].listed, true) {
            self.write_if_ready(&slots);
        }
    }

    fn write_if_ready(&self, slots: &[Slot]) {
        let variants: Option<Vec<Variant>> = slots
            .iter()
            .map(|slot| {
                let (width, height, codec) = slot.seen.clone().filter(|_| slot.listed)?;
                Some(Variant {
                    folder: slot.folder.clone(),
                    bandwidth: slot.bandwidth,
                    width,
                    height,
                    video_codec: codec,
                    fps: self.fps,
                })
            })
            .collect();
        let Some(variants) = variants else { return };
        let text = render_multivariant(&variants);
        let mut written = lock(&self.written);
        if *written == text {
            return;
        }
        let (tmp, path) = (self.dir.join(MULTIVARIANT_TMP), self.dir.join(super::hls::PLAYLIST));
        match super::hls_writer::replace_synced(&tmp, &path, &text) {
            Ok(()) => *written = text,
            Err(e) => tracing::warn!("cannot write the HLS multivariant playlist: {e}"),
        }
    }
}
