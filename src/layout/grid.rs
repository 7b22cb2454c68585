//! Balanced grid: every tile the same size, chosen to make tiles as large as possible at a 16:9 aspect.

use super::{Canvas, Rect};

/// Aspect of the participants' video we plan tiles for; other aspects are letterboxed inside their tile.
const TILE_ASPECT: f64 = 16.0 / 9.0;

/// How tiles flow inside an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Balanced rows and columns.
    Grid,
    /// One row.
    Row,
    /// One column.
    Column,
}

/// Lays out `count` equal tiles on `canvas` with `gap` pixels between and around them.
/// Rows are filled left to right; a last row that is not full is centred.
pub fn grid(count: usize, canvas: Canvas, gap: i32) -> Vec<Rect> {
    flow_in(
        count,
        Rect {
            x: 0,
            y: 0,
            w: canvas.width,
            h: canvas.height,
        },
        gap,
        Flow::Grid,
    )
}

/// Lays out `count` equal 16:9 tiles inside `area`, centred, with `gap` pixels between and around them.
pub fn flow_in(count: usize, area: Rect, gap: i32, flow: Flow) -> Vec<Rect> {
    cells_in(count, area, gap, flow, true)
}

/// Like `flow_in`; with `keep_aspect` false the tiles fill their cells whatever their shape (for cropping).
pub fn cells_in(count: usize, area: Rect, gap: i32, flow: Flow, keep_aspect: bool) -> Vec<Rect> {
    if count == 0 {
        return Vec::new();
    }
    let canvas = Canvas {
        width: area.w,
        height: area.h,
    };
    let (cols, rows) = match flow {
        Flow::Grid => best_shape(count, canvas, gap),
        Flow::Row => (count, 1),
        Flow::Column => (1, count),
    };
    let cell_w = (canvas.width - gap * (cols as i32 + 1)) / cols as i32;
    let cell_h = (canvas.height - gap * (rows as i32 + 1)) / rows as i32;
    let (tile_w, tile_h) = if keep_aspect {
        fit_aspect(cell_w, cell_h)
    } else {
        (cell_w.max(2) & !1, cell_h.max(2) & !1)
    };
    // Centre the whole block of tiles in the area.
    let block_h = rows as i32 * tile_h + (rows as i32 - 1) * gap;
    let top = (canvas.height - block_h) / 2;

    (0..count)
        .map(|i| {
            let row = i / cols;
            let col = i % cols;
            let in_row = (count - row * cols).min(cols) as i32;
            let row_w = in_row * tile_w + (in_row - 1) * gap;
            let left = (canvas.width - row_w) / 2;
            Rect {
                x: area.x + left + col as i32 * (tile_w + gap),
                y: area.y + top + row as i32 * (tile_h + gap),
                w: tile_w,
                h: tile_h,
            }
        })
        .collect()
}

/// The column/row count whose 16:9 tiles are largest.
fn best_shape(count: usize, canvas: Canvas, gap: i32) -> (usize, usize) {
    (1..=count)
        .map(|cols| (cols, count.div_ceil(cols)))
        .max_by_key(|&(cols, rows)| {
            let cell_w = (canvas.width - gap * (cols as i32 + 1)) / cols as i32;
            let cell_h = (canvas.height - gap * (rows as i32 + 1)) / rows as i32;
            let (w, h) = fit_aspect(cell_w, cell_h);
            // Prefer fewer empty cells when areas tie.
            (i64::from(w) * i64::from(h), -((cols * rows) as i64))
        })
        .unwrap_or((1, 1))
}

/// The largest 16:9 size inside a cell, with even dimensions (I420 needs them).
fn fit_aspect(cell_w: i32, cell_h: i32) -> (i32, i32) {
    let cell_w = cell_w.max(2);
    let cell_h = cell_h.max(2);
    let (w, h) = if f64::from(cell_w) / f64::from(cell_h) > TILE_ASPECT {
        ((f64::from(cell_h) * TILE_ASPECT) as i32, cell_h)
    } else {
        (cell_w, (f64::from(cell_w) / TILE_ASPECT) as i32)
    };
    (w & !1, h & !1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD: Canvas = Canvas {
        width: 1280,
        height: 720,
    };

    #[test]
    fn zero_participants_no_tiles() {
        assert!(grid(0, HD, 8).is_empty());
    }

    #[test]
    fn one_participant_fills_canvas() {
        assert_eq!(
            grid(1, HD, 0),
            vec![Rect {
                x: 0,
                y: 0,
                w: 1280,
                h: 720
            }]
        );
    }

    #[test]
    fn shapes_for_common_counts() {
        let shape = |n| best_shape(n, HD, 8);
        assert_eq!(shape(2), (2, 1));
        assert_eq!(shape(3), (2, 2));
        assert_eq!(shape(4), (2, 2));
        assert_eq!(shape(5), (3, 2));
        assert_eq!(shape(9), (3, 3));
        assert_eq!(shape(16), (4, 4));
    }

    #[test]
    fn tiles_equal_inside_and_disjoint_for_1_to_25() {
        for canvas in [
            HD,
            Canvas {
                width: 1920,
                height: 1080,
            },
            Canvas {
                width: 720,
                height: 1280,
            },
        ] {
            for n in 1..=25 {
                let tiles = grid(n, canvas, 8);
                assert_eq!(tiles.len(), n);
                for (i, a) in tiles.iter().enumerate() {
                    assert!(a.inside(canvas.width, canvas.height), "{n}: {a:?} outside");
                    assert_eq!((a.w, a.h), (tiles[0].w, tiles[0].h), "{n}: unequal tiles");
                    assert!(a.w > 0 && a.h > 0);
                    let aspect = f64::from(a.w) / f64::from(a.h);
                    assert!((aspect - TILE_ASPECT).abs() < 0.02, "{n}: aspect {aspect}");
                    for b in &tiles[i + 1..] {
                        assert!(!a.overlaps(b), "{n}: {a:?} overlaps {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn last_row_is_centred() {
        let tiles = grid(3, HD, 8);
        let last = tiles[2];
        let centre = last.x + last.w / 2;
        assert!((centre - 640).abs() <= 1, "last tile centre {centre}");
    }
}
