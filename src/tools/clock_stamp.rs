//! Clock stamps for measuring glass-to-ingest latency: the wall clock (ms since the Unix epoch) painted into a
//! picture as a grid of black/white luma blocks, read back after the picture was scaled into a tile, mixed and
//! encoded. Only the luma plane carries the stamp, so it survives any YUV conversion along the way.
//!
//! Layout, in blocks of `BLOCK` source pixels from (`MARGIN`, `MARGIN`): row 0 a fixed guard pattern (it also
//! gives the black and white levels to threshold against), rows 1-3 the 48-bit time, most significant bit first,
//! row 4 a CRC-16 of the time. A block too close to the threshold, a guard or a CRC that does not match makes the
//! read fail rather than report a wrong time.

use crate::layout::Rect;
use crate::wall_clock::now_ms;
use gst::prelude::*;

/// Side of one block in source pixels: 16 px stays ~5 px at a third of the size, several times the blur an
/// encoder at a few hundred kbps puts on a black/white edge.
pub const BLOCK: usize = 16;
/// Distance from the picture's top-left corner, so the first blocks stay clear of the tile's edge.
pub const MARGIN: usize = 16;
const COLS: usize = 16;
const ROWS: usize = 5;
const GUARD: u16 = 0b1111_0000_1100_1010;
const TIME_BITS: usize = 48;
const BLACK: u8 = 16;
const WHITE: u8 = 235;
const NEUTRAL: u8 = 128;
/// Least white-minus-black level difference read as a stamp (of 219 painted).
const MIN_CONTRAST: f64 = 80.0;
/// A block whose level is within this fraction of the contrast from the threshold is unreadable.
const AMBIGUOUS: f64 = 0.15;

/// Width and height of the stamped area in source pixels (including the margin).
pub const fn extent() -> (usize, usize) {
    (MARGIN + COLS * BLOCK, MARGIN + ROWS * BLOCK)
}

/// CRC-16/CCITT-FALSE of the time's six bytes.
fn crc16(ms: u64) -> u16 {
    let mut crc: u16 = 0xffff;
    for byte in &ms.to_be_bytes()[2..] {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Writes the low `out.len()` bits of `value` into `out`, most significant first.
fn put(out: &mut [bool], value: u64) {
    let n = out.len();
    for (i, bit) in out.iter_mut().enumerate() {
        *bit = (value >> (n - 1 - i)) & 1 == 1;
    }
}

/// The bit of every block, row by row.
fn bits(ms: u64) -> [bool; COLS * ROWS] {
    let mut out = [false; COLS * ROWS];
    let time = ms & ((1 << TIME_BITS) - 1);
    let (guard, rest) = out.split_at_mut(COLS);
    let (time_bits, crc_bits) = rest.split_at_mut(TIME_BITS);
    put(guard, GUARD.into());
    put(time_bits, time);
    put(crc_bits, crc16(time).into());
    out
}

/// Paints `ms` into a luma plane of `width` x `height`; false (nothing painted) when the picture is too small.
pub fn stamp(plane: &mut [u8], stride: usize, width: usize, height: usize, ms: u64) -> bool {
    let (w, h) = extent();
    if width < w || height < h || plane.len() < stride * (h - 1) + w {
        return false;
    }
    for (i, bit) in bits(ms).into_iter().enumerate() {
        let (x0, y0) = (MARGIN + i % COLS * BLOCK, MARGIN + i / COLS * BLOCK);
        for y in y0..y0 + BLOCK {
            plane[y * stride + x0..y * stride + x0 + BLOCK].fill(if bit { WHITE } else { BLACK });
        }
    }
    true
}

/// Stamps a tightly packed I420 frame (GStreamer's default layout) and makes the stamp's chroma neutral, so
/// the blocks are grey levels rather than tinted by the picture under them.
pub fn stamp_i420(frame: &mut [u8], width: usize, height: usize, ms: u64) -> bool {
    let y_stride = width.next_multiple_of(4);
    let c_stride = width.div_ceil(2).next_multiple_of(4);
    let y_size = y_stride * height.next_multiple_of(2);
    let c_size = c_stride * height.div_ceil(2);
    if frame.len() < y_size + 2 * c_size || !stamp(&mut frame[..y_size], y_stride, width, height, ms) {
        return false;
    }
    let (w, h) = extent();
    for plane in [y_size, y_size + c_size] {
        for y in 0..h / 2 {
            frame[plane + y * c_stride..plane + y * c_stride + w / 2].fill(NEUTRAL);
        }
    }
    true
}

/// Reads a stamp from a luma plane where a `source` (width, height) picture was scaled into `tile`, keeping
/// its aspect ratio and centred (as the compositor's keep-aspect-ratio does). None when it does not read.
pub fn read(plane: &[u8], stride: usize, tile: Rect, source: (usize, usize)) -> Option<u64> {
    let (sw, sh) = (source.0 as f64, source.1 as f64);
    let scale = (f64::from(tile.w) / sw).min(f64::from(tile.h) / sh);
    let left = f64::from(tile.x) + (f64::from(tile.w) - sw * scale) / 2.0;
    let top = f64::from(tile.y) + (f64::from(tile.h) - sh * scale) / 2.0;
    let rows = plane.len() / stride.max(1);
    // Mean of the middle half of each block: the edges are where scaling and the encoder blur it.
    let level = |i: usize| -> Option<f64> {
        let (bx, by) = ((MARGIN + i % COLS * BLOCK) as f64, (MARGIN + i / COLS * BLOCK) as f64);
        let quarter = BLOCK as f64 / 4.0;
        let x0 = (left + (bx + quarter) * scale).round() as usize;
        let y0 = (top + (by + quarter) * scale).round() as usize;
        let x1 = ((left + (bx + 3.0 * quarter) * scale).round() as usize).max(x0 + 1);
        let y1 = ((top + (by + 3.0 * quarter) * scale).round() as usize).max(y0 + 1);
        if x1 > stride || y1 > rows {
            return None;
        }
        let sum: u64 = (y0..y1)
            .flat_map(|y| &plane[y * stride + x0..y * stride + x1])
            .map(|&v| u64::from(v))
            .sum();
        Some(sum as f64 / ((x1 - x0) * (y1 - y0)) as f64)
    };
    let levels: Vec<f64> = (0..COLS * ROWS).map(level).collect::<Option<_>>()?;
    let guard = &bits(0)[..COLS];
    let mean = |white: bool| {
        let picked: Vec<f64> = (0..COLS).filter(|&i| guard[i] == white).map(|i| levels[i]).collect();
        picked.iter().sum::<f64>() / picked.len() as f64
    };
    let (black, white) = (mean(false), mean(true));
    let contrast = white - black;
    if contrast < MIN_CONTRAST {
        return None;
    }
    let threshold = (white + black) / 2.0;
    let mut read_bits = Vec::with_capacity(levels.len());
    for level in levels {
        if (level - threshold).abs() < AMBIGUOUS * contrast {
            return None;
        }
        read_bits.push(level > threshold);
    }
    let number = |bits: &[bool]| bits.iter().fold(0u64, |n, &b| (n << 1) | u64::from(b));
    let time = number(&read_bits[COLS..COLS + TIME_BITS]);
    let expected = bits(time);
    (read_bits[..] == expected[..]).then_some(time)
}

/// Length of `publish --replay`'s clip: its stamps are the send time modulo this, never a plausible wall clock.
pub const LOOPED_PERIOD_MS: u64 = 10_000;

/// A stamp as a wall clock: a looped one (below [`LOOPED_PERIOD_MS`]) becomes the latest instant at or before
/// `reference_ms` (when the frame was seen) that it is congruent to; any other stamp is one already. Right as
/// long as the frame took less than the period to arrive.
pub fn resolve_looped(stamp: u64, reference_ms: u64) -> u64 {
    if stamp >= LOOPED_PERIOD_MS || reference_ms < LOOPED_PERIOD_MS {
        return stamp;
    }
    reference_ms - (reference_ms - stamp) % LOOPED_PERIOD_MS
}

/// Stamps every I420 `width` x `height` frame leaving `pad` with the wall clock at that moment (the "glass").
pub fn stamp_video(pad: &gst::Pad, width: usize, height: usize) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let ms = now_ms();
        if let Ok(mut map) = buffer.make_mut().map_writable() {
            stamp_i420(map.as_mut_slice(), width, height, ms);
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests;
