//! A line of text drawn once into an RGBA picture with `ab_glyph`: outlines from the shipped font, coverage
//! blended over the box colour. A character the font lacks (CJK, emoji) draws the font's missing-glyph box.

use ab_glyph::{point, Font, FontArc, Glyph, PxScale, ScaleFont};
use image::{Rgba, RgbaImage};

/// What a text box looks like, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextStyle {
    /// The box's height; the glyphs take what the padding leaves.
    pub height: u32,
    pub padding: u32,
    pub color: [u8; 4],
    pub background: [u8; 4],
    /// The box never grows wider than this (the canvas' right edge); the text is cut there.
    pub max_width: u32,
}

/// Draws `text` on one line in a box `style.height` high, as wide as the text and its padding.
pub fn render_text(font: &FontArc, text: &str, style: &TextStyle) -> RgbaImage {
    let size = style.height.saturating_sub(2 * style.padding).max(1) as f32;
    let scaled = font.as_scaled(PxScale::from(size));
    // The font's ascent and descent span `size`: the baseline sits `ascent` below the top of the text area.
    let baseline = style.padding as f32 + scaled.ascent();
    let (glyphs, caret) = lay_out(&scaled, text, style.padding as f32, baseline, style.max_width as f32);
    let width = ((caret + style.padding as f32).ceil() as u32).clamp(1, style.max_width.max(1));
    let mut picture = RgbaImage::from_pixel(width, style.height.max(1), Rgba(style.background));
    for glyph in glyphs {
        let Some(outline) = font.outline_glyph(glyph) else {
            continue; // a space, or a glyph with no outline
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let x = bounds.min.x as i64 + i64::from(gx);
            let y = bounds.min.y as i64 + i64::from(gy);
            if x < 0 || y < 0 || x >= i64::from(picture.width()) || y >= i64::from(picture.height()) {
                return;
            }
            let pixel = picture.get_pixel_mut(x as u32, y as u32);
            *pixel = Rgba(over(style.color, coverage, pixel.0));
        });
    }
    picture
}

/// The glyphs of `text` on one line from `left`, and where the caret ends; stops at the first glyph that would
/// start at or past `max_width` (what follows is cut anyway, and 200 characters could be laid out for nothing).
fn lay_out<F: Font>(
    scaled: &ab_glyph::PxScaleFont<F>,
    text: &str,
    left: f32,
    baseline: f32,
    max_width: f32,
) -> (Vec<Glyph>, f32) {
    let mut caret = left;
    let mut glyphs = Vec::new();
    let mut previous = None;
    for c in text.chars().filter(|c| !c.is_control()) {
        let id = scaled.glyph_id(c);
        if let Some(prev) = previous {
            caret += scaled.kern(prev, id);
        }
        if caret >= max_width {
            break;
        }
        glyphs.push(id.with_scale_and_position(scaled.scale, point(caret, baseline)));
        caret += scaled.h_advance(id);
        previous = Some(id);
    }
    (glyphs, caret)
}

/// `src` at `coverage` over `dst`, both with straight (not premultiplied) alpha.
pub fn over(src: [u8; 4], coverage: f32, dst: [u8; 4]) -> [u8; 4] {
    let sa = f32::from(src[3]) / 255.0 * coverage.clamp(0.0, 1.0);
    let da = f32::from(dst[3]) / 255.0;
    let oa = sa + da * (1.0 - sa);
    if oa <= 0.0 {
        return [0, 0, 0, 0];
    }
    let channel = |i: usize| {
        let c = (f32::from(src[i]) * sa + f32::from(dst[i]) * da * (1.0 - sa)) / oa;
        c.round().clamp(0.0, 255.0) as u8
    };
    [channel(0), channel(1), channel(2), (oa * 255.0).round() as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_past_the_max_width_are_not_laid_out() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/DejaVuSans.ttf");
        let font = FontArc::try_from_vec(std::fs::read(path).unwrap()).unwrap();
        let scaled = font.as_scaled(PxScale::from(40.0));
        let text = "W".repeat(200);
        let (all, _) = lay_out(&scaled, &text, 0.0, 30.0, f32::MAX);
        assert_eq!(all.len(), 200);
        // A "W" at 40 px is about 40 px wide: 300 px hold 7 or 8 of them, 200 never.
        let (cut, caret) = lay_out(&scaled, &text, 0.0, 30.0, 300.0);
        assert!((6..=9).contains(&cut.len()), "{}", cut.len());
        assert!(caret >= 300.0, "the box still reaches the edge: {caret}");
    }

    #[test]
    fn full_coverage_replaces_and_none_keeps() {
        assert_eq!(over([255, 255, 255, 255], 1.0, [0, 0, 255, 255]), [255, 255, 255, 255]);
        assert_eq!(over([255, 255, 255, 255], 0.0, [0, 0, 255, 255]), [0, 0, 255, 255]);
        assert_eq!(over([255, 0, 0, 255], 0.5, [0, 0, 0, 0]), [255, 0, 0, 128]);
    }
}
