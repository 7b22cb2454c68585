//! `GET /v1/layouts/{name}/preview.png`: a PNG the size of a 640 px wide canvas of the template's shape, with
//! numbered tiles in the template's colours where the template puts them, and their name labels when the
//! template has labels. The PNG is decoded here and pixels are compared with rectangles worked out by hand from
//! the template files (pipelines/layouts/*.toml, and one written here with overlays), not with the product's
//! layout engine or overlay rendering.

use axum::http::StatusCode;

/// The preview's tile colours, in participant order (participant 1 first).
const RED: [u8; 3] = [0xd4, 0x3f, 0x3a];
const BLUE: [u8; 3] = [0x2e, 0x86, 0xde];
const GREEN: [u8; 3] = [0x27, 0xae, 0x60];
const ORANGE: [u8; 3] = [0xf3, 0x9c, 0x12];
const BLACK: [u8; 3] = [0, 0, 0];

struct Picture {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Picture {
    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// GETs the preview of `name` with `participants` tiles and decodes it (8-bit RGB, as served).
async fn preview(name: &str, participants: usize) -> Picture {
    preview_with(&[], name, participants).await
}

/// `preview` from a server started with `flags`.
async fn preview_with(flags: &[&str], name: &str, participants: usize) -> Picture {
    let (app, _dir) = crate::in_process::app(flags);
    let uri = format!("/v1/layouts/{name}/preview.png?participants={participants}");
    let request = axum::http::Request::get(&uri)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(app, request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    assert_eq!(response.headers()["content-type"], "image/png", "{uri}");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("preview-{name}-{participants}.png"));
    let _ = std::fs::write(&kept, &bytes);
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()))
        .read_info()
        .unwrap_or_else(|e| panic!("{uri} is not a PNG ({e}); kept in {}", kept.display()));
    let mut rgb = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut rgb).expect("PNG frame");
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Rgb, png::BitDepth::Eight),
        "{uri}"
    );
    rgb.truncate(info.buffer_size());
    Picture {
        width: info.width,
        height: info.height,
        rgb,
    }
}

/// A rectangle `[x0, x1) x [y0, y1)` in pixels.
type Rect = (u32, u32, u32, u32);

impl Picture {
    /// The smallest rectangle holding every pixel of `colour` (None: no such pixel).
    fn bounds(&self, colour: [u8; 3]) -> Option<Rect> {
        let mut bounds: Option<Rect> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                if self.at(x, y) == colour {
                    let (x0, y0, x1, y1) = bounds.unwrap_or((x, y, x + 1, y + 1));
                    bounds = Some((x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)));
                }
            }
        }
        bounds
    }

    /// Whether every pixel on the edge of `rect` is `colour` (the tile is a filled rectangle; its number is
    /// drawn in the middle).
    fn edges_are(&self, (x0, y0, x1, y1): Rect, colour: [u8; 3]) -> bool {
        let across = (x0..x1).all(|x| self.at(x, y0) == colour && self.at(x, y1 - 1) == colour);
        let down = (y0..y1).all(|y| self.at(x0, y) == colour && self.at(x1 - 1, y) == colour);
        across && down
    }
}

/// Asserts that each colour fills exactly its expected rectangle.
fn assert_tiles(picture: &Picture, what: &str, tiles: &[([u8; 3], Rect)]) {
    for &(colour, rect) in tiles {
        assert_eq!(
            picture.bounds(colour),
            Some(rect),
            "{what}: tile of colour {colour:02x?}"
        );
        assert!(
            picture.edges_are(rect, colour),
            "{what}: {rect:?} is not filled with {colour:02x?}"
        );
    }
}

#[tokio::test]
async fn grid_preview_has_four_tiles_in_a_2x2_grid() {
    let picture = preview("grid", 4).await;
    assert_eq!((picture.width, picture.height), (640, 360), "16:9, 640 px wide");
    // grid.toml: gap 0.00625 of 640 = 4 px, `fit`. Two rows of (360 - 3 x 4) / 2 = 174 px; a 16:9 tile
    // 174 high is 309 wide, 308 when even; two of them and the gap (620 px) centred: x from 10.
    assert_tiles(
        &picture,
        "grid of 4",
        &[
            (RED, (10, 4, 318, 178)),
            (BLUE, (322, 4, 630, 178)),
            (GREEN, (10, 182, 318, 356)),
            (ORANGE, (322, 182, 630, 356)),
        ],
    );
    assert_eq!(picture.at(320, 180), BLACK, "the background between the tiles");

    // grid.toml's name labels, as a broadcast draws them: "Participant 1" over the red tile (308 x 174 at
    // (10, 4)). The box is 0.08 of the tile high (13.9, 14 px), half its height (7 px) in from the tile's left
    // and bottom edges: x from 17, rows 157..171; padding 0.15 of 14 (2 px). Its colour is black at 0x99 over
    // the tile: each channel x (255 - 153) / 255, rounded: d4 3f 3a -> 85 25 23.
    const LABEL_BOX: [u8; 3] = [85, 25, 23];
    let (x0, y0, y1) = (17, 157, 171);
    assert!(
        picture.filled((x0, y0, x0 + 2, y1), LABEL_BOX),
        "the label's left padding, rows {y0}..{y1}"
    );
    for (x, y) in [(x0 - 1, 164), (x0 + 1, y0 - 1), (x0 + 1, y1)] {
        assert_eq!(picture.at(x, y), RED, "the tile just around the label at ({x}, {y})");
    }
    let box_width = (x0..318).take_while(|&x| picture.at(x, y0) == LABEL_BOX).count() as u32;
    assert!(
        (40..150).contains(&box_width),
        "the box follows the name: {box_width} px"
    );
    // White text at 10 px: stems are about a pixel wide, so count light pixels, not only pure white.
    let text = picture.count((x0 + 2, y0 + 2, x0 + box_width, y1 - 2), |c| c.iter().all(|&v| v > 160));
    assert!(text > 40, "the name's text pixels: {text}");
    assert_eq!(picture.at(x0 + box_width, y0), RED, "the tile right of the box");
    // The same box over the orange tile (participant 4, at (322, 182)): x from 329, rows 335..349.
    let orange_box = [
        (0xf3 * 102 + 127) / 255,
        (0x9c * 102 + 127) / 255,
        (0x12 * 102 + 127) / 255,
    ]
    .map(|c: u32| c as u8);
    assert!(
        picture.filled((329, 335, 331, 349), orange_box),
        "participant 4's label"
    );
}

#[tokio::test]
async fn pip_preview_has_the_second_participant_inset_bottom_right() {
    let picture = preview("pip", 2).await;
    assert_eq!((picture.width, picture.height), (640, 360));
    // pip.toml: the speaker fills the canvas; `next` on top at x 0.72, y 0.70, 0.25 x 0.25 of it:
    // x 460.8 (461) to 621, y 252 to 342.
    assert_eq!(picture.bounds(RED), Some((0, 0, 640, 360)), "the speaker");
    assert!(picture.edges_are((0, 0, 640, 360), RED), "the speaker fills the canvas");
    assert_tiles(&picture, "pip of 2", &[(BLUE, (461, 252, 621, 342))]);
    for (x, y) in [(460, 300), (621, 300), (540, 251), (540, 342)] {
        assert_eq!(picture.at(x, y), RED, "the speaker around the inset at ({x}, {y})");
    }
}

#[tokio::test]
async fn portrait_preview_is_9_by_16_with_participants_stacked() {
    let picture = preview("portrait", 3).await;
    // portrait.toml has a 720x1280 canvas: 640 wide is 1137.8 high, rounded down to even.
    assert_eq!((picture.width, picture.height), (640, 1136));
    // gap 0.011 of 640 = 7 px, `fit`, one column: 16:9 tiles as wide as the canvas less two gaps (626 x 352),
    // 7 px apart, the stack (3 x 352 + 2 x 7 = 1070 px) centred: from y 33.
    assert_tiles(
        &picture,
        "portrait of 3",
        &[
            (RED, (7, 33, 633, 385)),
            (BLUE, (7, 392, 633, 744)),
            (GREEN, (7, 751, 633, 1103)),
        ],
    );
}

const YELLOW: [u8; 3] = [255, 255, 0];
const PURE_GREEN: [u8; 3] = [0, 255, 0];
const WHITE: [u8; 3] = [255, 255, 255];
const PURE_BLUE: [u8; 3] = [0, 0, 255];

/// A template of one full-canvas region with a title, a logo and a lower third. At 640x360 (16:9, `fit`, no
/// gap) participant 1's tile is the whole canvas; the overlays, from their fractions:
/// title x 0.05, y 0.05, height 0.1 -> box from (32, 18), 36 px high, padding 0.15 -> 5 px;
/// logo (an 8x4 green PNG) x 0.8, y 0.05, height 0.1 -> 72x36 from (512, 18);
/// the lower third: the bottom 0.22 of the tile, 79 px (from y 281), the canvas' width.
const SHOW_TOML: &str = r##"description = "A show with graphics"
background = "#000000"
labels = false
fit = "fit"

[[region]]
role = "all"
x = 0.0
y = 0.0
width = 1.0
height = 1.0

[[overlay]]
id = "title"
kind = "text"
text = "Town hall"
x = 0.05
y = 0.05
height = 0.1
color = "ffffff"
background = "0000ff"

[[overlay]]
kind = "lower_third"
participant = "host"
title = "Presenter"
background = "ffff00"
"##;
/// The title box's left padding, less its last column (the text's anti-aliased edge may touch it).
const TITLE: Rect = (32, 18, 36, 54);
const LOGO: Rect = (512, 18, 584, 54);
const BAND: Rect = (0, 281, 640, 360);

fn logo_overlay() -> String {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 8, 4);
    encoder.set_color(png::ColorType::Rgb);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&PURE_GREEN.repeat(32)))
        .expect("PNG");
    let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    format!(
        "\n[[overlay]]\nid = \"logo\"\nkind = \"image\"\ndata = \"data:image/png;base64,{data}\"\nx = 0.8\ny = 0.05\n\
         height = 0.1\n"
    )
}

impl Picture {
    /// Pixels in `rect` whose colour passes `test`.
    fn count(&self, (x0, y0, x1, y1): Rect, test: impl Fn([u8; 3]) -> bool) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| test(self.at(x, y)))
            .count()
    }

    /// Whether all of `rect` is `colour`.
    fn filled(&self, rect: Rect, colour: [u8; 3]) -> bool {
        let (x0, y0, x1, y1) = rect;
        self.count(rect, |c| c == colour) == ((x1 - x0) * (y1 - y0)) as usize
    }
}

#[tokio::test]
async fn preview_draws_a_templates_title_logo_and_lower_third_over_the_tiles() {
    let layouts = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        layouts.path().join("show.toml"),
        format!("{SHOW_TOML}{}", logo_overlay()),
    )
    .expect("show.toml");
    let dir = layouts.path().to_str().expect("path");
    let picture = preview_with(&["--layouts-dir", dir], "show", 1).await;
    assert_eq!((picture.width, picture.height), (640, 360));

    // The title: its box's left padding is the box colour from top to bottom; the canvas (participant 1's red
    // tile) just around it; white text pixels in the box, right of the padding.
    assert!(picture.filled(TITLE, PURE_BLUE), "the title box's left padding");
    for (x, y) in [(31, 36), (34, 17), (34, 54)] {
        assert_eq!(picture.at(x, y), RED, "around the title box at ({x}, {y})");
    }
    let text = picture.count((37, 23, 240, 49), |c| c == WHITE);
    assert!(text > 100, "the title's text pixels: {text}");
    let box_width = (37..640).take_while(|&x| picture.at(x, 20) == PURE_BLUE).count();
    assert!(
        (60..240).contains(&box_width),
        "the box follows the text: {box_width} px right of the padding"
    );

    // The logo, scaled to 36 px high (72 wide), the tile around it.
    assert!(picture.filled(LOGO, PURE_GREEN), "the logo at {LOGO:?}");
    for (x, y) in [(511, 36), (584, 36), (548, 17), (548, 54)] {
        assert_eq!(picture.at(x, y), RED, "around the logo at ({x}, {y})");
    }

    // The lower third over the bottom of participant 1's tile: yellow across, with the name and title (white)
    // on its left only; the tile just above it.
    let band_right = (BAND.0 + 320, BAND.1, BAND.2, BAND.3);
    assert!(
        picture.filled(band_right, YELLOW),
        "the band's right half at {band_right:?}"
    );
    let text = picture.count((0, BAND.1, 200, BAND.3), |c| c[2] > 200);
    assert!(text > 100, "the band's text pixels: {text}");
    assert!(
        (0..640).all(|x| picture.at(x, BAND.1 - 1) == RED),
        "the tile above the band"
    );
}

/// Two tiles side by side, labels in their top-right corners, a lower third on participant 1.
const BANDED_TOML: &str = r##"description = "Labels beside a lower third"
background = "#000000"
labels = true
fit = "fit"

[label]
position = "top-right"

[[region]]
role = "all"
x = 0.0
y = 0.0
width = 1.0
height = 1.0

[[overlay]]
kind = "lower_third"
participant = "host"
title = "Presenter"
"##;

/// A participant with a lower third gets no name label (the band names them, over the label's corner); the
/// other one keeps theirs.
#[tokio::test]
async fn a_tile_with_a_lower_third_has_no_name_label() {
    let layouts = tempfile::tempdir().expect("tempdir");
    std::fs::write(layouts.path().join("banded.toml"), BANDED_TOML).expect("banded.toml");
    let dir = layouts.path().to_str().expect("path");
    let picture = preview_with(&["--layouts-dir", dir], "banded", 2).await;
    // Each tile's top rows, found from its colour down the middle of its half of the canvas; pixels there that
    // are not the tile's colour belong to a label.
    let label_pixels = |x_mid: u32, colour: [u8; 3]| {
        let top = (0..picture.height)
            .find(|&y| picture.at(x_mid, y) == colour)
            .unwrap_or_else(|| panic!("no tile of {colour:?} down x = {x_mid}"));
        let (x0, x1) = (x_mid - 150, x_mid + 150);
        picture.count((x0, top, x1, top + 30), |c| c != colour)
    };
    let (first, second) = (label_pixels(160, RED), label_pixels(480, BLUE));
    assert_eq!(first, 0, "a label on the tile with the lower third");
    assert!(second > 50, "no label on the other tile: {second} pixels");
}
