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

/// A name label expected over a tile: its box's top-left corner and height, worked out by hand from the label
/// style (`[label]` of the template; the defaults: 0.08 of the tile's height, half that from the tile's left and
/// bottom edges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelBox {
    pub x: i32,
    pub y: i32,
    pub h: i32,
}

/// Ok when the label box over `tile` starts at `expected.y` and is `expected.h` rows high (each within 2 px:
/// the encode blurs edges). Read along the 8 columns just inside the box's left edge, from the tile's middle
/// down: a row belongs to the label where most of them are not the tile's colour (the box darkens it, the name
/// is white); the label is the first run of such rows (the tile's last rows, blurred into what is around it, are
/// not looked at).
pub fn label_shown(frame: &Frame, tile: &Tile, expected: LabelBox) -> Result<(), String> {
    let columns = expected.x + 1..expected.x + 9;
    let in_label = |y: i32| {
        let tile_coloured = columns
            .clone()
            .filter(|&x| close_to(frame.pixel(x, y), tile.colour, TOLERANCE))
            .count();
        tile_coloured < 4
    };
    let mut rows = tile.area.y + tile.area.h / 2..tile.area.y + tile.area.h - INSET / 2;
    let Some(top) = rows.by_ref().find(|&y| in_label(y)) else {
        return Err(format!(
            "{}: no label over the tile's lower half at x {}",
            tile.name, expected.x
        ));
    };
    let height = 1 + rows.take_while(|&y| in_label(y)).count() as i32;
    if top.abs_diff(expected.y) > 2 || height.abs_diff(expected.h) > 2 {
        return Err(format!(
            "{}: label rows from {top}, {height} high; expected from {} and {} high",
            tile.name, expected.y, expected.h
        ));
    }
    Ok(())
}
