//! What a viewer of the HLS output gets, measured from outside the server: a reading client polls the playlist
//! over HTTP as a player does and notes the wall clock at which each segment is first listed; the media time of
//! that moment is read from the segments themselves (ffprobe). A segment is listed when the keyframe that starts
//! the next one reaches the muxer, so its arrival is paired with the next segment's first timestamp. If the
//! output's timestamps ran faster or slower than the wall clock, or the output fell further and further behind,
//! the lag (arrival minus media time) would grow or shrink over the run.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the client reads the playlist: the arrival times are this coarse.
const POLL: Duration = Duration::from_millis(50);

/// A segment as the client saw it: its name in the playlist and the wall clock (ms) of its first listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub name: String,
    pub at_ms: u64,
}

/// Polls a playlist URL on its own thread until finished.
pub struct PlaylistWatcher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Listed>>,
}

impl PlaylistWatcher {
    /// Starts polling `url`. Segments already listed at the first reading are not counted: their arrival was
    /// before the client looked.
    pub fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client");
            let mut known: Option<Vec<String>> = None;
            let mut listed = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                if let Some(names) = http.get(&url).send().and_then(|r| r.text()).ok().map(|t| segments(&t)) {
                    let at_ms = crate::wall_clock::now_ms();
                    if let Some(known) = &known {
                        for name in names.iter().filter(|n| !known.contains(n)) {
                            if !listed.iter().any(|l: &Listed| &l.name == name) {
                                listed.push(Listed {
                                    name: name.clone(),
                                    at_ms,
                                });
                            }
                        }
                    }
                    known = Some(names);
                }
                std::thread::sleep(POLL);
            }
            listed
        });
        Self { stop, thread }
    }

    /// Stops polling; every segment that was listed while the client watched, in order.
    pub fn finish(self) -> Vec<Listed> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Segment names of a media playlist (every line that is not a tag).
fn segments(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Timestamp (s) of the first video packet of an MPEG-TS segment, as a player reads it: the PTS of the first
/// video PES header (read here rather than by one ffprobe per segment, which took seconds of the soak).
pub fn first_video_pts(segment: &Path) -> Result<f64> {
    let bytes = std::fs::read(segment).with_context(|| format!("reading {}", segment.display()))?;
    first_video_pts_in(&bytes).with_context(|| format!("no video timestamp in {}", segment.display()))
}

const TS_PACKET: usize = 188;
const TS_SYNC: u8 = 0x47;

fn first_video_pts_in(ts: &[u8]) -> Option<f64> {
    ts.chunks_exact(TS_PACKET)
        .filter(|p| p[0] == TS_SYNC)
        .find_map(|packet| {
            let unit_start = packet[1] & 0x40 != 0;
            let adaptation = packet[3] & 0x20 != 0;
            let payload_at = if adaptation { 5 + usize::from(packet[4]) } else { 4 };
            let pes = packet.get(payload_at..).filter(|_| unit_start)?;
            // A PES header (00 00 01), of a video stream (stream id 0xE0-0xEF), with a PTS.
            if pes.len() < 14 || pes[..3] != [0, 0, 1] || pes[3] & 0xF0 != 0xE0 || pes[7] & 0x80 == 0 {
                return None;
            }
            let b = &pes[9..14];
            let pts = (u64::from(b[0] >> 1) & 0x07) << 30
                | u64::from(b[1]) << 22
                | u64::from(b[2] >> 1) << 15
                | u64::from(b[3]) << 7
                | u64::from(b[4] >> 1);
            Some(pts as f64 / 90_000.0)
        })
}

/// How the lag of the output behind the wall clock moved over a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    /// The lag's least-squares trend over the run, in ms from its first sample to its last: the output's
    /// timestamps running slow (or falling behind) is positive.
    pub ms: f64,
    /// Largest minus smallest lag around that trend, in ms: how unevenly segments arrived.
    pub spread_ms: f64,
    /// Media seconds from the first sample to the last.
    pub span_s: f64,
    pub samples: usize,
}

/// Drift of `samples`: (media time in s, wall-clock ms at which a viewer got to it). None under 3 samples.
pub fn drift(samples: &[(f64, u64)]) -> Option<Drift> {
    if samples.len() < 3 {
        return None;
    }
    let (t0, a0) = samples[0];
    // Relative to the first sample, so wall-clock ms since the epoch keep their precision as f64.
    let points: Vec<(f64, f64)> = samples
        .iter()
        .map(|&(t, at)| (t - t0, (at as f64 - a0 as f64) - (t - t0) * 1000.0))
        .collect();
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum::<f64>() / sxx;
    let residuals: Vec<f64> = points.iter().map(|p| p.1 - mean_y - slope * (p.0 - mean_x)).collect();
    let span_s = points.iter().map(|p| p.0).fold(0.0, f64::max);
    let max = residuals.iter().cloned().fold(f64::MIN, f64::max);
    let min = residuals.iter().cloned().fold(f64::MAX, f64::min);
    Some(Drift {
        ms: slope * span_s,
        spread_ms: max - min,
        span_s,
        samples: samples.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_lines_that_are_not_tags_are_segments() {
        let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nsegment00003.ts\n\n#EXTINF:2.0,\r\nsegment00004.ts\r\n#EXT-X-ENDLIST\n";
        assert_eq!(segments(playlist), ["segment00003.ts", "segment00004.ts"]);
    }

    /// A 188-byte TS packet starting a PES of `stream_id` with these five PTS bytes.
    fn pes_packet(stream_id: u8, pts: [u8; 5], adaptation: bool) -> Vec<u8> {
        let mut p = vec![TS_SYNC, 0x41, 0x00, if adaptation { 0x30 } else { 0x10 }];
        if adaptation {
            p.extend([1, 0x00]);
        }
        p.extend([0, 0, 1, stream_id, 0, 0, 0x80, 0x80, 5]);
        p.extend(pts);
        p.resize(TS_PACKET, 0xFF);
        p
    }

    #[test]
    fn the_first_video_pts_of_a_segment_is_read() {
        // PTS 904500 (10.05 s) encoded by hand as the MPEG-TS spec lays it out: 0x21 0x00 0x37 0x9a 0x69.
        let video = [0x21, 0x00, 0x37, 0x9a, 0x69];
        let audio = [0x21, 0x00, 0x01, 0x00, 0x01];
        let mut ts = pes_packet(0xC0, audio, false);
        ts.extend(pes_packet(0xE0, video, true));
        ts.extend(pes_packet(0xE0, audio, false));
        assert_eq!(first_video_pts_in(&ts), Some(10.05));
        assert_eq!(first_video_pts_in(&pes_packet(0xC0, audio, false)), None, "audio only");
    }

    #[test]
    fn a_steady_lag_is_no_drift() {
        // Every 2 s of media arrives 2 s later, 700 ms behind, give or take 20 ms.
        let samples: Vec<(f64, u64)> = (0..30)
            .map(|i| {
                (
                    100.0 + 2.0 * f64::from(i),
                    1_000_000 + 700 + 2000 * i as u64 + [0, 20, 10][i as usize % 3],
                )
            })
            .collect();
        let d = drift(&samples).unwrap();
        assert!(d.ms.abs() < 5.0, "{d:?}");
        assert!((d.spread_ms - 20.0).abs() < 5.0, "{d:?}");
        assert_eq!((d.span_s, d.samples), (58.0, 30));
    }

    #[test]
    fn timestamps_slower_than_the_wall_clock_drift_positive() {
        // 1 ms more wall clock per media second: 58 ms over 58 s.
        let samples: Vec<(f64, u64)> = (0..30).map(|i| (2.0 * f64::from(i), 5_000 + 2002 * i as u64)).collect();
        let d = drift(&samples).unwrap();
        assert!((d.ms - 58.0).abs() < 0.5, "{d:?}");
        assert!(d.spread_ms < 0.5, "{d:?}");
        // A stall the output never caught up on is a step in the lag: drift and spread both show it.
        let stalled: Vec<(f64, u64)> = (0..30)
            .map(|i| {
                (
                    2.0 * f64::from(i),
                    5_000 + 2000 * i as u64 + if i >= 15 { 400 } else { 0 },
                )
            })
            .collect();
        let d = drift(&stalled).unwrap();
        assert!(d.ms > 300.0 && d.spread_ms > 150.0, "{d:?}");
    }

    #[test]
    fn too_few_samples_say_nothing() {
        assert_eq!(drift(&[(0.0, 0), (2.0, 2000)]), None);
        assert_eq!(drift(&[(1.0, 0), (1.0, 10), (1.0, 20)]), None, "no media time passed");
    }
}
