//! How a tile's picture is scaled into its rectangle. The compositor's default (cubic, with taps stretched for
//! downscaling) ran for every participant on every frame and was the largest cost of a broadcast after the
//! encoder (issue 6); bilinear is a fraction of it and looks the same at tile sizes.

use gst_video::{VideoConverterConfig, VideoResamplerMethod};

/// Scaling by at least this much (per axis) uses plain 2-tap bilinear; below it, the resampler stretches the
/// taps to cover the source pixels that fall into one output pixel (no aliasing on 9- and 16-tile grids).
const PLAIN_BILINEAR_FROM: f64 = 0.75;

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
    fn mild_scaling_is_plain_bilinear_and_strong_downscaling_filters_more() {
        gst::init().unwrap();
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
