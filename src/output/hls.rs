//! HLS output: MPEG-TS segments that start on keyframes, and a playlist callcast writes itself (`hls_writer`,
//! `hls_playlist`): sliding, or keeping every segment, closed with ENDLIST at the end.
//!
//! `multifilesink` writes the segments (not `hlssink2`: its splitmuxsink closes a segment only once the whole
//! GOP after it is in, so every segment is listed one segment late; nor `hlssink`, whose playlist and segment
//! numbers start over whenever the pipeline is rebuilt). The segment is cut the moment the keyframe that
//! starts the next one arrives: a probe marks that keyframe with a downstream force-key-unit event, which
//! `mpegtsmux` passes to `multifilesink` right before it.

use super::hls_ladder::{folder, Ladder};
use super::hls_renditions::{Cadence, Main};
use super::hls_writer::HlsPlaylist;
use super::{OutputPipeline, Tracks};
use crate::gst_util::make;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub const PLAYLIST: &str = "index.m3u8";
pub const SEGMENT_PATTERN: &str = "segment%05d.ts";

/// A keyframe this much before a segment's length is up still ends it (keyframes asked of a participant's
/// sender come a little early or late); an earlier one ends it only when waiting would outgrow the target.
const SEGMENT_SLACK: gst::ClockTime = gst::ClockTime::from_mseconds(250);

/// How far past its length a segment may run: its `EXTINF`, rounded to the nearest second, is still the target
/// duration under half a second over; 100 ms of that is left for a keyframe that comes a frame or two late.
const OVERRUN: gst::ClockTime = gst::ClockTime::from_mseconds(400);

/// How an output's video is cut into segments: a segment ends at the first keyframe `segment_seconds` after it
/// began, or at an earlier one when waiting for the next would make it longer than that (`ends_segment`).
#[derive(Clone, Copy, Debug)]
pub struct SegmentTiming {
    pub segment_seconds: u32,
    /// The longest the video goes between keyframes (the broadcast's `video.keyframe_interval_s`).
    pub keyframe_interval: gst::ClockTime,
}

impl SegmentTiming {
    /// The playlist's EXT-X-TARGETDURATION, which RFC 8216bis lets no segment exceed (rounded to the nearest
    /// second) and never lets change: the segment length asked for, or the keyframe interval when that is longer
    /// (segments start on keyframes, so none can be shorter than the time between two).
    pub fn target_seconds(&self) -> u32 {
        let interval_s = self
            .keyframe_interval
            .nseconds()
            .div_ceil(gst::ClockTime::SECOND.nseconds());
        self.segment_seconds.max(u32::try_from(interval_s).unwrap_or(u32::MAX))
    }

    /// Whether a keyframe at `pts` ends the segment that began at `start`. At its length (less the slack), yes.
    /// Earlier too when the next keyframe, up to a keyframe interval later, would come more than `OVERRUN` past
    /// the length: a keyframe made out of turn (a WHEP viewer joined, an output started) restarts the encoder's
    /// interval, and segments would otherwise grow past the target duration after it. (The playlist then keeps
    /// listing three target durations however short such segments are: `hls_playlist`.)
    fn ends_segment(&self, pts: gst::ClockTime, start: gst::ClockTime) -> bool {
        let length = start + gst::ClockTime::from_seconds(u64::from(self.segment_seconds));
        pts + SEGMENT_SLACK >= length || pts + self.keyframe_interval > length + OVERRUN
    }
}

/// `audio_only`: the broadcast has no video; segments are cut by time instead (`hls_audio_cuts`). The playlist
/// goes on from what `dir` holds; the runner ends it (`HlsPlaylist::finish`) when the output ends. With a
/// `ladder` (and video), `dir` gets the multivariant playlist and each rendition a folder with its media
/// playlist (`hls_renditions`); the main rendition's playlist comes first in what is returned.
pub fn build(
    dir: &Path,
    timing: SegmentTiming,
    window: u32,
    audio_only: bool,
    ladder: Option<&Ladder>,
) -> Result<(OutputPipeline, Vec<HlsPlaylist>)> {
    let ladder = ladder.filter(|_| !audio_only);
    let main_dir = ladder.map_or_else(|| dir.to_path_buf(), |l| dir.join(folder(l.main.height)));
    std::fs::create_dir_all(&main_dir)?;
    let pipeline = gst::Pipeline::with_name("hls-output");
    let tracks = Tracks::add(&pipeline, audio_only)?;
    let (mux, sink, playlist) = segment_writer(&pipeline, &main_dir, window, timing.target_seconds())?;
    let segment = gst::ClockTime::from_seconds(u64::from(timing.segment_seconds));
    let mux_src = mux.static_pad("src").context("mpegtsmux src pad")?;
    let mut playlists = vec![playlist];
    match (&tracks.video, ladder) {
        (Some((video, h264parse)), Some(ladder)) => {
            let cadence = Arc::new(Cadence::default());
            let video_src = video.static_pad("src").context("appsrc src pad")?;
            cut_at_keyframes(&video_src, timing, Some(cadence.clone()));
            let main = Main {
                video_parse: h264parse,
                audio_parse: &tracks.audio.1,
                mux: &mux,
                sink: &sink,
            };
            let extra = super::hls_renditions::add(&pipeline, main, ladder, dir, window, timing, cadence)?;
            playlists.extend(extra);
        }
        (Some((video, h264parse)), None) => {
            h264parse.link(&mux)?;
            tracks.audio.1.link(&mux)?;
            cut_at_keyframes(&video.static_pad("src").context("appsrc src pad")?, timing, None);
        }
        (None, _) => {
            tracks.audio.1.link(&mux)?;
            super::hls_audio_cuts::cut_by_time(&mux_src, segment);
        }
    }
    let output = OutputPipeline {
        pipeline,
        video: tracks.video_src(),
        audio: tracks.audio.0,
        sink,
        recording: None,
    };
    Ok((output, playlists))
}

/// `mpegtsmux ! multifilesink` writing the segments of the media playlist in `dir` (numbered on from what is
/// there), added to `pipeline`: a rendition's segment writer (the main one's, and each of a ladder's).
pub(super) fn segment_writer(
    pipeline: &gst::Pipeline,
    dir: &Path,
    window: u32,
    target_seconds: u32,
) -> Result<(gst::Element, gst::Element, HlsPlaylist)> {
    let mux = make("mpegtsmux")?;
    let sink = make("multifilesink")?;
    let (playlist, first_index) = HlsPlaylist::open(dir, window, target_seconds);
    sink.set_property("location", super::hls_writer::location(dir));
    sink.set_property("index", i32::try_from(first_index).context("segment numbers used up")?);
    // A new file at each downstream force-key-unit event (a cut).
    sink.set_property_from_str("next-file", "key-unit-event");
    pipeline.add_many([&mux, &sink])?;
    mux.link(&sink)?;
    // First on the sink's pad: whatever acts after a cut finds the playlist listing the segment it closed.
    playlist.follow(&sink.static_pad("sink").context("multifilesink sink pad")?);
    Ok((mux, sink, playlist))
}

/// Marks the keyframe that starts each segment (`SegmentTiming::ends_segment`).
/// A keyframe whose stream is not the one the segment started with (the zero-transcode switch moving between
/// the mixer's encode and a participant's H.264: another size and profile) always starts a segment, however
/// soon: every segment then has one resolution and one set of parameters from its first frame to its last.
/// `cadence`: where the output's other renditions learn each keyframe and cut.
fn cut_at_keyframes(video: &gst::Pad, timing: SegmentTiming, cadence: Option<Arc<Cadence>>) {
    let last_cut = Arc::new(AtomicU64::new(u64::MAX));
    let count = Arc::new(AtomicU64::new(0));
    let segment_caps = Arc::new(std::sync::Mutex::new(None::<gst::Caps>));
    video.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let (Some(pts), false) = (buffer.pts(), buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)) else {
            return gst::PadProbeReturn::Ok;
        };
        let last = last_cut.load(Ordering::Relaxed);
        let caps = pad.current_caps();
        let mut started_with = segment_caps.lock().unwrap_or_else(|e| e.into_inner());
        let new_stream = *started_with != caps;
        // The first keyframe opens the first segment: nothing to cut.
        let due = last == u64::MAX || new_stream || timing.ends_segment(pts, gst::ClockTime::from_nseconds(last));
        if let Some((cadence, at)) = cadence.as_ref().zip(super::hls_renditions::running_time(pad, pts)) {
            cadence.keyframe(at, due && last != u64::MAX);
        }
        if !due {
            return gst::PadProbeReturn::Ok;
        }
        *started_with = caps;
        drop(started_with);
        last_cut.store(pts.nseconds(), Ordering::Relaxed);
        if last != u64::MAX {
            push_cut(pad, pts, count.fetch_add(1, Ordering::Relaxed) as u32 + 1);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Sends the event that ends a segment right before the buffer at `pts` on `pad` (`count`: cuts so far).
pub(super) fn push_cut(pad: &gst::Pad, pts: gst::ClockTime, count: u32) {
    let running_time = pad.sticky_event::<gst::event::Segment>(0).and_then(|s| {
        s.segment()
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(pts))
    });
    let event = gst_video::DownstreamForceKeyUnitEvent::builder()
        .timestamp(pts)
        .stream_time(pts)
        .running_time(running_time)
        .all_headers(true)
        .count(count)
        .build();
    pad.push_event(event);
}

/// Calls `after_cut` on the first buffer through `sink_pad` after each cut. `multifilesink` closes the segment
/// while the cut's force-key-unit event goes through its sink pad, and the playlist listing it is written on
/// that buffer by the probe `hls_writer` added first. Probes on a pad run in the order they were added: a later
/// caller's `after_cut` runs after an earlier one's for the same cut. `after_cut` runs on the streaming thread
/// and must not block.
pub(super) fn after_each_cut(sink_pad: &gst::Pad, after_cut: impl Fn() + Send + Sync + 'static) {
    let cut = AtomicBool::new(false);
    sink_pad.add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Event(event)) if gst_video::ForceKeyUnitEvent::is(event) => {
                    cut.store(true, Ordering::Relaxed);
                }
                Some(gst::PadProbeData::Event(_)) => {}
                Some(_) if cut.swap(false, Ordering::Relaxed) => after_cut(),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// The number in an output file's name: 1 to 10 ASCII digits (nothing a path could be made of).
pub fn is_file_number(digits: &str) -> bool {
    !digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// True for file names this output writes, so the HTTP server never serves anything else.
/// (A low-latency output's too: `init{n}.mp4`, `segment{n}.m4s`, `part{n}.{i}.m4s`.)
pub fn is_servable(name: &str) -> bool {
    let numbered = |prefix: &str, suffix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(is_file_number)
    };
    name == PLAYLIST
        || numbered("segment", ".ts")
        || numbered("segment", ".m4s")
        || numbered("init", ".mp4")
        || super::ll_hls_playlist::parse_part_name(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::{after_each_cut, is_servable, push_cut, SegmentTiming};
    use gst::prelude::*;
    use gst::ClockTime;
    use std::sync::{Arc, Mutex};

    /// The keyframes (in ms) that end a segment, of a video whose keyframes come at `keyframes_ms`.
    fn cuts(timing: SegmentTiming, keyframes_ms: &[u64]) -> Vec<u64> {
        let mut start = ClockTime::from_mseconds(keyframes_ms[0]);
        let mut cuts = Vec::new();
        for &ms in &keyframes_ms[1..] {
            if timing.ends_segment(ClockTime::from_mseconds(ms), start) {
                start = ClockTime::from_mseconds(ms);
                cuts.push(ms);
            }
        }
        cuts
    }

    fn timing(segment_seconds: u32, keyframe_interval_ms: u64) -> SegmentTiming {
        SegmentTiming {
            segment_seconds,
            keyframe_interval: ClockTime::from_mseconds(keyframe_interval_ms),
        }
    }

    #[test]
    fn a_keyframe_out_of_turn_ends_a_segment_that_would_outgrow_the_target() {
        // Keyframes every 2 s; one asked for at 5.3 s restarts the encoder's interval (7.3, 9.3). Waiting at 5.3
        // for the segment's 2 s would end it at 7.3: 3.3 s, over a target duration of 2.
        let every_2s = [0, 2000, 4000, 5300, 7300, 9300];
        assert_eq!(cuts(timing(2, 2000), &every_2s), [2000, 4000, 5300, 7300, 9300]);
        // Keyframes every 1 s, 2 s segments, one out of turn at 2.5 s: 3.5 ends the segment begun at 2 (4.5
        // would make it 2.5 s, which rounds to 3); a keyframe early in a segment ends nothing.
        let every_1s = [0, 1000, 2000, 2500, 3500, 4500, 5500, 6500, 7500];
        assert_eq!(cuts(timing(2, 1000), &every_1s), [2000, 3500, 5500, 7500]);
        // Keyframes on time, a little early or late, end segments at the length asked for.
        let jittered = [0, 1000, 1900, 3000, 4150, 5000, 6000];
        assert_eq!(cuts(timing(2, 1000), &jittered), [1900, 4150, 6000]);
        // 4 s segments, keyframes every 2 s, one out of turn at 2.3 s: the segment may run to 4.3 s (it rounds
        // to 4), so that keyframe ends nothing.
        let late_in_segment = [0, 2000, 2300, 4300, 6300, 8300];
        assert_eq!(cuts(timing(4, 2000), &late_in_segment), [4300, 8300]);
    }

    #[test]
    fn the_target_duration_is_the_segment_length_or_the_keyframe_interval_if_longer() {
        assert_eq!(timing(2, 2000).target_seconds(), 2);
        assert_eq!(timing(4, 2000).target_seconds(), 4);
        assert_eq!(timing(1, 2000).target_seconds(), 2);
        assert_eq!(timing(1, 1500).target_seconds(), 2);
    }

    #[test]
    fn after_each_cut_runs_once_on_the_buffer_after_each_cut_in_the_order_added() {
        gst::init().unwrap();
        let sink = gst::Pad::builder(gst::PadDirection::Sink)
            .chain_function(|_, _, _| Ok(gst::FlowSuccess::Ok))
            .event_function(|_, _, _| true)
            .build();
        let src = gst::Pad::builder(gst::PadDirection::Src).build();
        src.link(&sink).unwrap();
        sink.set_active(true).unwrap();
        src.set_active(true).unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        // As for a keep-all output that uploads: the playlist is published before its upload is reported.
        for name in ["publish", "report"] {
            let calls = calls.clone();
            after_each_cut(&sink, move || calls.lock().unwrap().push(name));
        }
        src.push_event(gst::event::StreamStart::new("cuts"));
        src.push_event(gst::event::Caps::new(&gst::Caps::new_empty_simple("video/mpegts")));
        src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new()));
        let push = |buffers: usize| {
            for _ in 0..buffers {
                src.push(gst::Buffer::new()).unwrap();
            }
        };
        push(2);
        assert!(calls.lock().unwrap().is_empty(), "no cut yet");
        push_cut(&src, gst::ClockTime::ZERO, 1);
        push(3);
        assert_eq!(*calls.lock().unwrap(), ["publish", "report"]);
        push_cut(&src, gst::ClockTime::from_seconds(1), 2);
        push(1);
        assert_eq!(*calls.lock().unwrap(), ["publish", "report", "publish", "report"]);
    }

    #[test]
    fn only_our_files_are_servable() {
        assert!(is_servable("index.m3u8"));
        assert!(is_servable("segment00012.ts"));
        for low_latency in ["init0.mp4", "segment00003.m4s", "part00003.2.m4s"] {
            assert!(is_servable(low_latency), "{low_latency}");
        }
        for bad in [
            "../index.m3u8",
            "segment.ts",
            "segment1.ts/..",
            "/etc/passwd",
            "segment00001.mp4",
            "part1.m4s",
            "part1..m4s",
            "init.mp4",
            ".part00001.2.m4s.tmp",
            "x.m3u8",
            // The playlist being written, and an earlier version's private playlist.
            ".hlssink-index.m3u8",
            ".index.m3u8.tmp",
        ] {
            assert!(!is_servable(bad), "{bad}");
        }
    }
}
