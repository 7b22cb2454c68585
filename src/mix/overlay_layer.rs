//! Overlays on air: an `overlaycomposition` element between the compositor and the encoder, handed the pictures
//! of `overlay_render` as one composition per change. Each frame it blends that composition's rectangles (only
//! their area; the pictures are converted once and cached inside the composition) into the canvas.
//!
//! Not a compositor pad: the compositor outputs I420, and GStreamer 1.22's compositor then refuses pads with an
//! alpha channel, so titles and logos could not be anything but opaque rectangles there.
//!
//! Fades: an overlay added fades in and one removed fades out (`overlay_fade`) by the global alpha of its
//! rectangle, set per frame on a new rectangle over the same pixels: no picture is redrawn or copied. While
//! nothing fades, every frame gets the same composition (no work beyond a clone of a refcounted object).
//!
//! Layout cross-fades: one frame of the composite, taken as it passes (`cross_fade`), goes beneath every overlay
//! fully on and fades out like a removed overlay while the new arrangement shows through it.
//!
//! Clocks: an overlay may come with its next picture and the running time it takes over (a clock's next second,
//! drawn ahead), switched on the first frame of that time: the text changes on the frame it belongs to, however
//! late or in whatever bursts the frames are composed.

use super::overlay_fade::Fade;
use super::overlay_render::Placed;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::sync::{Arc, Mutex};

/// One overlay as the layer is given it: its id (what tells an overlay kept from one added or removed), how
/// long it fades, and its picture.
pub struct Layered<'a> {
    pub id: &'a str,
    pub fade_ms: u32,
    pub placed: &'a Placed,
    /// The picture that replaces `placed` from the first frame at or after this running time.
    pub then: Option<(&'a Placed, gst::ClockTime)>,
}

/// A picture as the composition takes it.
struct Picture {
    /// BGRA (a cross-fade's frame: AYUV) pixels with their video meta, shared by every rectangle made of them.
    pixels: gst::Buffer,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
}

impl Picture {
    fn of(placed: &Placed) -> Result<Self> {
        let (width, height) = placed.picture.dimensions();
        Ok(Self {
            pixels: pixels(placed)?,
            x: placed.x as i32,
            y: placed.y as i32,
            width,
            height,
        })
    }
}

/// An overlay on air (or fading out).
struct Entry {
    id: String,
    fade_ms: u32,
    fade: Fade,
    picture: Picture,
    /// The next picture and the running time (ns) from which it shows.
    then: Option<(Picture, u64)>,
}

/// The id of the frames layout cross-fades fade from (ids given by callers have no control characters).
const CROSS_FADE_ID: &str = "\u{0}cross-fade";

#[derive(Default)]
struct OnAir {
    /// A cross-fade asked for: its length, and who waits for its frame to be taken.
    cross_fade: Option<(u32, std::sync::mpsc::SyncSender<()>)>,
    entries: Vec<Entry>,
    /// What the next frame gets while nothing fades; None: nothing (the frame goes through untouched).
    composition: Option<gst_video::VideoOverlayComposition>,
    fading: bool,
    /// The earliest running time (ns) at which an entry's next picture takes over.
    switch_at: Option<u64>,
}

pub struct OverlayLayer {
    element: gst::Element,
    on_air: Arc<Mutex<OnAir>>,
}

impl OverlayLayer {
    pub fn new() -> Result<Self> {
        let element = crate::gst_util::make("overlaycomposition")?;
        let on_air: Arc<Mutex<OnAir>> = Arc::default();
        let drawn = on_air.clone();
        // On the compositor's streaming thread, every frame.
        element.connect("draw", false, move |args| {
            let mut on_air = drawn.lock().unwrap();
            // Told first (nobody waiting any more: it cuts), then taken while the layer is locked: the new
            // arrangement reaches the compositor's next frames, and its overlays wait for this lock.
            if let Some((ms, _)) = on_air.cross_fade.take().filter(|(_, taken)| taken.try_send(()).is_ok()) {
                let sample = args.get(1).and_then(|v| v.get::<gst::Sample>().ok());
                match sample.as_ref().map(super::overlay_snapshot::ayuv_of) {
                    Some(Ok((pixels, width, height))) => on_air.fade_from(pixels, width, height, ms),
                    Some(Err(e)) => tracing::warn!("no cross-fade: {e:#}"),
                    None => tracing::warn!("no cross-fade: a frame without its sample"),
                }
            }
            if on_air.fading || on_air.switch_at.is_some() {
                let sample = args.get(1).and_then(|v| v.get::<gst::Sample>().ok());
                let pts = sample.as_ref().and_then(|s| s.buffer().and_then(|b| b.pts()));
                let running = sample
                    .as_ref()
                    .zip(pts)
                    .and_then(|(s, pts)| s.segment()?.downcast_ref::<gst::ClockTime>()?.to_running_time(pts));
                if on_air.fading
                    || on_air
                        .switch_at
                        .zip(running)
                        .is_some_and(|(at, rt)| rt.nseconds() >= at)
                {
                    on_air.advance(pts.map(gst::ClockTime::nseconds), running.map(gst::ClockTime::nseconds));
                }
            }
            Some(on_air.composition.clone().to_value())
        });
        Ok(Self { element, on_air })
    }

    /// See `Mixer::cross_fade`. A cross-fade asked for again before its frame was taken replaces it.
    pub fn cross_fade(&self, ms: u32) -> std::sync::mpsc::Receiver<()> {
        let (taken, rx) = std::sync::mpsc::sync_channel(1);
        self.on_air.lock().unwrap().cross_fade = Some((ms, taken));
        rx
    }

    /// The element to link after the compositor's output caps.
    pub fn element(&self) -> &gst::Element {
        &self.element
    }

    /// Puts `overlays` on air from the next frame (in the order given: later ones on top); empty takes all off.
    /// An id not on air before fades in, one no longer given fades out (under the others), one kept changes at
    /// once.
    pub fn show(&self, overlays: &[Layered]) -> Result<()> {
        let mut made = Vec::with_capacity(overlays.len());
        for o in overlays {
            let then = match o.then {
                Some((placed, at)) => Some((Picture::of(placed)?, at.nseconds())),
                None => None,
            };
            made.push((o, Picture::of(o.placed)?, then));
        }
        let mut on_air = self.on_air.lock().unwrap();
        let mut before = std::mem::take(&mut on_air.entries);
        let mut entries: Vec<Entry> = Vec::with_capacity(before.len() + made.len());
        // Those leaving first: they fade out beneath what stays.
        for mut entry in before.extract_if(.., |e| !overlays.iter().any(|o| o.id == e.id)) {
            entry.fade.towards(0.0, entry.fade_ms);
            if !entry.fade.gone() {
                entries.push(entry);
            }
        }
        for (o, picture, then) in made {
            let fade = match before.iter().position(|e| e.id == o.id) {
                Some(i) => {
                    let mut fade = before.swap_remove(i).fade;
                    fade.towards(1.0, o.fade_ms);
                    fade
                }
                None => Fade::appearing(o.fade_ms),
            };
            entries.push(Entry {
                id: o.id.to_string(),
                fade_ms: o.fade_ms,
                fade,
                picture,
                then,
            });
        }
        on_air.entries = entries;
        on_air.fading = on_air.entries.iter().any(|e| !e.fade.settled());
        on_air.switch_at = on_air.next_switch();
        on_air.composition = composition(&on_air.entries)?;
        Ok(())
    }
}

impl OnAir {
    /// One frame of the fades under way, and of the switches due: each fading rectangle's alpha at `pts`, those
    /// faded out dropped; each next picture due by `running` (the frame's running time) in its place.
    fn advance(&mut self, pts: Option<u64>, running: Option<u64>) {
        for entry in &mut self.entries {
            entry.fade.at(pts);
            if entry.then.as_ref().zip(running).is_some_and(|((_, at), rt)| rt >= *at) {
                entry.picture = entry.then.take().expect("checked").0;
            }
        }
        self.entries.retain(|e| !e.fade.gone());
        self.fading = self.entries.iter().any(|e| !e.fade.settled());
        self.switch_at = self.next_switch();
        match composition(&self.entries) {
            Ok(c) => self.composition = c,
            Err(e) => {
                // Cannot happen with rectangles that were composed before; end the fades rather than log per frame.
                tracing::warn!("overlay fade: {e:#}");
                self.fading = false;
            }
        }
    }
}

impl OnAir {
    /// Puts the frame `pixels` beneath every overlay, fully on, fading out over `ms` from the next frame. A
    /// previous cross-fade's frame still fading goes on above it (the new frame was taken without it).
    fn fade_from(&mut self, pixels: gst::Buffer, width: u32, height: u32, ms: u32) {
        let mut fade = Fade::appearing(0);
        fade.towards(0.0, ms);
        let picture = Picture {
            pixels,
            x: 0,
            y: 0,
            width,
            height,
        };
        self.entries.insert(
            0,
            Entry {
                id: CROSS_FADE_ID.to_string(),
                fade_ms: ms,
                fade,
                picture,
                then: None,
            },
        );
        self.fading = true;
        match composition(&self.entries) {
            Ok(c) => self.composition = c,
            Err(e) => tracing::warn!("cross-fade: {e:#}"),
        }
    }

    fn next_switch(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| e.then.as_ref().map(|(_, at)| *at))
            .min()
    }
}

/// The rectangles of `entries` at their alphas, as one composition; None when nothing shows.
fn composition(entries: &[Entry]) -> Result<Option<gst_video::VideoOverlayComposition>> {
    let mut rectangles = Vec::with_capacity(entries.len());
    for entry in entries.iter().filter(|e| e.fade.alpha() > 0.0) {
        let p = &entry.picture;
        let mut rectangle = gst_video::VideoOverlayRectangle::new_raw(
            &p.pixels,
            p.x,
            p.y,
            p.width,
            p.height,
            gst_video::VideoOverlayFormatFlags::empty(),
        );
        if entry.fade.alpha() < 1.0 {
            rectangle
                .get_mut()
                .context("new rectangle")?
                .set_global_alpha(entry.fade.alpha() as f32);
        }
        rectangles.push(rectangle);
    }
    if rectangles.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        gst_video::VideoOverlayComposition::new(rectangles.iter()).context("overlay composition")?,
    ))
}

/// A picture in the overlay format GStreamer blends from: BGRA bytes (ARGB words on little-endian machines),
/// straight alpha.
fn pixels(placed: &Placed) -> Result<gst::Buffer> {
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
    Ok(buffer)
}
