//! Glass-to-ingest latency: plays the broadcast back from the RTMP ingest (`playback.rs`) and, for each decoded
//! frame, subtracts the wall clock the publisher painted into it (`publish --clock-stamp`, read inside the first
//! tile) from the wall clock at which its encoded frame came out of the ingest, so the bench's own decode is not
//! counted.

use super::playback::{DecodedFrame, Playback};
use crate::layout::engine::{place, Scene};
use crate::layout::template::Templates;
use crate::layout::{Canvas, Rect};
use crate::tools::clock_stamp;
use anyhow::{Context, Result};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Tally {
    samples: Vec<i64>,
    unread: u64,
    unmatched: u64,
    smoothness: Smoothness,
}

/// How smoothly the first tile's pictures came through, from the stamps of consecutive output frames: the same
/// stamp twice is a publisher frame shown again (the next one missed its output frame); a step of more than one
/// frame interval is publisher frames that never reached the output (dropped on the way).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Smoothness {
    last_stamp: Option<u64>,
    pub repeated: u64,
    pub skipped: u64,
}

impl Smoothness {
    pub(super) fn note(&mut self, stamp: u64, frame_ms: f64) {
        if let Some(last) = self.last_stamp.replace(stamp) {
            match stamp.checked_sub(last) {
                Some(0) => self.repeated += 1,
                Some(step) => self.skipped += ((step as f64 / frame_ms).round() as u64).saturating_sub(1),
                // An older picture after a newer one: counted as shown again.
                None => self.repeated += 1,
            }
        }
    }
}

/// What a window measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub samples: u64,
    /// Frames whose stamp did not read (rejected, not guessed).
    pub unread: u64,
    /// Decoded frames with no arrival time of the same PTS (should stay 0).
    pub unmatched: u64,
    pub smoothness: Smoothness,
}

pub struct LatencyProbe {
    playback: Playback,
    tally: Arc<Mutex<Tally>>,
}

/// Where the first participant's whole picture is drawn in the built-in grid with `shown` participants on a
/// `width` x `height` canvas.
pub fn first_grid_tile(width: u32, height: u32, shown: usize) -> Result<Rect> {
    grid_tiles(width, height, shown)?
        .into_iter()
        .next()
        .context("nobody on screen")
}

/// Where each of `shown` participants' whole pictures is drawn in the built-in grid on a `width` x `height`
/// canvas, in the grid's order.
pub fn grid_tiles(width: u32, height: u32, shown: usize) -> Result<Vec<Rect>> {
    let templates = Templates::builtin();
    let grid = templates.get("grid").context("the built-in grid template")?;
    let scene = Scene {
        order: (0..shown).map(|i| i.to_string()).collect(),
        ..Scene::default()
    };
    let canvas = Canvas {
        width: width as i32,
        height: height as i32,
    };
    Ok(place(grid, canvas, &scene).iter().map(|p| drawn_area(p.rect)).collect())
}

/// Where a publisher's whole picture is drawn for a `tile`: the tile itself, or, for a picture trimmed to fit
/// it (instead of scaled), the picture at full size, its cut edges outside the tile.
pub fn drawn_area(tile: Rect) -> Rect {
    let source = (crate::tools::publish::WIDTH, crate::tools::publish::HEIGHT);
    match crate::mix::scaling::trim_to_tile(source, (tile.w, tile.h)) {
        Some([left, right, top, bottom]) => Rect {
            x: tile.x - left,
            y: tile.y - top,
            w: tile.w + left + right,
            h: tile.h + top + bottom,
        },
        None => tile,
    }
}

impl LatencyProbe {
    /// Starts playing `url`, reading stamps of a `source`-sized picture shown in `tile`.
    pub fn start(url: &str, tile: Rect, source: (usize, usize)) -> Result<Self> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let frames = tally.clone();
        let playback = Playback::start(url, move |frame| on_frame(&frame, tile, source, &frames))?;
        Ok(Self { playback, tally })
    }

    /// Forgets what was measured so far (the window starts now).
    pub fn reset(&self) {
        *self.tally.lock().unwrap() = Tally::default();
    }

    /// Stops playing; the figures since the last reset.
    pub fn finish(self) -> Latency {
        self.playback.stop();
        let tally = self.tally.lock().unwrap();
        let mut sorted = tally.samples.clone();
        sorted.sort_unstable();
        Latency {
            p50_ms: percentile(&sorted, 50),
            p95_ms: percentile(&sorted, 95),
            samples: sorted.len() as u64,
            unread: tally.unread,
            unmatched: tally.unmatched,
            smoothness: tally.smoothness,
        }
    }
}

/// The clock stamp read in `tile` of an I420 picture (None: it did not read). A replaying publisher's stamp is
/// the send time modulo its clip's length.
fn read_stamp(data: &[u8], stride: usize, tile: Rect, source: (usize, usize)) -> Option<u64> {
    clock_stamp::read(data, stride, tile, source)
        .map(|stamp| clock_stamp::resolve_looped(stamp, crate::wall_clock::now_ms()))
}

/// A decoded I420 frame's PTS and the clock stamp read in `tile` (None: it did not read).
pub(super) fn stamp_of(
    sample: &gst::Sample,
    tile: Rect,
    source: (usize, usize),
) -> Option<(gst::ClockTime, Option<u64>)> {
    let (buffer, caps) = (sample.buffer()?, sample.caps()?);
    let width = caps.structure(0).and_then(|s| s.get::<i32>("width").ok())?;
    let pts = buffer.pts()?;
    let map = buffer.map_readable().ok()?;
    // appsink takes no video meta, so the decoder hands over GStreamer's default I420 layout.
    let stride = (width as usize).next_multiple_of(4);
    Some((pts, read_stamp(&map, stride, tile, source)))
}

fn on_frame(frame: &DecodedFrame, tile: Rect, source: (usize, usize), tally: &Mutex<Tally>) {
    let stamped = read_stamp(frame.data, frame.stride, tile, source);
    let mut tally = tally.lock().unwrap();
    if let Some(stamp) = stamped {
        tally
            .smoothness
            .note(stamp, 1000.0 / f64::from(crate::tools::publish::FPS));
    }
    match (stamped, frame.arrived_ms) {
        (None, _) => tally.unread += 1,
        (Some(_), None) => tally.unmatched += 1,
        (Some(glass), Some(arrived)) => tally.samples.push(arrived as i64 - glass as i64),
    }
}

/// Nearest-rank percentile of sorted values.
pub(super) fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 95), Some(7));
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50), Some(50));
        assert_eq!(percentile(&hundred, 95), Some(95));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    }

    #[test]
    fn repeated_and_skipped_pictures_are_counted() {
        let mut s = Smoothness::default();
        for stamp in [1000, 1033, 1067, 1067, 1100, 1167, 1200, 1300] {
            s.note(stamp, 33.3);
        }
        assert_eq!(
            (s.repeated, s.skipped),
            (1, 3),
            "1067 twice; 1133 missing; 1233 and 1267 missing"
        );
    }

    #[test]
    fn the_first_tile_of_four_is_top_left() {
        let tile = first_grid_tile(1280, 720, 4).unwrap();
        assert!(tile.x < 640 && tile.y < 360, "{tile:?}");
        let alone = first_grid_tile(1280, 720, 1).unwrap();
        assert!(alone.w > 1200 && alone.x < 16, "{alone:?}");
    }
}
