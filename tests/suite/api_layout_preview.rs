//! `GET /v1/layouts/{name}/preview.png`: a PNG the size of a 640 px wide canvas of the template's shape, with
//! numbered tiles in the template's colours where the template puts them. The PNG is decoded here and pixels are
//! compared with rectangles worked out by hand from the template files (pipelines/layouts/*.toml), not with
//! the product's layout engine.

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
    let (app, _dir) = crate::in_process::app(&[]);
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
