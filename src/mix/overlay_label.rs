//! A participant's name label, drawn once per change (of the tile's rectangle, the name or the style) into an
//! RGBA picture placed over a corner of their tile. Its height is a fraction of the tile's: large on a
//! full-canvas tile, small on one of nine, never below a readable minimum. Pure pixels: no GStreamer.

use super::overlay_fonts::Fonts;
use super::overlay_render::Placed;
use super::overlay_text::{render_text, TextStyle};
use crate::layout::label_style::{LabelPosition, LabelStyle};
use crate::layout::Rect;

/// No label is drawn smaller than this many pixels high (unless the tile itself is smaller).
pub const MIN_HEIGHT_PX: u32 = 12;
/// Between the label and the tile's edges, as a fraction of the label's height.
pub const MARGIN: f64 = 0.5;
/// Around the name inside the box, as a fraction of its height.
pub const PADDING: f64 = 0.15;

/// The label box's height on a tile `tile_h` pixels high.
pub fn label_height(style: &LabelStyle, tile_h: u32) -> u32 {
    let wanted = (style.height * f64::from(tile_h)).round() as u32;
    wanted.max(MIN_HEIGHT_PX).min(tile_h)
}

/// The label `name` in `style` over the corner of `tile` the style names, cut to the `canvas` (width, height);
/// None when nothing of it would show.
pub fn render_label(name: &str, style: &LabelStyle, tile: Rect, canvas: (u32, u32), font: &Fonts) -> Option<Placed> {
    if tile.w <= 0 || tile.h <= 0 || name.is_empty() {
        return None;
    }
    let height = label_height(style, tile.h as u32);
    let margin = (f64::from(height) * MARGIN).round() as i64;
    let (tx, ty, tw, th) = (
        i64::from(tile.x),
        i64::from(tile.y),
        i64::from(tile.w),
        i64::from(tile.h),
    );
    let max_width = (tw - 2 * margin).max(1);
    let style_px = TextStyle {
        height,
        padding: (f64::from(height) * PADDING).round() as u32,
        color: style.color,
        background: style.background,
        max_width: max_width as u32,
    };
    let picture = render_text(font, name, &style_px);
    let (w, h) = (i64::from(picture.width()), i64::from(picture.height()));
    let left = match style.position {
        LabelPosition::BottomLeft | LabelPosition::TopLeft => tx + margin,
        LabelPosition::BottomRight | LabelPosition::TopRight => tx + tw - margin - w,
    };
    let top = match style.position {
        LabelPosition::TopLeft | LabelPosition::TopRight => ty + margin,
        LabelPosition::BottomLeft | LabelPosition::BottomRight => ty + th - margin - h,
    };
    // Cut to the canvas (a tile reaching past it keeps what shows).
    let (cw, ch) = (i64::from(canvas.0), i64::from(canvas.1));
    let (x0, y0) = (left.max(0), top.max(0));
    let (x1, y1) = ((left + w).min(cw), (top + h).min(ch));
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let picture = if (x0, y0, x1, y1) == (left, top, left + w, top + h) {
        picture
    } else {
        image::imageops::crop_imm(
            &picture,
            (x0 - left) as u32,
            (y0 - top) as u32,
            (x1 - x0) as u32,
            (y1 - y0) as u32,
        )
        .to_image()
    };
    Some(Placed {
        x: x0 as u32,
        y: y0 as u32,
        picture,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::Font;

    fn font() -> Fonts {
        crate::mix::overlay_fonts::for_tests()
    }

    const CANVAS: (u32, u32) = (1920, 1080);

    fn tile(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x, y, w, h }
    }

    fn style(position: LabelPosition) -> LabelStyle {
        LabelStyle {
            height: 0.1,
            color: [255, 255, 255, 255],
            background: [0, 0, 255, 255],
            position,
        }
    }

    #[test]
    fn the_box_is_a_fraction_of_the_tile_in_its_bottom_left_corner() {
        // A full 1080p tile: 108 px high, 54 px from the left and bottom edges (y 1080 - 54 - 108 = 918).
        let full = render_label(
            "Ada",
            &style(LabelPosition::BottomLeft),
            tile(0, 0, 1920, 1080),
            CANVAS,
            &font(),
        )
        .expect("drawn");
        assert_eq!((full.x, full.y, full.picture.height()), (54, 918, 108));
        // One of nine on that canvas, 640x360 at (640, 360): 36 px high, 18 px in: (658, 666).
        let ninth = render_label(
            "Ada",
            &style(LabelPosition::BottomLeft),
            tile(640, 360, 640, 360),
            CANVAS,
            &font(),
        )
        .expect("drawn");
        assert_eq!((ninth.x, ninth.y, ninth.picture.height()), (658, 666, 36));
        // The width follows the name: "Ada" is about twice as wide as high at any size.
        for placed in [&full, &ninth] {
            let (w, h) = placed.picture.dimensions();
            assert!(w > h && w < 4 * h, "{w}x{h}");
            assert_eq!(
                placed.picture.get_pixel(1, 1).0,
                [0, 0, 255, 255],
                "the box colour in its corner"
            );
            assert!(
                placed.picture.pixels().any(|p| p.0 == [255, 255, 255, 255]),
                "text pixels"
            );
        }
    }

    #[test]
    fn other_corners_and_the_minimum_height() {
        let t = tile(100, 50, 400, 200);
        let top_right = render_label("Bo", &style(LabelPosition::TopRight), t, CANVAS, &font()).unwrap();
        // 20 px high, 10 px in from the top and right edges.
        assert_eq!((top_right.y, top_right.picture.height()), (60, 20));
        assert_eq!(top_right.x + top_right.picture.width(), 100 + 400 - 10);
        // A tile 60 px high would get a 6 px label: raised to 12.
        let small = render_label(
            "Bo",
            &style(LabelPosition::TopLeft),
            tile(0, 0, 100, 60),
            CANVAS,
            &font(),
        )
        .unwrap();
        assert_eq!((small.x, small.y, small.picture.height()), (6, 6, MIN_HEIGHT_PX));
    }

    #[test]
    fn a_long_name_stops_inside_the_tile_and_a_tile_off_the_canvas_draws_nothing() {
        let long = "W".repeat(100);
        let placed = render_label(
            &long,
            &style(LabelPosition::BottomLeft),
            tile(0, 0, 400, 200),
            CANVAS,
            &font(),
        )
        .unwrap();
        assert_eq!(placed.picture.width(), 400 - 2 * 10);
        let off = tile(2000, 0, 100, 100);
        assert_eq!(
            render_label("Ada", &style(LabelPosition::BottomLeft), off, CANVAS, &font()),
            None
        );
    }

    #[test]
    fn a_right_to_left_name_starts_at_the_labels_right_end() {
        let fonts = font();
        // לאה (Leah): lamed, the first letter, is the one Hebrew letter that rises above the others. Drawn right
        // to left it is the box's rightmost letter: the rows above alef's and he's tops have ink only in its cell,
        // the last advance of lamed before the right padding. Logical order would put it at the left.
        let placed = render_label(
            "לאה",
            &style(LabelPosition::BottomLeft),
            tile(0, 0, 1920, 1080),
            CANVAS,
            &fonts,
        )
        .expect("drawn");
        let picture = &placed.picture;
        // Numbers from the font's tables (hhea, glyf, hmtx), scaled as ab_glyph scales: the box is 108 px high,
        // the padding 16 px, the glyphs 76 px from ascent to descent.
        let (padding, size) = (16.0, 76.0);
        let primary = &fonts.primary;
        let px_per_unit = size / primary.height_unscaled();
        let baseline = padding + primary.ascent_unscaled() * px_per_unit;
        let top = |c: char| {
            let outline = primary.outline(primary.glyph_id(c)).expect("an outline");
            // ab_glyph keeps the glyph box's top (yMax, font units, y up) as `bounds.min.y`.
            baseline - outline.bounds.min.y * px_per_unit
        };
        let (lamed_top, others_top) = (top('ל'), top('א').min(top('ה')));
        assert!(
            others_top - lamed_top > 8.0,
            "lamed rises {lamed_top} above {others_top}"
        );
        let rows = (lamed_top.ceil() as u32 + 1)..(others_top.floor() as u32 - 1);
        let lamed_width = primary.h_advance_unscaled(primary.glyph_id('ל')) * px_per_unit;
        let cell_left = (picture.width() as f32 - padding - lamed_width).floor() as u32;
        let background = style(LabelPosition::BottomLeft).background;
        let inked: Vec<u32> = picture
            .enumerate_pixels()
            .filter(|(_, y, p)| rows.contains(y) && p.0 != background)
            .map(|(x, _, _)| x)
            .collect();
        assert!(inked.len() > 20, "lamed's ascender is drawn: {} pixels", inked.len());
        assert!(
            inked.iter().all(|&x| x >= cell_left),
            "ink above the other letters left of lamed's cell ({cell_left}..): {:?}",
            inked.iter().min()
        );
    }
}
