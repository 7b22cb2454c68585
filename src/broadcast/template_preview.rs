//! `GET /v1/layouts/{name}/preview.png`: a template's placeholder tiles (`layout::preview`) with the name labels
//! and overlays a broadcast would draw over them, by the code that draws them on air (`broadcast::name_labels`,
//! `mix::overlay_render`, `mix::overlay_band`), blended as the mixer's overlay layer blends them:
//! straight alpha, the labels beneath (lowest tile first), then the overlays in the list's order (later ones on
//! top).

use super::name_labels::{NameLabels, Wanted};
use super::overlays::{Look, Overlay};
use crate::layout::preview::{encode_png, render, Preview};
use crate::layout::template::Template;
use crate::layout::Canvas;
use crate::mix::overlay_band::render_band;
use crate::mix::overlay_render::{Assets, Placed};

/// The preview of `template` with `participants` placeholder tiles, as a PNG. Reads image files and the font:
/// call it off the async threads.
pub fn render_png(template: &Template, canvas: Canvas, participants: usize, assets: &Assets) -> Vec<u8> {
    let mut image = render(template, canvas, participants);
    let overlays = super::template_overlays::of(template).unwrap_or_else(|e| {
        // Checked when templates loaded: cannot happen; the tiles still show.
        tracing::warn!("template overlays not previewed: {e}");
        Vec::new()
    });
    let banded = overlays
        .iter()
        .filter(|o| matches!(o.look, Look::LowerThird { .. }))
        .count();
    draw_labels(&mut image, template, assets, banded);
    let mut lower_thirds = 0;
    for overlay in &overlays {
        let placed = if matches!(overlay.look, Look::LowerThird { .. }) {
            // No call behind a preview: the template's k-th lower third stands on placeholder k, its participant
            // id where the name goes.
            lower_thirds += 1;
            band(
                overlay,
                image.tiles.get(lower_thirds - 1).and_then(|t| Some(t.as_ref()?.rect)),
                &image,
                assets,
            )
        } else {
            let size = (image.width as u32, image.height as u32);
            // A preview's clock shows the time it is drawn; its timer, a broadcast not live yet.
            let now = crate::mix::overlay_clock::Moment {
                now: std::time::SystemTime::now(),
                live_since: None,
            };
            overlay
                .drawing(assets, now)
                .and_then(|drawing| crate::mix::overlay_render::render(&drawing, size, assets.font()))
        };
        if let Some(placed) = placed {
            blend(&mut image, &placed);
        }
    }
    encode_png(&image)
}

/// The name labels of a template with labels (`labels = true`), as on air over tiles with video: placeholder
/// k is named `Participant k`. The first `banded` placeholders have a lower third (as `render_png` places
/// them), which names them instead, as on air.
fn draw_labels(image: &mut Preview, template: &Template, assets: &Assets, banded: usize) {
    if !template.labels {
        return;
    }
    let tiles: Vec<_> = image.tiles.iter().skip(banded).flatten().cloned().collect();
    let names: Vec<String> = tiles.iter().map(|t| format!("Participant {}", t.id)).collect();
    let wanted: Vec<Wanted> = tiles
        .iter()
        .zip(&names)
        .map(|(tile, name)| Wanted {
            participant: &tile.id,
            name,
            rect: tile.rect,
            z: tile.z,
        })
        .collect();
    let mut labels = NameLabels::default();
    let size = (image.width as u32, image.height as u32);
    labels.update(&wanted, &template.label, size, assets.font());
    for label in labels.layered() {
        blend(image, label.placed);
    }
}

fn band(overlay: &Overlay, tile: Option<crate::layout::Rect>, image: &Preview, assets: &Assets) -> Option<Placed> {
    // No call behind a preview: the participant id stands where the name goes.
    let band = overlay.band(overlay.lower_third_of()?)?;
    render_band(&band, tile?, (image.width as u32, image.height as u32), assets.font()?)
}

/// `placed` over the RGB picture, each pixel by its alpha.
fn blend(image: &mut Preview, placed: &Placed) {
    let (width, height) = (image.width as u32, image.height as u32);
    for (x, y, pixel) in placed.picture.enumerate_pixels() {
        let (cx, cy) = (placed.x + x, placed.y + y);
        if cx >= width || cy >= height {
            continue;
        }
        let [r, g, b, a] = pixel.0;
        let i = ((cy * width + cx) * 3) as usize;
        for (under, over) in image.rgb[i..i + 3].iter_mut().zip([r, g, b]) {
            let mixed = (u32::from(over) * u32::from(a) + u32::from(*under) * (255 - u32::from(a)) + 127) / 255;
            *under = mixed as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_blends_by_its_alpha_and_is_cut_at_the_edge() {
        let mut image = Preview {
            width: 4,
            height: 2,
            rgb: [0, 0, 200].repeat(8),
            tiles: Vec::new(),
        };
        let mut picture = image::RgbaImage::from_pixel(2, 3, image::Rgba([255, 255, 0, 255]));
        picture.put_pixel(0, 0, image::Rgba([255, 255, 0, 51]));
        blend(&mut image, &Placed { x: 2, y: 0, picture });
        let at = |x: usize, y: usize| &image.rgb[(y * 4 + x) * 3..(y * 4 + x) * 3 + 3];
        // 20% yellow over blue: 51, 51, 160.
        assert_eq!(at(2, 0), [51, 51, 160]);
        assert_eq!(at(3, 1), [255, 255, 0]);
        assert_eq!(at(1, 1), [0, 0, 200]);
    }
}
