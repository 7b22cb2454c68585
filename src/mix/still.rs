//! Still pictures for the canvas (a template's background image): decoded once to raw I420 at the size drawn,
//! then pushed like any other picture.

use anyhow::{bail, Context, Result};
use gst::prelude::*;
use std::path::Path;
use std::time::Duration;

/// Caps of a still I420 picture pushed into a compositor pad.
pub fn i420_caps(width: u32, height: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(30, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        // The compositor's pads only accept caps that name it (decoders always do).
        .field("interlace-mode", "progressive")
        // Converted once here, not by the compositor on every frame.
        .field("colorimetry", super::CANVAS_COLORIMETRY)
        .field("chroma-site", super::CANVAS_CHROMA_SITE)
        .build()
}

/// Decodes an image file (PNG, JPEG, ...) scaled to `width`x`height` as one I420 frame with caps the
/// compositor accepts.
pub fn decode_image(path: &Path, width: u32, height: u32) -> Result<(gst::Buffer, gst::Caps)> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc name=file ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=I420,width={width},height={height},pixel-aspect-ratio=1/1,\
         colorimetry={colorimetry},chroma-site={chroma_site} ! \
         appsink name=out sync=false max-buffers=1",
        colorimetry = super::CANVAS_COLORIMETRY,
        chroma_site = super::CANVAS_CHROMA_SITE,
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let file = pipeline.by_name("file").context("filesrc")?;
    file.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("out")
        .context("appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("not an appsink"))?;
    let result = (|| {
        pipeline.set_state(gst::State::Playing)?;
        let timeout = gst::ClockTime::from_nseconds(Duration::from_secs(5).as_nanos() as u64);
        let Some(sample) = sink.try_pull_preroll(timeout) else {
            let bus = pipeline.bus().context("bus")?;
            if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
                if let gst::MessageView::Error(e) = msg.view() {
                    bail!("{}", e.error());
                }
            }
            bail!("no picture decoded");
        };
        let buffer = sample.buffer_owned().context("empty sample")?;
        Ok((buffer, i420_caps(width, height)))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result.with_context(|| format!("cannot decode image {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let _glib = crate::glib_watch::watch();
        let err = decode_image(Path::new("/nonexistent/bg.png"), 64, 36).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/bg.png"), "{err:#}");
    }

    #[test]
    fn a_png_decodes_to_the_asked_size() {
        let _glib = crate::glib_watch::watch();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bg.png");
        let mut encoder = png::Encoder::new(std::fs::File::create(&path).unwrap(), 32, 16);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let pixels: Vec<u8> = [255u8, 0, 255].repeat(32 * 16);
        encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
        let (buffer, caps) = decode_image(&path, 64, 36).unwrap();
        assert_eq!(buffer.size(), 64 * 36 * 3 / 2);
        let s = caps.structure(0).unwrap();
        assert_eq!(s.get::<i32>("width").unwrap(), 64);
    }
}
