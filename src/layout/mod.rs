//! Layout maths: participants + canvas -> tile rectangles. Pure code, no GStreamer.

pub mod engine;
mod grid;
pub mod label_style;
pub mod order;
pub mod preview;
pub mod template;

pub use grid::{cells_in, flow_in, grid, Flow};

/// Pixels between tiles and around them.
pub const TILE_GAP: i32 = 8;

/// A tile on the output canvas, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub fn center(&self) -> (i32, i32) {
        (self.x + self.w / 2, self.y + self.h / 2)
    }

    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }

    pub fn inside(&self, width: i32, height: i32) -> bool {
        self.x >= 0 && self.y >= 0 && self.x + self.w <= width && self.y + self.h <= height
    }
}

/// Canvas sides a broadcast or template may ask for, in pixels (each also even: I420 halves them).
pub const CANVAS_SIDE: std::ops::RangeInclusive<u32> = 16..=3840;

/// The output canvas size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canvas {
    pub width: i32,
    pub height: i32,
}
