//! A preview of a template with numbered placeholder tiles, drawn through the same placement code that
//! drives the compositor (its overlays are drawn over them by `broadcast::template_preview`).

use super::engine::{place, Placement, Scene};
use super::template::Template;
use super::{Canvas, Rect};

/// 3x5 bitmaps of the digits 0-9, one row per 3 bits.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b001, 0b001, 0b001],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// Tile colours, cycled.
const PALETTE: [[u8; 3]; 6] = [
    [0xd4, 0x3f, 0x3a],
    [0x2e, 0x86, 0xde],
    [0x27, 0xae, 0x60],
    [0xf3, 0x9c, 0x12],
    [0x8e, 0x44, 0xad],
    [0x16, 0xa0, 0x85],
];

/// A preview picture, 8-bit RGB, and where each placeholder participant's tile went.
pub struct Preview {
    pub width: i32,
    pub height: i32,
    pub rgb: Vec<u8>,
    /// Participant k's tile (k from 1, its id `k`) at index k - 1; None when the template shows no tile for them.
    pub tiles: Vec<Option<Placement>>,
}

impl Preview {
    fn fill(&mut self, r: Rect, colour: [u8; 3]) {
        for y in r.y.max(0)..(r.y + r.h).min(self.height) {
            for x in r.x.max(0)..(r.x + r.w).min(self.width) {
                let i = ((y * self.width + x) * 3) as usize;
                self.rgb[i..i + 3].copy_from_slice(&colour);
            }
        }
    }

    fn number(&mut self, n: usize, centre: (i32, i32), scale: i32) {
        let text = n.to_string();
        let width = text.len() as i32 * 4 * scale - scale;
        let mut x0 = centre.0 - width / 2;
        let y0 = centre.1 - 5 * scale / 2;
        for ch in text.bytes() {
            let glyph = DIGITS[usize::from(ch - b'0')];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        let r = Rect {
                            x: x0 + col * scale,
                            y: y0 + row as i32 * scale,
                            w: scale,
                            h: scale,
                        };
                        self.fill(r, [255, 255, 255]);
                    }
                }
            }
            x0 += 4 * scale;
        }
    }
}

/// Draws `participants` numbered tiles (1 = first in order).
pub fn render(template: &Template, canvas: Canvas, participants: usize) -> Preview {
    let bg = template.background.to_be_bytes();
    let mut image = Preview {
        width: canvas.width,
        height: canvas.height,
        rgb: [bg[1], bg[2], bg[3]].repeat((canvas.width * canvas.height) as usize),
        tiles: vec![None; participants],
    };
    let scene = Scene {
        order: (1..=participants).map(|i| i.to_string()).collect(),
        ..Scene::default()
    };
    let mut placed = place(template, canvas, &scene);
    placed.sort_by_key(|p| p.z);
    for p in placed {
        let n: usize = p.id.parse().unwrap_or(0);
        image.fill(p.rect, PALETTE[(n + PALETTE.len() - 1) % PALETTE.len()]);
        image.number(n, p.rect.center(), (p.rect.h / 12).clamp(2, 24));
        if let Some(tile) = n.checked_sub(1).and_then(|i| image.tiles.get_mut(i)) {
            *tile = Some(p);
        }
    }
    image
}

/// The picture as a PNG.
pub fn encode_png(image: &Preview) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, image.width as u32, image.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header into memory");
        writer.write_image_data(&image.rgb).expect("PNG data into memory");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::template::Templates;

    #[test]
    fn renders_a_png_with_tiles() {
        let t = Templates::builtin();
        let preview = render(
            t.get("grid").unwrap(),
            Canvas {
                width: 320,
                height: 180,
            },
            4,
        );
        let png = encode_png(&preview);
        assert_eq!(&png[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (320, 180));
        // The first tile's colour appears at its top-left area.
        let tile = crate::layout::grid(
            4,
            Canvas {
                width: 320,
                height: 180,
            },
            2,
        )[0];
        let i = (((tile.y + 2) * 320 + tile.x + 2) * 3) as usize;
        assert_eq!(&buf[i..i + 3], &PALETTE[0]);
        assert_eq!(preview.tiles[0].as_ref().map(|p| p.rect), Some(tile));
        assert_eq!(preview.tiles.len(), 4);
    }
}
