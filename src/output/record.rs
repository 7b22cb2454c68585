//! Recording output: the broadcast's own H.264 and AAC (no encode) into an MP4 that a crash cannot spoil.
//!
//! `mp4mux` in its "robust muxing" mode: room for the index (`moov`) is reserved at the front of the file and
//! the index there is rewritten every `MOOV_UPDATE_PERIOD`, so a file cut off by SIGKILL or a power cut still
//! has a valid index for everything up to the last update (the media after it is lost), and a file finished by
//! EOS has its index at the front (fast start) with no rewrite of the media. The fragmented modes of 1.22's
//! mp4mux do not give that: `first-moov-then-finalise` writes `ftyp, mdat, moov` at EOS (index at the end).

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

/// The longest recording one file reserves index room for; a longer one fails when the room runs out and its
/// runner starts the next file. About 1.1 KB of reserved header per second (mp4mux's 550 B/s per track).
pub const MAX_RESERVE: Duration = Duration::from_secs(12 * 3600);

/// The container a recording is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mp4,
}

impl Format {
    /// The request's name for a format; None for one we do not write.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "mp4" => Some(Format::Mp4),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
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
}

impl Recording {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            first_pts: Arc::new(AtomicU64::new(u64::MAX)),
            last_pts: Arc::new(AtomicU64::new(0)),
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

/// `YYYYMMDDTHHMMSS.mmmZ` for a time in ms since the epoch (the civil-from-days algorithm, proleptic Gregorian).
fn utc_stamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// A pipeline writing `path`, with index room for `reserve` of recording; `audio_only`: no video track.
pub fn build(path: &Path, format: Format, reserve: Duration, audio_only: bool) -> Result<OutputPipeline> {
    let Format::Mp4 = format;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pipeline = gst::Pipeline::with_name("record-output");
    let tracks = Tracks::add(&pipeline, audio_only)?;
    let mux = make("mp4mux")?;
    mux.set_property("reserved-max-duration", reserve.as_nanos() as u64);
    mux.set_property("reserved-moov-update-period", MOOV_UPDATE_PERIOD.nseconds());
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
    fn only_mp4_is_a_format() {
        assert_eq!(Format::parse("mp4"), Some(Format::Mp4));
        for bad in ["MP4", "mkv", "", "mp4 "] {
            assert_eq!(Format::parse(bad), None, "{bad}");
        }
    }
}
