//! Recording output: the broadcast's own H.264 and AAC (no encode) into an MP4 that a crash cannot spoil.
//!
//! `mp4mux` in its "robust muxing" mode: room for the index (`moov`) is reserved at the front of the file and
//! the index there is rewritten every `MOOV_UPDATE_PERIOD`, so a file cut off by SIGKILL or a power cut still
//! has a valid index for everything up to the last update (the media after it is lost), and a file finished by
//! EOS has its index at the front (fast start) with no rewrite of the media. The fragmented modes of 1.22's
//! mp4mux do not give that: `first-moov-then-finalise` writes `ftyp, mdat, moov` at EOS (index at the end).
//!
//! Matroska (`"format":"mkv"`) needs no reserved index: `matroskamux` writes each frame as it comes, in clusters of
//! a second at most, so a file cut off mid-write plays up to what reached the disk (filesink's write buffer is
//! what is lost: none of 6 s in the test); at EOS it gets its cues and duration.

use super::{OutputPipeline, Tracks};
use crate::gst_util::make;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A broadcast's recordings go in this folder of its directory (`broadcasts/{id}/recordings/`).
pub const RECORDINGS_DIR: &str = "recordings";

/// How often the index at the front is brought up to date: at most this much (plus filesink's small write
/// buffer) is lost when the process dies.
const MOOV_UPDATE_PERIOD: gst::ClockTime = gst::ClockTime::from_seconds(1);

/// The longest recording one file reserves index room for. About 1.1 KB of reserved header per second
/// (mp4mux's 550 B/s per track).
pub const MAX_RESERVE: Duration = Duration::from_secs(12 * 3600);

/// A file ends at the first keyframe at or after its length: its index room covers that much more (longer than
/// any keyframe interval a broadcast may ask for).
const RESERVE_MARGIN: Duration = Duration::from_secs(60);

/// The longest one file runs when no shorter length is asked: a longer show goes on in a next file, since the
/// index room of one file is bounded.
const MAX_PART: Duration = MAX_RESERVE.saturating_sub(RESERVE_MARGIN);

/// When a recording goes on in a new file (a part): after `after` of video, or once the file holds `bytes`.
/// The next file starts at a keyframe with the first frame and audio the last one did not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub after: Option<Duration>,
    pub bytes: Option<u64>,
}

impl Split {
    /// How long a file runs before the next starts: as asked, never more than `MAX_PART`.
    pub fn part_length(&self) -> Duration {
        self.after.unwrap_or(MAX_PART).min(MAX_PART)
    }

    /// Index room for one file of a broadcast that lasts at most `broadcast_max`.
    pub fn reserve(&self, broadcast_max: Duration) -> Duration {
        (self.part_length() + RESERVE_MARGIN)
            .min(broadcast_max)
            .min(MAX_RESERVE)
    }
}

/// The container a recording is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mp4,
    Mkv,
}

/// Longest Matroska cluster (the default is 65 s): short clusters keep a cut-off file's last cluster, the one
/// written without its final size, short.
const MKV_CLUSTER: gst::ClockTime = gst::ClockTime::from_seconds(1);

impl Format {
    /// The request's name for a format; None for one we do not write.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "mp4" => Some(Format::Mp4),
            "mkv" => Some(Format::Mkv),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Mkv => "mkv",
        }
    }
}

/// A file being recorded: where, and how many seconds of video it holds so far.
#[derive(Debug, Clone)]
pub struct Recording {
    pub path: PathBuf,
    /// First and last video timestamp (ns) that reached the muxer; u64::MAX until the first.
    first_pts: Arc<AtomicU64>,
    last_pts: Arc<AtomicU64>,
    /// Bytes of media handed to the muxer (the file also holds the index room reserved at its front).
    media_bytes: Arc<AtomicU64>,
}

impl Recording {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            first_pts: Arc::new(AtomicU64::new(u64::MAX)),
            last_pts: Arc::new(AtomicU64::new(0)),
            media_bytes: Arc::default(),
        }
    }

    /// Bytes of media written so far: what `max_file_mb` counts (the file's size would count the index room
    /// reserved at its front, megabytes before the first frame).
    pub fn media_bytes(&self) -> u64 {
        self.media_bytes.load(Ordering::Relaxed)
    }

    fn count_media(&self, mux: &gst::Element) {
        for pad in mux.sink_pads() {
            let bytes = self.media_bytes.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    bytes.fetch_add(buffer.size() as u64, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            });
        }
    }

    /// Milliseconds between the first and the last video frame written so far.
    pub fn duration_ms(&self) -> u64 {
        let first = self.first_pts.load(Ordering::Relaxed);
        if first == u64::MAX {
            return 0;
        }
        self.last_pts.load(Ordering::Relaxed).saturating_sub(first) / 1_000_000
    }

    /// Timestamp of the first video frame written, once there is one.
    pub fn first_pts(&self) -> Option<gst::ClockTime> {
        let first = self.first_pts.load(Ordering::Relaxed);
        (first != u64::MAX).then(|| gst::ClockTime::from_nseconds(first))
    }

    /// Bytes on disk now (0 before the file exists).
    pub fn bytes_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn watch(&self, pad: &gst::Pad) {
        let (first, last) = (self.first_pts.clone(), self.last_pts.clone());
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                let _ = first.compare_exchange(u64::MAX, pts.nseconds(), Ordering::Relaxed, Ordering::Relaxed);
                last.fetch_max(pts.nseconds(), Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// `{output id}-{UTC start time}.{ext}`, e.g. `out_1-20261130T041502.123Z.mp4`: sorts by time, and a retry
/// within the same second still gets a file of its own.
pub fn file_name(output_id: &str, started_at_ms: u64, format: Format) -> String {
    format!("{output_id}-{}.{}", utc_stamp(started_at_ms), format.extension())
}

/// `YYYYMMDDTHHMMSS.mmmZ` for a time in ms since the epoch.
fn utc_stamp(ms: u64) -> String {
    let seconds = gst::glib::DateTime::from_unix_utc((ms / 1000) as i64)
        .and_then(|t| t.format("%Y%m%dT%H%M%S"))
        .map(|s| s.to_string())
        // Beyond year 9999 only (GLib's range): the raw seconds still sort.
        .unwrap_or_else(|_| (ms / 1000).to_string());
    format!("{seconds}.{:03}Z", ms % 1000)
}

/// A pipeline writing `path`, with index room for `reserve` of recording; `audio_only`: no video track.
pub fn build(path: &Path, format: Format, reserve: Duration, audio_only: bool) -> Result<OutputPipeline> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pipeline = gst::Pipeline::with_name("record-output");
    let tracks = Tracks::add(&pipeline, audio_only)?;
    let mux = match format {
        Format::Mp4 => {
            let mux = make("mp4mux")?;
            mux.set_property("reserved-max-duration", reserve.as_nanos() as u64);
            mux.set_property("reserved-moov-update-period", MOOV_UPDATE_PERIOD.nseconds());
            mux
        }
        Format::Mkv => {
            let mux = make("matroskamux")?;
            mux.set_property("max-cluster-duration", MKV_CLUSTER.nseconds() as i64);
            mux
        }
    };
    let sink = make("filesink")?;
    sink.set_property("location", path.to_string_lossy().as_ref());
    // The muxer seeks back to rewrite the index: no async state change waiting on a clock for a file.
    sink.set_property("async", false);
    crate::gst_util::add_and_link(&pipeline, &[&mux, &sink])?;
    if let Some((_, h264parse)) = &tracks.video {
        h264parse.link_pads(None, &mux, Some("video_%u"))?;
    }
    tracks.audio.1.link_pads(None, &mux, Some("audio_%u"))?;
    let recording = Recording::new(path.to_path_buf());
    recording.watch(&tracks.timing().static_pad("src").context("parser src pad")?);
    recording.count_media(&mux);
    Ok(OutputPipeline {
        pipeline,
        video: tracks.video_src(),
        audio: tracks.audio.0,
        sink,
        recording: Some(recording),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_the_output_and_its_utc_start() {
        // 2026-11-30 04:15:02.123 UTC, worked out by hand: 20 787 days after 1970-01-01, plus 15 302.123 s.
        let ms = 20_787 * 86_400_000 + 15_302_123;
        assert_eq!(file_name("out_1", ms, Format::Mp4), "out_1-20261130T041502.123Z.mp4");
        assert_eq!(file_name("out_0", 0, Format::Mp4), "out_0-19700101T000000.000Z.mp4");
        // A leap day: 2024-02-29 23:59:59.999 UTC is 1 709 251 199.999 s after the epoch.
        assert_eq!(utc_stamp(1_709_251_199_999), "20240229T235959.999Z");
    }

    #[test]
    fn a_file_reserves_index_room_for_its_part_and_never_more_than_12_hours() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let ten_minutes = Split {
            after: Some(Duration::from_secs(600)),
            bytes: None,
        };
        // A part of 10 min ends at the first keyframe after 10 min: a minute of margin.
        assert_eq!(ten_minutes.reserve(hours(3)), Duration::from_secs(660));
        // A broadcast shorter than a part needs room for the broadcast only.
        assert_eq!(ten_minutes.reserve(Duration::from_secs(120)), Duration::from_secs(120));
        let whole = Split::default();
        assert_eq!(whole.reserve(hours(3)), hours(3));
        assert_eq!(whole.reserve(hours(48)), hours(12));
        // A show longer than 12 h goes on in a new file a minute before the room would run out.
        assert_eq!(whole.part_length(), hours(12) - Duration::from_secs(60));
        let too_long = Split {
            after: Some(hours(13)),
            bytes: Some(1),
        };
        assert_eq!(too_long.part_length(), hours(12) - Duration::from_secs(60));
    }

    #[test]
    fn mp4_and_mkv_are_the_formats() {
        assert_eq!(Format::parse("mp4"), Some(Format::Mp4));
        assert_eq!(Format::parse("mkv"), Some(Format::Mkv));
        for bad in ["MP4", "webm", "", "mp4 "] {
            assert_eq!(Format::parse(bad), None, "{bad}");
        }
    }
}
