//! Overlays (titles, logos) turned into RGBA pictures placed on the canvas, once per change: the mixer only
//! blends the pictures made here (`overlay_layer`). Pure pixels: no GStreamer.

use super::overlay_fonts::Fonts;
use super::overlay_text::{render_text, TextStyle};
use image::{imageops, ImageFormat, RgbaImage};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Largest image `file` accepted, encoded. A data URL is bounded far lower by the API's body limit (256 KB of
/// JSON: about 190 KB of image once base64 is undone).
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Largest side of an image accepted, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 4096;
/// Widest (or tallest) shape accepted, long side over short side: a 4096x1 strip scaled to a tall overlay would
/// otherwise be mostly cut away at the canvas edge.
pub const MAX_ASPECT_RATIO: u32 = 32;
/// All the images of one overlay list together, decoded, in pixels (4 bytes each): 8 Mpx is 32 MB.
pub const MAX_TOTAL_PIXELS: u64 = 8 * 1024 * 1024;
/// The font text overlays are drawn with, under the assets dir.
pub const FONT_FILE: &str = "fonts/DejaVuSans.ttf";

/// One overlay as the mixer draws it: the top-left corner and height as fractions of the canvas.
#[derive(Debug, Clone)]
pub struct Drawing {
    pub x: f64,
    pub y: f64,
    pub height: f64,
    /// 0..1, applied to every pixel's alpha.
    pub opacity: f64,
    pub content: Content,
}

#[derive(Debug, Clone)]
pub enum Content {
    Text {
        text: String,
        color: [u8; 4],
        background: [u8; 4],
        /// Around the text, as a fraction of the box's height.
        padding: f64,
    },
    Image(Arc<RgbaImage>),
}

/// A rendered overlay: its picture and where its top-left corner goes on the canvas, in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub x: u32,
    pub y: u32,
    pub picture: RgbaImage,
}

/// Decodes a PNG or JPEG (nothing else) within the size limits, and of at most `max_pixels` pixels: the header
/// is checked before any pixel is decoded.
pub fn decode_picture(bytes: &[u8], max_pixels: u64) -> Result<RgbaImage, String> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!("is larger than {MAX_IMAGE_BYTES} bytes"));
    }
    let format = image::guess_format(bytes).map_err(|_| "is not a PNG or JPEG image".to_string())?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err("is not a PNG or JPEG image".into());
    }
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("cannot be decoded: {e}"))?;
    if w.max(h) > MAX_IMAGE_SIDE {
        return Err(format!("is larger than {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels"));
    }
    if w.max(h) > w.min(h).saturating_mul(MAX_ASPECT_RATIO) {
        return Err(format!(
            "is {w}x{h} pixels: more than {MAX_ASPECT_RATIO} times wider than high (or higher than wide)"
        ));
    }
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!(
            "is {w}x{h} pixels: over the {max_pixels} pixels left for the overlays' images"
        ));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => format!("is larger than {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels"),
        other => format!("cannot be decoded: {other}"),
    })?;
    Ok(decoded.to_rgba8())
}

/// What the server draws with: its assets dir (image `file`s, the font), the fonts read once.
#[derive(Debug)]
pub struct Assets {
    dir: PathBuf,
    font: OnceLock<Option<Fonts>>,
}

impl Assets {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            font: OnceLock::new(),
        }
    }

    /// The shipped font with the machine's fallback (`overlay_fonts`), read at the first text drawn; None
    /// (logged once) when the shipped font cannot be read: text overlays are then not drawn.
    pub fn font(&self) -> Option<&Fonts> {
        self.font
            .get_or_init(|| {
                Fonts::load(&self.dir.join(FONT_FILE))
                    .map_err(|e| tracing::error!("text overlays not drawn: font {e}"))
                    .ok()
            })
            .as_ref()
    }

    /// Reads and decodes the image `name` under the assets dir (a relative path that stays inside it, symlinks
    /// resolved), of at most `max_pixels` pixels.
    pub fn image(&self, name: &str, max_pixels: u64) -> Result<RgbaImage, String> {
        let relative = Path::new(name);
        let inside = !name.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err("must be a relative path inside the server's assets dir".into());
        }
        let unreadable = |e: std::io::Error| format!("cannot be read: {e}");
        let path = self.dir.join(relative).canonicalize().map_err(unreadable)?;
        let dir = self.dir.canonicalize().map_err(unreadable)?;
        if !path.starts_with(&dir) {
            return Err("must be a relative path inside the server's assets dir".into());
        }
        let file = std::fs::File::open(&path).map_err(unreadable)?;
        let metadata = file.metadata().map_err(unreadable)?;
        if !metadata.is_file() {
            return Err("cannot be read: not a file".into());
        }
        if metadata.len() > MAX_IMAGE_BYTES as u64 {
            return Err(format!("is larger than {MAX_IMAGE_BYTES} bytes"));
        }
        // The file may grow after the check: never read more than the limit and one byte.
        let mut bytes = Vec::with_capacity(metadata.len() as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_IMAGE_BYTES as u64 + 1), &mut bytes)
            .map_err(unreadable)?;
        decode_picture(&bytes, max_pixels)
    }
}

/// Renders `drawing` on a `canvas` (width, height) in pixels; None when nothing of it would show.
pub fn render(drawing: &Drawing, canvas: (u32, u32), font: Option<&Fonts>) -> Option<Placed> {
    let (cw, ch) = canvas;
    let x = (drawing.x * f64::from(cw)).round() as u32;
    let y = (drawing.y * f64::from(ch)).round() as u32;
    let height = ((drawing.height * f64::from(ch)).round() as u32).min(ch.saturating_sub(y));
    if x >= cw || height == 0 {
        return None;
    }
    let max_width = cw - x;
    let mut picture = match &drawing.content {
        Content::Text {
            text,
            color,
            background,
            padding,
        } => {
            let style = TextStyle {
                height,
                padding: (padding * f64::from(height)).round() as u32,
                color: *color,
                background: *background,
                max_width,
            };
            render_text(font?, text, &style)
        }
        Content::Image(image) => scale_to_height(image, height, max_width),
    };
    if drawing.opacity < 1.0 {
        for pixel in picture.pixels_mut() {
            pixel.0[3] = (f64::from(pixel.0[3]) * drawing.opacity).round() as u8;
        }
    }
    Some(Placed { x, y, picture })
}

/// `image` scaled to `height` keeping its aspect ratio, cut at `max_width`. Only the part of the source that
/// shows is resized: a wide strip scaled whole before the cut could need gigabytes.
fn scale_to_height(image: &RgbaImage, height: u32, max_width: u32) -> RgbaImage {
    let full = (f64::from(image.width()) * f64::from(height) / f64::from(image.height().max(1))).round();
    let full = (full.min(f64::from(u32::MAX)) as u32).max(1);
    let width = full.min(max_width.max(1));
    if (width, height) == image.dimensions() {
        return image.clone();
    }
    let src_w =
        ((f64::from(width) * f64::from(image.width()) / f64::from(full)).ceil() as u32).clamp(1, image.width().max(1));
    let shown = imageops::crop_imm(image, 0, 0, src_w, image.height());
    imageops::resize(&*shown, width, height, imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> Assets {
        Assets::new(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets")))
    }

    fn text(text: &str) -> Drawing {
        Drawing {
            x: 0.25,
            y: 0.5,
            height: 0.25,
            opacity: 1.0,
            content: Content::Text {
                text: text.into(),
                color: [255, 255, 255, 255],
                background: [0, 0, 255, 255],
                padding: 0.1,
            },
        }
    }

    /// A 2x2 PNG: red, green / blue, half-transparent white (made with the `png` crate, not `image`).
    const PNG_2X2: [u8; 16] = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 128];

    fn png_2x2() -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, 2, 2);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header().unwrap().write_image_data(&PNG_2X2).unwrap();
        bytes
    }

    #[test]
    fn a_text_box_has_its_background_at_its_rectangle_and_text_pixels_inside() {
        let assets = assets();
        let placed = render(&text("Town hall"), (400, 200), assets.font()).expect("drawn");
        // x 0.25 of 400, y 0.5 of 200, height 0.25 of 200.
        assert_eq!((placed.x, placed.y, placed.picture.height()), (100, 100, 50));
        let width = placed.picture.width();
        assert!((60..300).contains(&width), "width follows the text: {width}");
        // Padding 0.1 of 50 px: the corners are the box colour.
        for (x, y) in [(0, 0), (width - 1, 0), (0, 49), (width - 1, 49), (2, 25)] {
            assert_eq!(placed.picture.get_pixel(x, y).0, [0, 0, 255, 255], "at {x},{y}");
        }
        let white = placed.picture.pixels().filter(|p| p.0 == [255, 255, 255, 255]).count();
        assert!(white > 50, "text pixels of the text colour: {white}");
        let outside_padding = placed
            .picture
            .enumerate_pixels()
            .filter(|(x, y, p)| p.0[0] > 128 && (*x < 4 || *y < 4 || *y > 45))
            .count();
        assert_eq!(outside_padding, 0, "no text in the padding");
    }

    #[test]
    fn unicode_text_renders_without_panic() {
        let assets = assets();
        for sample in [
            "Café déjà vu Ærøskøbing",
            "東京 会議",
            "live 🎉🔥",
            "\u{200d}\u{fe0f}\u{0301}",
            "a\tb\nc",
        ] {
            let placed = render(&text(sample), (640, 360), assets.font()).expect("drawn");
            assert!(placed.picture.width() > 0, "{sample}");
        }
        // CJK comes from the fallback font: pixels of the text colour.
        let cjk = render(&text("東京"), (640, 360), assets.font()).unwrap();
        assert!(cjk.picture.pixels().any(|p| p.0 == [255, 255, 255, 255]));
    }

    #[test]
    fn a_text_box_stops_at_the_canvas_edge() {
        let long = "W".repeat(200);
        let placed = render(&text(&long), (400, 200), assets().font()).unwrap();
        assert_eq!(placed.picture.width(), 300);
    }

    #[test]
    fn a_png_data_decodes_to_its_exact_colours() {
        let picture = decode_picture(&png_2x2(), MAX_TOTAL_PIXELS).unwrap();
        assert_eq!(picture.dimensions(), (2, 2));
        assert_eq!(picture.into_raw(), PNG_2X2.to_vec());
    }

    #[test]
    fn a_jpeg_decodes_to_about_its_colour() {
        let mut jpeg = Vec::new();
        let solid = RgbaImage::from_pixel(16, 16, image::Rgba([200, 40, 90, 255]));
        image::DynamicImage::ImageRgba8(solid)
            .to_rgb8()
            .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let picture = decode_picture(&jpeg, MAX_TOTAL_PIXELS).unwrap();
        let [r, g, b, a] = picture.get_pixel(8, 8).0;
        assert!(
            r.abs_diff(200) < 8 && g.abs_diff(40) < 8 && b.abs_diff(90) < 8 && a == 255,
            "{r} {g} {b} {a}"
        );
    }

    #[test]
    fn an_image_is_scaled_to_its_height_and_opacity_lowers_alpha() {
        let red = Arc::new(RgbaImage::from_pixel(40, 20, image::Rgba([255, 0, 0, 255])));
        let drawing = Drawing {
            x: 0.5,
            y: 0.0,
            height: 0.5,
            opacity: 0.5,
            content: Content::Image(red),
        };
        let placed = render(&drawing, (200, 100), None).unwrap();
        assert_eq!((placed.x, placed.y, placed.picture.dimensions()), (100, 0, (100, 50)));
        assert_eq!(placed.picture.get_pixel(50, 25).0, [255, 0, 0, 128]);
    }

    #[test]
    fn what_is_not_a_small_png_or_jpeg_is_refused() {
        assert!(decode_picture(b"GIF89a....", MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("PNG or JPEG"));
        let mut truncated = png_2x2();
        truncated.truncate(30);
        assert!(decode_picture(&truncated, MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("cannot be decoded"));
        let mut big = Vec::new();
        let mut encoder = png::Encoder::new(&mut big, MAX_IMAGE_SIDE + 1, 1);
        encoder.set_color(png::ColorType::Grayscale);
        let row = vec![0u8; (MAX_IMAGE_SIDE + 1) as usize];
        encoder.write_header().unwrap().write_image_data(&row).unwrap();
        assert!(decode_picture(&big, MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("4096x4096"));
    }

    #[test]
    fn an_image_file_must_stay_inside_the_assets_dir() {
        let assets = assets();
        for name in ["../Cargo.toml", "/etc/passwd", ""] {
            assert!(
                assets.image(name, MAX_TOTAL_PIXELS).unwrap_err().contains("inside"),
                "{name}"
            );
        }
        assert!(assets
            .image("fonts/missing.png", MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("cannot be read"));
    }

    fn grey_png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        let pixels = vec![0u8; (width * height) as usize];
        encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
        bytes
    }

    #[test]
    fn a_wide_image_is_cut_at_the_canvas_edge_from_its_left_part_only() {
        // 64x2: the left 8 columns red, the rest blue. At height 100 it would be 3200 wide; 50 px are left.
        let mut strip = RgbaImage::from_pixel(64, 2, image::Rgba([0, 0, 255, 255]));
        for x in 0..8 {
            for y in 0..2 {
                strip.put_pixel(x, y, image::Rgba([255, 0, 0, 255]));
            }
        }
        let scaled = scale_to_height(&strip, 100, 50);
        assert_eq!(scaled.dimensions(), (50, 100));
        // 50 px of 3200 show 1 source column: red throughout.
        assert!(scaled.pixels().all(|p| p.0 == [255, 0, 0, 255]));
        // A 4096x128 strip (32:1) 1080 high on a 1920 canvas: only what shows is made.
        let wide = RgbaImage::from_pixel(4096, 128, image::Rgba([9, 9, 9, 255]));
        assert_eq!(scale_to_height(&wide, 1080, 1920).dimensions(), (1920, 1080));
    }

    #[test]
    fn an_image_over_32_to_1_or_over_the_pixel_budget_is_refused() {
        assert!(decode_picture(&grey_png(32, 1), MAX_TOTAL_PIXELS).is_ok());
        assert!(decode_picture(&grey_png(4096, 1), MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("wider than high"));
        assert!(decode_picture(&grey_png(1, 33), MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("wider than high"));
        assert!(decode_picture(&grey_png(10, 10), 100).is_ok());
        assert!(decode_picture(&grey_png(10, 10), 99)
            .unwrap_err()
            .contains("pixels left"));
    }

    #[test]
    fn an_image_file_symlinked_out_of_the_assets_dir_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("logo.png"), png_2x2()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inside.png"), png_2x2()).unwrap();
        std::os::unix::fs::symlink(outside.path().join("logo.png"), dir.path().join("escape.png")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("elsewhere")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let assets = Assets::new(dir.path().to_path_buf());
        assert_eq!(
            assets.image("inside.png", MAX_TOTAL_PIXELS).unwrap().dimensions(),
            (2, 2)
        );
        for name in ["escape.png", "elsewhere/logo.png"] {
            assert!(
                assets.image(name, MAX_TOTAL_PIXELS).unwrap_err().contains("inside"),
                "{name}"
            );
        }
        assert!(assets
            .image("sub", MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("not a file"));
        let big = std::fs::File::create(dir.path().join("big.png")).unwrap();
        big.set_len(MAX_IMAGE_BYTES as u64 + 1).unwrap();
        assert!(assets
            .image("big.png", MAX_TOTAL_PIXELS)
            .unwrap_err()
            .contains("larger than"));
    }
}
