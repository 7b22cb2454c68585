//! A line of text drawn once into an RGBA picture: put in visual order by the Unicode bidirectional algorithm
//! (Hebrew and Arabic right to left), shaped by `rustybuzz` (HarfBuzz's rules, so a combining accent lands on its
//! letter and Arabic letters join), outlines by `ab_glyph` from the shipped font or from the fallback font for the
//! characters it lacks (CJK), coverage blended over the box colour. Both fonts are drawn at the same pixels per
//! em on one baseline. A character neither font has (most emoji) draws the shipped font's missing-glyph box.

use super::overlay_fonts::{Face, Fonts};
use ab_glyph::{point, Font, Glyph, GlyphId, PxScale, ScaleFont};
use image::{Rgba, RgbaImage};
use std::ops::Range;
use unicode_bidi::BidiInfo;

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
pub fn render_text(fonts: &Fonts, text: &str, style: &TextStyle) -> RgbaImage {
    let size = style.height.saturating_sub(2 * style.padding).max(1) as f32;
    let scales = Scales::new(fonts, size);
    // The shipped font's ascent and descent span `size`: the baseline sits `ascent` below the top of the text
    // area, for the fallback's glyphs too.
    let baseline = style.padding as f32 + fonts.primary.as_scaled(scales.primary).ascent();
    let (glyphs, caret) = lay_out(
        fonts,
        &scales,
        text,
        style.padding as f32,
        baseline,
        style.max_width as f32,
    );
    let width = ((caret + style.padding as f32).ceil() as u32).clamp(1, style.max_width.max(1));
    let mut picture = RgbaImage::from_pixel(width, style.height.max(1), Rgba(style.background));
    for laid in glyphs {
        let Some(outline) = fonts.get(laid.face).outline_glyph(laid.glyph) else {
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

/// Each font's `PxScale` for one text size. ab_glyph's scale is a font's ascent-to-descent height, which differs
/// from font to font: the fallback gets the scale that gives it the shipped font's pixels per em, so an
/// ideograph stands as tall beside Latin as the fonts' designers meant.
struct Scales {
    primary: PxScale,
    fallback: PxScale,
}

impl Scales {
    fn new(fonts: &Fonts, size: f32) -> Self {
        let primary = PxScale::from(size);
        let fallback = match (&fonts.fallback, fonts.primary.units_per_em()) {
            (Some(fallback), Some(primary_upem)) => {
                let px_per_em = size * primary_upem / fonts.primary.height_unscaled();
                fallback
                    .units_per_em()
                    .map(|upem| PxScale::from(px_per_em * fallback.height_unscaled() / upem))
                    .unwrap_or(primary)
            }
            _ => primary,
        };
        Self { primary, fallback }
    }

    fn of(&self, face: Face) -> PxScale {
        match face {
            Face::Primary => self.primary,
            Face::Fallback => self.fallback,
        }
    }
}

/// A glyph on the line and the font it is drawn from.
struct Laid {
    face: Face,
    glyph: Glyph,
}

/// The glyphs of `text` on one line from `left`, left to right, and where the caret ends. The Unicode
/// bidirectional algorithm (`unicode-bidi`, UAX #9) cuts the text into runs of one direction in visual order (a
/// Hebrew name in a Latin line is reversed, digits in it are not); each run of characters one font draws is
/// shaped by rustybuzz in its run's direction (HarfBuzz's rules: glyphs of a right-to-left run come out left to
/// right, mirrored brackets, a base letter and its combining marks become the precomposed glyph or a mark on
/// the letter's anchor, kerning, ligatures, Arabic joining forms). A line that starts left to right stops at the
/// first glyph that would start at or past `max_width` (what follows is cut anyway); one that starts right to
/// left is laid out whole and, when too wide, moved left so that its start (its right end) shows and its end
/// is cut at the left edge.
fn lay_out(fonts: &Fonts, scales: &Scales, text: &str, left: f32, baseline: f32, max_width: f32) -> (Vec<Laid>, f32) {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    let bidi = BidiInfo::new(&text, None);
    let right_to_left = bidi.paragraphs.first().is_some_and(|p| p.level.is_rtl());
    let mut caret = left;
    let mut glyphs = Vec::new();
    for (range, rtl) in visual_runs(&bidi) {
        let mut pieces = runs(fonts, &text[range]);
        if rtl {
            // The font runs of a right-to-left run are laid out from its logical end.
            pieces.reverse();
        }
        for (face, piece) in pieces {
            let font = fonts.get(face);
            let Some(shaper) = rustybuzz::Face::from_slice(font.as_slice(), 0) else {
                continue; // ab_glyph read the same bytes: not expected
            };
            let scale = scales.of(face);
            // rustybuzz positions in font units; ab_glyph's scale is the font's ascent-to-descent height in pixels.
            let px_per_unit = scale.y / font.height_unscaled();
            let mut buffer = rustybuzz::UnicodeBuffer::new();
            buffer.push_str(&piece);
            buffer.set_direction(if rtl {
                rustybuzz::Direction::RightToLeft
            } else {
                rustybuzz::Direction::LeftToRight
            });
            buffer.guess_segment_properties();
            let shaped = rustybuzz::shape(&shaper, &[], buffer);
            for (info, position) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
                if !right_to_left && caret >= max_width {
                    return (glyphs, caret);
                }
                let at = point(
                    caret + position.x_offset as f32 * px_per_unit,
                    baseline - position.y_offset as f32 * px_per_unit,
                );
                glyphs.push(Laid {
                    face,
                    glyph: GlyphId(info.glyph_id as u16).with_scale_and_position(scale, at),
                });
                caret += position.x_advance as f32 * px_per_unit;
            }
        }
    }
    // A right-to-left line too wide: its right end `left` inside `max_width`, as its left end would be.
    let overflow = caret + left - max_width;
    if right_to_left && overflow > 0.0 {
        for laid in &mut glyphs {
            laid.glyph.position.x -= overflow;
        }
        caret -= overflow;
    }
    (glyphs, caret)
}

/// The byte ranges of `bidi`'s text in visual order (left to right), each of one direction (true: right to
/// left), paragraph after paragraph (a U+2029 separator; a label is one line).
fn visual_runs(bidi: &BidiInfo) -> Vec<(Range<usize>, bool)> {
    let mut out = Vec::new();
    for paragraph in &bidi.paragraphs {
        let (levels, runs) = bidi.visual_runs(paragraph, paragraph.range.clone());
        out.extend(runs.into_iter().map(|run| {
            let rtl = levels[run.start].is_rtl();
            (run, rtl)
        }));
    }
    out
}

/// `text` cut into runs that one font draws, in logical order. A combining mark stays in its letter's run when
/// that font has it, so that it is shaped onto the letter.
fn runs(fonts: &Fonts, text: &str) -> Vec<(Face, String)> {
    let mut runs: Vec<(Face, String)> = Vec::new();
    for c in text.chars() {
        let face = fonts.face_for(c);
        match runs.last_mut() {
            Some((last, run)) if *last == face || (is_combining(c) && fonts.get(*last).glyph_id(c).0 != 0) => {
                run.push(c)
            }
            _ => runs.push((face, c.to_string())),
        }
    }
    runs
}

/// The blocks of combining marks (diacritics placed on the letter before them).
fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
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
    use crate::mix::overlay_fonts::for_tests;

    // Expectations below come from the font files' tables, not from this module. DejaVu Sans: 2048 units per
    // em, ascent 1901 and descent 483 (hhea): a 40 px line spans 2384 units, 0.016779 px a unit, 34.36 px per em,
    // the baseline 31.9 px down. Droid Sans Fallback: 256 units per em, an ideograph one em wide.
    const LINE: u32 = 40;
    const BLACK: [u8; 4] = [0, 0, 0, 255];

    fn style() -> TextStyle {
        TextStyle {
            height: LINE,
            padding: 0,
            color: [255, 255, 255, 255],
            background: BLACK,
            max_width: 1000,
        }
    }

    fn fonts_with_fallback() -> Fonts {
        let fonts = for_tests();
        assert!(
            fonts.fallback.is_some(),
            "no CJK fallback font: deploy/install-deps.sh installs fonts-droid-fallback"
        );
        fonts
    }

    /// Pixels that are not the background in columns `xs` and rows `ys`.
    fn ink(picture: &RgbaImage, xs: Range<u32>, ys: Range<u32>) -> usize {
        xs.flat_map(|x| ys.clone().map(move |y| (x, y)))
            .filter(|&(x, y)| x < picture.width() && y < picture.height() && picture.get_pixel(x, y).0 != BLACK)
            .count()
    }

    #[test]
    fn cjk_is_drawn_from_the_fallback_one_em_per_ideograph_on_the_shared_baseline() {
        let fonts = fonts_with_fallback();
        let kanji = render_text(&fonts, "漢字", &style());
        // Two ems of the shipped font (68.7 px); at the fallback's own 40 px height an em would be 30.6 px.
        assert!((68..=70).contains(&kanji.width()), "width {}", kanji.width());
        // 漢 spans -23..208 of its 256 units, 字 -24..209: from row 4 to row 35, in its own em.
        for (name, cell) in [("漢", 1..33), ("字", 36..68)] {
            assert!(ink(&kanji, cell.clone(), 0..8) > 0, "{name} reaches the top of its em");
            assert!(
                ink(&kanji, cell.clone(), 33..40) > 0,
                "{name} goes just below the baseline"
            );
            assert!(ink(&kanji, cell, 8..33) > 100, "{name} has strokes");
        }
        let boxes = render_text(&fonts, "\u{FFFF}\u{FFFF}", &style());
        assert_ne!(kanji, boxes, "not the missing-glyph boxes");
    }

    #[test]
    fn a_fallback_glyph_sits_at_the_shipped_fonts_size_and_baseline() {
        let fonts = fonts_with_fallback();
        // 一 is one stroke 93..112 units above the baseline, 21..234 across: rows 16.9..19.4, columns 2.8..31.4.
        // At the fallback's own scale it would be rows 18.5..20.8; on the fallback's own ascent, rows 20.8..23.3.
        let one = render_text(&fonts, "一", &style());
        for (x, y, pixel) in one.enumerate_pixels() {
            if pixel.0 != BLACK {
                assert!((16..=19).contains(&y) && (2..=31).contains(&x), "ink at {x},{y}");
            }
        }
        assert!(
            ink(&one, 4..5, 0..LINE) > 0 && ink(&one, 30..31, 0..LINE) > 0,
            "the stroke spans the em"
        );
    }

    #[test]
    fn without_a_fallback_cjk_draws_the_missing_glyph_boxes() {
        let fonts = Fonts {
            fallback: None,
            ..for_tests()
        };
        let kanji = render_text(&fonts, "漢字", &style());
        assert_eq!(kanji, render_text(&fonts, "\u{FFFF}\u{FFFF}", &style()));
    }

    #[test]
    fn emoji_neither_font_has_are_boxes_of_the_box_width() {
        let fonts = fonts_with_fallback();
        // 🚀 and 🦀 are in neither font: each is the shipped font's missing-glyph box, 1229 units (20.6 px) wide.
        let emoji = render_text(&fonts, "🚀🦀", &style());
        assert_eq!(emoji.dimensions(), (42, LINE), "ceil(2 x 20.62 px)");
        assert_eq!(emoji, render_text(&fonts, "\u{FFFF}\u{FFFF}", &style()));
        // The box spans 102..1126 across and -362..1444 up: its left side is column 1.7 to 2.x, rows 7.7..38.
        assert!(ink(&emoji, 1..4, 9..37) > 20, "a box's side");
        for sample in ["👍🏽", "👨\u{200D}👩\u{200D}👧", "🇫🇷", "❤\u{FE0F}", "😀 漢 é"] {
            let picture = render_text(&fonts, sample, &style());
            assert_eq!(picture.height(), LINE, "{sample}");
            assert!(ink(&picture, 0..picture.width(), 0..LINE) > 0, "{sample}");
        }
    }

    #[test]
    fn accents_are_drawn_above_their_letters() {
        let fonts = fonts_with_fallback();
        // ë, Å and ö are the shipped font's own glyphs, each as wide as its base letter (hmtx): the accented and
        // plain lines are the same width and differ only in the accented letters' cells.
        let accented = render_text(&fonts, "Zoë Ångström", &style());
        let plain = render_text(&fonts, "Zoe Angstrom", &style());
        assert_eq!(accented.dimensions(), plain.dimensions());
        // Cells from the advances (kerning may move them a pixel or two): ë 44.6..65.7, Å 76.6..100.1,
        // ö 189.2..210.2 px. Above the x-height is rows 0..=11 ('x' tops out at row 13.1, 'o' and 'e' at 12.65);
        // above the cap height rows 0..=5 ('A' tops out at 6.85, Å's ring at 0).
        for (name, cell, rows) in [("ë", 47..63, 0..12), ("Å", 79..98, 0..6), ("ö", 192..208, 0..12)] {
            assert!(ink(&accented, cell.clone(), rows.clone()) > 4, "{name}'s accent");
            assert_eq!(ink(&plain, cell, rows), 0, "nothing above {name}'s base letter");
        }
        let cells = [43..68, 74..103, 186..213];
        for (x, y, pixel) in accented.enumerate_pixels() {
            if pixel != plain.get_pixel(x, y) {
                assert!(
                    cells.iter().any(|c| c.contains(&x)),
                    "the lines differ outside the accented letters at {x},{y}"
                );
            }
        }
    }

    #[test]
    fn a_combining_accent_is_shaped_onto_its_letter() {
        let fonts = fonts_with_fallback();
        // A letter and a combining mark the font also has precomposed become the font's own letter: W + U+0301
        // is Ẃ (U+1E82), e + U+0301 é. Unshaped, the mark (zero advance, drawn left of the caret as for a letter
        // about as wide as "e") would sit over the W's right half.
        for (combined, precomposed) in [("W\u{301}", "\u{1E82}"), ("Zoe\u{308}", "Zoë"), ("e\u{301}", "é")] {
            let same = render_text(&fonts, combined, &style()) == render_text(&fonts, precomposed, &style());
            assert!(same, "{combined:?} is not drawn as {precomposed:?}");
        }
        // No precomposed m with diaeresis: the mark goes on the m's anchor, over its middle. The m's ink spans
        // 186..1821 of its 1995 units (3.1..30.6 px, middle 16.8); unshaped the dots would span 19.9..29.9 px.
        let m = render_text(&fonts, "m\u{308}", &style());
        assert_eq!(
            m.width(),
            render_text(&fonts, "m", &style()).width(),
            "the mark takes no room"
        );
        let dots: Vec<u32> = m
            .enumerate_pixels()
            .filter(|(_, y, pixel)| *y < 12 && pixel.0 != BLACK)
            .map(|(x, _, _)| x)
            .collect();
        assert!(dots.len() > 8, "the diaeresis is drawn above the x-height");
        let middle = dots.iter().sum::<u32>() as f32 / dots.len() as f32;
        assert!(
            (14.8..=18.8).contains(&middle),
            "the diaeresis is centred at {middle}, not over the m"
        );
    }

    /// The glyph ids `lay_out` puts on a line, left to right, with their fonts.
    fn glyph_ids(fonts: &Fonts, text: &str) -> Vec<(Face, u16)> {
        let (laid, _) = lay_out(fonts, &Scales::new(fonts, 40.0), text, 0.0, 30.0, f32::MAX);
        laid.iter().map(|l| (l.face, l.glyph.id.0)).collect()
    }

    /// What the shipped font's cmap maps each of `chars` to, in that order.
    fn cmap(fonts: &Fonts, chars: &str) -> Vec<(Face, u16)> {
        chars
            .chars()
            .map(|c| {
                let id = fonts.primary.glyph_id(c).0;
                assert_ne!(id, 0, "DejaVu Sans has {c:?} (U+{:04X})", c as u32);
                (Face::Primary, id)
            })
            .collect()
    }

    #[test]
    fn hebrew_is_laid_out_right_to_left() {
        let fonts = for_tests();
        // DejaVu Sans has the Hebrew letters (U+05D0..05EA, final forms their own code points) and no
        // substitution between them: the line is the letters' cmap glyphs in reverse.
        let reversed: String = "שלום".chars().rev().collect();
        assert_eq!(glyph_ids(&fonts, "שלום"), cmap(&fonts, &reversed));
    }

    #[test]
    fn a_hebrew_name_in_a_latin_line_is_reversed_and_its_number_is_not() {
        let fonts = for_tests();
        // UAX #9 by hand for "Dr. כהן 2": the first strong letter (D) makes the paragraph left to right (level
        // 0). W6: "." becomes ON; W7: the last strong type before "2" is R, so 2 stays EN; N1: the space between
        // ן and 2 (EN counts as R) becomes R; N2: ". " between L and R takes level 0. I1: the Hebrew letters and
        // that space go to level 1, the 2 to level 2. L2 reverses the level >= 1 stretch "כהן 2" into "2 ןהכ".
        assert_eq!(glyph_ids(&fonts, "Dr. כהן 2"), cmap(&fonts, "Dr. 2 ןהכ"));
        // Opposite paragraph: the first strong letter is Hebrew; the Latin name keeps its order inside it, and
        // the brackets around it are mirrored glyph for glyph (U+0028 is drawn as U+0029).
        assert_eq!(glyph_ids(&fonts, "כהן (Dr)"), cmap(&fonts, "(Dr) ןהכ"));
    }

    #[test]
    fn arabic_letters_take_their_joining_forms_right_to_left() {
        let fonts = for_tests();
        // The shaped glyphs are the font's glyphs for the Arabic Presentation Forms-B code points each letter
        // becomes by Unicode's joining rules (ArabicShaping.txt), found by cmap: بيت (house) is beh initial
        // (U+FE91), yeh medial (U+FEF4), teh final (U+FE96), drawn right to left; سلام (peace): seen initial
        // (U+FEB3), lam and alef as the lam-alef final ligature (U+FEFC, required), then meem alone (alef does
        // not join to its left): DejaVu Sans has no `isol` substitution for meem, so it stays the nominal glyph
        // of U+0645 (the presentation form U+FEE1 is a second glyph of the same shape).
        assert_eq!(glyph_ids(&fonts, "بيت"), cmap(&fonts, "\u{FE96}\u{FEF4}\u{FE91}"));
        assert_eq!(glyph_ids(&fonts, "سلام"), cmap(&fonts, "\u{0645}\u{FEFC}\u{FEB3}"));
        // Unshaped, the letters would be their nominal glyphs in logical order.
        assert_ne!(glyph_ids(&fonts, "بيت"), cmap(&fonts, "بيت"));
    }

    #[test]
    fn a_right_to_left_line_too_wide_keeps_its_start_at_the_right() {
        let fonts = for_tests();
        let scales = Scales::new(&fonts, 40.0);
        // א first in logical order, then 99 ב: א is the rightmost glyph, its right edge 5 px (`left`) inside the
        // 300 px, the line's end cut at the left.
        let text = format!("א{}", "ב".repeat(99));
        let (laid, caret) = lay_out(&fonts, &scales, &text, 5.0, 30.0, 300.0);
        let alef = fonts.primary.glyph_id('א');
        let last = laid.last().expect("glyphs");
        assert_eq!(last.glyph.id, alef);
        let advance = fonts.primary.as_scaled(scales.primary).h_advance(alef);
        assert!(
            (last.glyph.position.x + advance - 295.0).abs() < 0.01,
            "{}",
            last.glyph.position.x
        );
        assert!((caret - 295.0).abs() < 0.01, "{caret}");
        let picture = render_text(
            &fonts,
            &text,
            &TextStyle {
                max_width: 300,
                padding: 5,
                ..style()
            },
        );
        assert_eq!(picture.width(), 300);
        assert_eq!(ink(&picture, 296..300, 0..LINE), 0, "the right padding");
        assert!(ink(&picture, 0..5, 0..LINE) > 0, "letters cut at the left edge");
    }

    #[test]
    fn glyphs_past_the_max_width_are_not_laid_out() {
        let fonts = for_tests();
        let scales = Scales::new(&fonts, 40.0);
        let text = "W".repeat(200);
        let (all, _) = lay_out(&fonts, &scales, &text, 0.0, 30.0, f32::MAX);
        assert_eq!(all.len(), 200);
        // A "W" at 40 px is about 40 px wide: 300 px hold 7 or 8 of them, 200 never.
        let (cut, caret) = lay_out(&fonts, &scales, &text, 0.0, 30.0, 300.0);
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
