//! How a tile's picture is scaled into its rectangle. The compositor's default (cubic, with taps stretched for
//! downscaling) ran for every participant on every frame and was the largest cost of a broadcast after the
//! encoder (issue 6); bilinear is a fraction of it and looks the same at tile sizes. A picture only slightly
//! larger than its tile (a 640x360 camera in a 619x348 tile of a 720p grid) is trimmed at its edges instead,
//! which costs a copy rather than a resample.

use gst_video::{VideoConverterConfig, VideoResamplerMethod};

/// Scaling by at least this much (per axis) uses plain 2-tap bilinear; below it, the resampler stretches the
/// taps to cover the source pixels that fall into one output pixel (no aliasing on 9- and 16-tile grids).
const PLAIN_BILINEAR_FROM: f64 = 0.75;

/// Trimming at most this share of a picture's width or height is preferred to scaling it down.
const MAX_TRIM: f64 = 0.05;

/// Left, right, top, bottom pixels to cut so a `src` picture becomes exactly `tile` sized, when that loses at
/// most `MAX_TRIM` of each axis; None when the picture must be scaled.
pub fn trim_to_tile(src: (i32, i32), tile: (i32, i32)) -> Option<[i32; 4]> {
    let axis = |from: i32, to: i32| {
        let cut = from - to;
        (to > 0 && cut >= 0 && f64::from(cut) <= f64::from(from) * MAX_TRIM).then_some((cut / 2, cut - cut / 2))
    };
    let (left, right) = axis(src.0, tile.0)?;
    let (top, bottom) = axis(src.1, tile.1)?;
    Some([left, right, top, bottom])
}

/// The compositor pad's `converter-config` for a `src` (w, h) picture drawn at `dst` (w, h).
pub fn converter_config(src: (i32, i32), dst: (i32, i32)) -> gst::Structure {
    let mut config = VideoConverterConfig::new();
    config.set_resampler_method(VideoResamplerMethod::Linear);
    if scale_factor(src, dst) >= PLAIN_BILINEAR_FROM {
        config.set_resampler_taps(2);
    }
    config.into()
}

/// The smaller of the two axes' output/input ratios (1.0 when a size is unknown).
fn scale_factor(src: (i32, i32), dst: (i32, i32)) -> f64 {
    if src.0 <= 0 || src.1 <= 0 || dst.0 <= 0 || dst.1 <= 0 {
        return 1.0;
    }
    (f64::from(dst.0) / f64::from(src.0)).min(f64::from(dst.1) / f64::from(src.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slightly_larger_pictures_are_trimmed_to_the_tile() {
        assert_eq!(trim_to_tile((640, 360), (619, 348)), Some([10, 11, 6, 6]));
        assert_eq!(trim_to_tile((640, 360), (640, 360)), Some([0, 0, 0, 0]));
        // Too much to cut, or smaller than the tile: scaled.
        assert_eq!(trim_to_tile((640, 360), (412, 232)), None);
        assert_eq!(trim_to_tile((320, 180), (619, 348)), None);
        assert_eq!(trim_to_tile((640, 360), (639, 300)), None);
    }

    #[test]
    fn mild_scaling_is_plain_bilinear_and_strong_downscaling_filters_more() {
        let _glib = crate::glib_watch::watch();
        let mild = converter_config((640, 360), (619, 348));
        assert_eq!(mild.get::<u32>("GstVideoConverter.resampler-taps"), Ok(2));
        let strong = converter_config((1280, 720), (300, 169));
        assert!(strong.get::<u32>("GstVideoConverter.resampler-taps").is_err());
        for config in [mild, strong] {
            assert_eq!(
                config.get::<VideoResamplerMethod>("GstVideoConverter.resampler-method"),
                Ok(VideoResamplerMethod::Linear)
            );
        }
    }
}
