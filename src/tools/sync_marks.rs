//! Sync marks for measuring audio/video offset end to end: once a second one frame is white and a beep starts
//! at that frame's own timestamp; the rest is black and silent. Reading the output back, the time from each
//! flash to its beep is the A/V offset the chain added.
//!
//! The flash is the first frame at or after each second, so it starts up to a frame after the second; the beep
//! starts at that same instant, computed from the frame grid (its origin is the first frame's timestamp), not at
//! the second itself, which would put a frame-grid-dependent error of up to a frame into every measurement.

use gst::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Length of each beep.
pub const BEEP: gst::ClockTime = gst::ClockTime::from_mseconds(100);
const SECOND_NS: u64 = 1_000_000_000;
const UNKNOWN: u64 = u64::MAX;

/// The timestamp of the first video frame, shared by the two probes; no beep until it is known.
#[derive(Clone)]
pub struct FrameGrid {
    origin_ns: Arc<AtomicU64>,
    fps: u64,
}

impl FrameGrid {
    pub fn new(fps: u64) -> Self {
        Self {
            origin_ns: Arc::new(AtomicU64::new(UNKNOWN)),
            fps,
        }
    }

    /// The instant of the first frame at or after the start of the second that `t_ns` is in.
    fn flash_of_second(&self, t_ns: u64) -> Option<u64> {
        let origin = self.origin_ns.load(Ordering::Relaxed);
        if origin == UNKNOWN {
            return None;
        }
        let second = t_ns / SECOND_NS * SECOND_NS;
        // Frame n is at origin + floor(n * 1e9 / fps), as videotestsrc stamps them.
        let since = u128::from(second.saturating_sub(origin));
        let n = (since * u128::from(self.fps)).div_ceil(u128::from(SECOND_NS));
        Some(origin + (n * u128::from(SECOND_NS) / u128::from(self.fps)) as u64)
    }
}

/// Paints I420 frames leaving `pad`: white for the first frame of every second, else black.
pub fn mark_video(pad: &gst::Pad, grid: FrameGrid) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let pts = pts.nseconds();
        let _ = grid
            .origin_ns
            .compare_exchange(UNKNOWN, pts, Ordering::Relaxed, Ordering::Relaxed);
        let white = grid.flash_of_second(pts).is_some_and(|flash| flash.abs_diff(pts) <= 1);
        let buffer = buffer.make_mut();
        if let Ok(mut map) = buffer.map_writable() {
            let data = map.as_mut_slice();
            // I420: luma is the first two thirds, chroma neutral for both black and white.
            let luma = data.len() * 2 / 3;
            data[..luma].fill(if white { 235 } else { 16 });
            data[luma..].fill(128);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Silences S16 mono audio leaving `pad` except for `BEEP` from each flash on.
pub fn mark_audio(pad: &gst::Pad, rate: u64, grid: FrameGrid) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let buffer = buffer.make_mut();
        if let Ok(mut map) = buffer.map_writable() {
            for (i, sample) in map.as_mut_slice().chunks_exact_mut(2).enumerate() {
                let t = pts.nseconds() + i as u64 * SECOND_NS / rate;
                let beeping = grid
                    .flash_of_second(t)
                    .is_some_and(|flash| t >= flash && t - flash < BEEP.nseconds());
                if !beeping {
                    sample.fill(0);
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flash_is_the_first_frame_of_each_second() {
        let grid = FrameGrid::new(30);
        assert_eq!(grid.flash_of_second(5_000_000_000), None, "no frame seen yet");
        // Frames at 0.010 s + n/30 s: the first frame of second 2 is n = 60, at 2.010 s.
        grid.origin_ns.store(10_000_000, Ordering::Relaxed);
        assert_eq!(grid.flash_of_second(2_000_000_000), Some(2_010_000_000));
        assert_eq!(grid.flash_of_second(2_500_000_000), Some(2_010_000_000));
        // Origin 0.020 s: second 1's first frame is n = 30 at 1.020 s... and n = 29 is at 0.98667 s.
        grid.origin_ns.store(20_000_000, Ordering::Relaxed);
        assert_eq!(grid.flash_of_second(1_000_000_000), Some(1_020_000_000));
        // Origin 0.030 s: n = 30 at 1.030 s, n = 29 at 0.99667 s: the flash is n = 30.
        grid.origin_ns.store(30_000_000, Ordering::Relaxed);
        assert_eq!(grid.flash_of_second(1_000_000_000), Some(1_030_000_000));
        // A frame exactly on the second is the flash.
        grid.origin_ns.store(0, Ordering::Relaxed);
        assert_eq!(grid.flash_of_second(3_000_000_000), Some(3_000_000_000));
    }
}
