//! How big a participant's name label is drawn. The label is drawn onto the participant's own picture before the
//! compositor scales it into the tile, so a fixed font size comes out tiny for a large camera in a small tile and
//! huge for a small camera filling a 1080p canvas. The size is chosen on the canvas instead: a share of the height
//! the picture is drawn at, bounded by shares of the canvas height (readable on a 9-tile grid, modest on a lone
//! tile), then turned back into the picture's own scale.

/// Label size on the canvas, in points, per pixel of the drawn picture's height.
const SHARE_OF_TILE: f64 = 0.035;
/// Bounds on the canvas, per pixel of canvas height: 10.8 to 36 points on 720p, 16.2 to 54 on 1080p.
const MIN_SHARE_OF_CANVAS: f64 = 0.015;
const MAX_SHARE_OF_CANVAS: f64 = 0.05;

/// Points to ask of the label drawn on a `src` (width, height) picture that the compositor draws at `tile`
/// (width, height), keeping its aspect (the picture's scale is the smaller of the two ratios), on a canvas
/// `canvas_height` pixels high. Tenths of a point.
pub fn label_points(src: (i32, i32), tile: (i32, i32), canvas_height: i32) -> Option<f64> {
    if src.0 <= 0 || src.1 <= 0 || tile.0 <= 0 || tile.1 <= 0 || canvas_height <= 0 {
        return None;
    }
    let scale = (f64::from(tile.0) / f64::from(src.0)).min(f64::from(tile.1) / f64::from(src.1));
    let drawn_height = f64::from(src.1) * scale;
    let canvas = f64::from(canvas_height);
    let on_canvas = (drawn_height * SHARE_OF_TILE).clamp(canvas * MIN_SHARE_OF_CANVAS, canvas * MAX_SHARE_OF_CANVAS);
    Some((on_canvas / scale * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::label_points;

    #[test]
    fn the_label_keeps_its_size_on_the_canvas_whatever_the_camera() {
        // A 640x360 camera in a 2x2 grid of 720p (640x360 tiles): 360 * 0.035 = 12.6 pt, drawn 1:1.
        assert_eq!(label_points((640, 360), (640, 360), 720), Some(12.6));
        // A 1280x720 camera in the same tile is drawn at half size: twice the points on the picture.
        assert_eq!(label_points((1280, 720), (640, 360), 720), Some(25.2));
        // A 640x360 camera alone on 1080p: 1080 * 0.035 = 37.8 pt on the canvas, drawn 3x: 12.6 on the picture.
        assert_eq!(label_points((640, 360), (1920, 1080), 1080), Some(12.6));
    }

    #[test]
    fn the_canvas_bounds_the_label() {
        // A 9-tile grid of 720p (426x240): 8.4 pt would be unreadable, 10.8 on the canvas; 426/640 scale: 16.2.
        assert_eq!(label_points((640, 360), (426, 240), 720), Some(16.2));
        // A 720p picture filling a 720p canvas: 25.2 pt; a tall tile of the same canvas is capped at 36.
        assert_eq!(label_points((1280, 720), (1280, 720), 720), Some(25.2));
        assert_eq!(label_points((720, 1280), (720, 1280), 720), Some(36.0));
    }

    #[test]
    fn a_letterboxed_picture_is_measured_by_the_height_it_is_drawn_at() {
        // 640x360 fitted into a 640x640 tile is drawn 640x360: as in a 640x360 tile.
        assert_eq!(label_points((640, 360), (640, 640), 720), Some(12.6));
    }

    #[test]
    fn no_size_without_a_picture_a_tile_or_a_canvas() {
        assert_eq!(label_points((0, 360), (640, 360), 720), None);
        assert_eq!(label_points((640, 360), (640, 0), 720), None);
        assert_eq!(label_points((640, 360), (640, 360), 0), None);
    }
}
