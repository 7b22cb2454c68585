//! Overlays on air: an `overlaycomposition` element between the compositor and the encoder, handed the pictures
//! of `overlay_render` as one composition per change. Each frame it blends that composition's rectangles (only
//! their area; the pictures are converted once and cached inside the composition) into the canvas.
//!
//! Not a compositor pad: the compositor outputs I420, and GStreamer 1.22's compositor then refuses pads with an
//! alpha channel, so titles and logos could not be anything but opaque rectangles there.

use super::overlay_render::Placed;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::sync::{Arc, Mutex};

pub struct OverlayLayer {
    element: gst::Element,
    /// What the element draws on the next frame; None: nothing (the frame goes through untouched).
    current: Arc<Mutex<Option<gst_video::VideoOverlayComposition>>>,
}

impl OverlayLayer {
    pub fn new() -> Result<Self> {
        let element = crate::gst_util::make("overlaycomposition")?;
        let current: Arc<Mutex<Option<gst_video::VideoOverlayComposition>>> = Arc::default();
        let drawn = current.clone();
        // On the compositor's streaming thread, every frame: a clone of a refcounted composition, no drawing.
        element.connect("draw", false, move |_| Some(drawn.lock().unwrap().clone().to_value()));
        Ok(Self { element, current })
    }

    /// The element to link after the compositor's output caps.
    pub fn element(&self) -> &gst::Element {
        &self.element
    }

    /// Puts `overlays` on air from the next frame (in the order given: later ones on top); empty takes all off.
    pub fn show(&self, overlays: &[Placed]) -> Result<()> {
        let rectangles = overlays.iter().map(rectangle).collect::<Result<Vec<_>>>()?;
        let composition = if rectangles.is_empty() {
            None
        } else {
            Some(gst_video::VideoOverlayComposition::new(rectangles.iter()).context("overlay composition")?)
        };
        *self.current.lock().unwrap() = composition;
        Ok(())
    }
}

/// A rectangle in the overlay format GStreamer blends from: BGRA bytes (ARGB words on little-endian machines),
/// straight alpha.
fn rectangle(placed: &Placed) -> Result<gst_video::VideoOverlayRectangle> {
    let (width, height) = placed.picture.dimensions();
    let mut bgra = placed.picture.as_raw().clone();
    for pixel in bgra.chunks_exact_mut(4) {
        pixel.swap(0, 2);
    }
    let mut buffer = gst::Buffer::from_mut_slice(bgra);
    gst_video::VideoMeta::add(
        buffer.get_mut().context("new buffer")?,
        gst_video::VideoFrameFlags::empty(),
        gst_video::VideoFormat::Bgra,
        width,
        height,
    )
    .context("video meta")?;
    Ok(gst_video::VideoOverlayRectangle::new_raw(
        &buffer,
        placed.x as i32,
        placed.y as i32,
        width,
        height,
        gst_video::VideoOverlayFormatFlags::empty(),
    ))
}
