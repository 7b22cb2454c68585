//! A lower third: a participant's name and title in a band over the bottom of their tile, drawn once per change
//! (of the tile's rectangle, the name or the overlay) into an RGBA picture. Pure pixels: no GStreamer.

use super::overlay_fonts::Fonts;
use super::overlay_render::Placed;
use super::overlay_text::{render_text, TextStyle};
use crate::layout::Rect;
use image::{imageops, Rgba, RgbaImage};

/// The band's height, as a fraction of the tile's: it grows and shrinks with the tile.
pub const BAND_HEIGHT: f64 = 0.22;
/// Around the two lines, as a fraction of the band's height.
const MARGIN: f64 = 0.1;
/// The name's share of the lines' height; the title takes the rest, in smaller type.
const NAME_SHARE: f64 = 0.55;

/// What a band says and looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub name: String,
    pub title: String,
    pub color: [u8; 4],
    pub background: [u8; 4],
}

/// The band over the bottom of `tile` (as the layout placed it), cut to the `canvas` (width, height); None when nothing of it would show.
pub fn render_band(band: &Band, tile: Rect, canvas: (u32, u32), font: &Fonts) -> Option<Placed> {
    let (cw, ch) = (i64::from(canvas.0), i64::from(canvas.1));
    let height = ((f64::from(tile.h) * BAND_HEIGHT).round() as i64).max(1);
    let (left, top) = (i64::from(tile.x).max(0), i64::from(tile.y) + i64::from(tile.h) - height);
    let right = (i64::from(tile.x) + i64::from(tile.w)).min(cw);
    let top = top.max(0);
    let bottom = (i64::from(tile.y) + i64::from(tile.h)).min(ch);
    if right <= left || bottom <= top {
        return None;
    }
    let (width, height) = ((right - left) as u32, (bottom - top) as u32);
    let mut picture = RgbaImage::from_pixel(width, height, Rgba(band.background));
    let margin = (f64::from(height) * MARGIN).round() as u32;
    let lines = height.saturating_sub(2 * margin);
    let name_h = (f64::from(lines) * NAME_SHARE).round() as u32;
    let text_w = width.saturating_sub(4 * margin);
    let line = |text: &str, h: u32| {
        let style = TextStyle {
            height: h,
            padding: 0,
            color: band.color,
            background: [0, 0, 0, 0],
            max_width: text_w,
        };
        render_text(font, text, &style)
    };
    let at_x = i64::from(2 * margin);
    imageops::overlay(&mut picture, &line(&band.name, name_h), at_x, i64::from(margin));
    let title_h = lines - name_h;
    if title_h > 0 {
        imageops::overlay(
            &mut picture,
            &line(&band.title, title_h),
            at_x,
            i64::from(margin + name_h),
        );
    }
    Some(Placed {
        x: left as u32,
        y: top as u32,
        picture,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn font() -> Fonts {
        crate::mix::overlay_fonts::for_tests()
    }

    fn band() -> Band {
        Band {
            name: "Ada".into(),
            title: "CEO".into(),
            color: [255, 255, 255, 255],
            background: [255, 255, 0, 255],
        }
    }

    #[test]
    fn the_band_spans_the_bottom_of_the_tile_with_text_on_its_left() {
        // A 320x200 tile at (100, 50): the band is 44 px high (0.22 of 200), from y 206 to 250.
        let tile = Rect {
            x: 100,
            y: 50,
            w: 320,
            h: 200,
        };
        let placed = render_band(&band(), tile, (640, 360), &font()).expect("drawn");
        assert_eq!((placed.x, placed.y), (100, 206));
        assert_eq!(placed.picture.dimensions(), (320, 44));
        for (x, y) in [(0, 0), (319, 0), (319, 43), (200, 20)] {
            assert_eq!(placed.picture.get_pixel(x, y).0, [255, 255, 0, 255], "band at {x},{y}");
        }
        let white = |x0: u32, x1: u32| {
            (x0..x1)
                .flat_map(|x| (0..44).map(move |y| (x, y)))
                .filter(|&(x, y)| placed.picture.get_pixel(x, y).0[2] > 200)
                .count()
        };
        assert!(white(0, 80) > 40, "name and title on the left: {}", white(0, 80));
        assert_eq!(white(120, 320), 0, "nothing but band on the right");
    }

    #[test]
    fn a_tile_off_the_canvas_is_cut_and_one_wholly_off_is_not_drawn() {
        let wide = Rect {
            x: 500,
            y: 0,
            w: 300,
            h: 100,
        };
        let placed = render_band(&band(), wide, (640, 360), &font()).expect("drawn");
        assert_eq!((placed.x, placed.y, placed.picture.width()), (500, 78, 140));
        let off = Rect {
            x: 700,
            y: 0,
            w: 100,
            h: 100,
        };
        assert_eq!(render_band(&band(), off, (640, 360), &font()), None);
    }
}
