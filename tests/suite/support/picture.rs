//! What the output picture should show where, written out by hand in each test (rectangles worked out from the
//! template files with pencil and paper, never by the product's layout engine), and the check of a decoded frame
//! against it.

use super::media::{close_to, Frame};

/// Per-channel tolerance for a flat colour after the x264 encode and the decode back to RGB.
pub const TOLERANCE: u8 = 60;
/// How far inside an area its corner probes sit: scaling and 4:2:0 chroma blur a tile's outermost pixels.
const INSET: i32 = 6;

/// A rectangle of the output picture, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Area {
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Self {
        Self { x, y, w, h }
    }

    fn contains(&self, (x, y): (i32, i32)) -> bool {
        x >= self.x - INSET && x < self.x + self.w + INSET && y >= self.y - INSET && y < self.y + self.h + INSET
    }

    /// Where the area's colour is looked at: the middle, three quarter points and three corners (just inside the
    /// edges, so a rectangle shifted or shrunk by more than a few pixels fails). The lower left quarter is left
    /// out: the participant's name label is drawn there.
    fn probes(&self) -> Vec<(i32, i32)> {
        let (l, t, r, b) = (self.x, self.y, self.x + self.w - 1, self.y + self.h - 1);
        let at = |fx: i32, fy: i32| (self.x + self.w * fx / 4, self.y + self.h * fy / 4);
        vec![
            at(2, 2),
            at(1, 1),
            at(3, 1),
            at(3, 3),
            (l + INSET, t + INSET),
            (r - INSET, t + INSET),
            (r - INSET, b - INSET),
        ]
    }
}

/// A pixel and the colour it must show.
pub type ColourAt = ((i32, i32), [u8; 3]);

/// One participant's colour expected over an area.
#[derive(Debug, Clone)]
pub struct Tile {
    pub name: String,
    pub colour: [u8; 3],
    pub area: Area,
    /// Drawn over tiles with a lower layer (a picture-in-picture inset), whose probes under it are skipped.
    pub layer: u32,
}

impl Tile {
    pub fn new(name: &str, colour: [u8; 3], area: Area) -> Self {
        Self {
            name: name.to_string(),
            colour,
            area,
            layer: 0,
        }
    }

    /// The same tile drawn over those of layer 0.
    pub fn on_top(self) -> Self {
        Self { layer: 1, ..self }
    }
}

/// Ok when every tile shows its colour (where no tile of a higher layer covers it), and every `points` pixel
/// shows the colour given with it; else every mismatch, named.
pub fn check(frame: &Frame, tiles: &[Tile], points: &[ColourAt]) -> Result<(), String> {
    let mut wrong = Vec::new();
    for tile in tiles {
        let covered = |p: (i32, i32)| {
            tiles
                .iter()
                .any(|above| above.layer > tile.layer && above.area.contains(p))
        };
        for (x, y) in tile.area.probes().into_iter().filter(|&p| !covered(p)) {
            let pixel = frame.pixel(x, y);
            if !close_to(pixel, tile.colour, TOLERANCE) {
                wrong.push(format!("{} {:?} at {x},{y}: {pixel:?}", tile.name, tile.colour));
            }
        }
    }
    for &((x, y), colour) in points {
        let pixel = frame.pixel(x, y);
        if !close_to(pixel, colour, TOLERANCE) {
            wrong.push(format!("{colour:?} at {x},{y}: {pixel:?}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// `points` each paired with `colour`.
pub fn all(points: &[(i32, i32)], colour: [u8; 3]) -> Vec<ColourAt> {
    points.iter().map(|&p| (p, colour)).collect()
}
