//! Overlays on air: a pass-through element between the compositor and the encoder, whose output pad blends the
//! pictures of `overlay_render` (converted once per change into the canvas's planes, `overlay_planes`) into each
//! frame, in place, only under each picture.
//!
//! Not a compositor pad: the compositor outputs I420, and GStreamer 1.22's compositor then refuses pads with an
//! alpha channel, so titles and logos could not be anything but opaque rectangles there. Not `overlaycomposition`
//! either: its blend costs several times as much per pixel (`overlay_planes`).
//!
//! Fades: an overlay added fades in and one removed fades out (`overlay_fade`) by a global alpha applied as it
//! is blended: no picture is redrawn or copied. While nothing fades, every frame gets the same pictures.
//!
//! Layout cross-fades: one frame of the composite, taken as it passes (`cross_fade`), goes beneath every overlay
//! fully on and fades out like a removed overlay while the new arrangement shows through it.
//!
//! Clocks: an overlay may come with its next picture and the running time it takes over (a clock's next second,
//! drawn ahead), switched on the first frame of that time: the text changes on the frame it belongs to, however
//! late or in whatever bursts the frames are composed.

use super::overlay_fade::Fade;
use super::overlay_planes::Planes;
use super::overlay_render::Placed;
use anyhow::Result;
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

/// A picture as the blend takes it.
type Picture = Planes;

fn picture_of(placed: &Placed) -> Picture {
    Planes::of_rgba(&placed.picture, placed.x, placed.y)
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
        let element = crate::gst_util::make("identity")?;
        let on_air: Arc<Mutex<OnAir>> = Arc::default();
        let drawn = on_air.clone();
        let src = element.static_pad("src").expect("identity src");
        // On the compositor's streaming thread, every frame.
        src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(gst::PadProbeData::Buffer(buffer)) = info.data.as_mut() else {
                return gst::PadProbeReturn::Ok;
            };
            let mut on_air = drawn.lock().unwrap();
            if on_air.entries.is_empty() && on_air.cross_fade.is_none() {
                return gst::PadProbeReturn::Ok;
            }
            let Some(video) = pad
                .current_caps()
                .and_then(|c| gst_video::VideoInfo::from_caps(&c).ok())
            else {
                return gst::PadProbeReturn::Ok;
            };
            // Told first (nobody waiting any more: it cuts), then taken while the layer is locked: the new
            // arrangement reaches the compositor's next frames, and its overlays wait for this lock.
            if let Some((ms, _)) = on_air.cross_fade.take().filter(|(_, taken)| taken.try_send(()).is_ok()) {
                match gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &video)
                    .map_err(|_| anyhow::anyhow!("the frame cannot be read"))
                    .and_then(|frame| Planes::of_frame(&frame))
                {
                    Ok(picture) => on_air.fade_from(picture, ms),
                    Err(e) => tracing::warn!("no cross-fade: {e:#}"),
                }
            }
            if on_air.fading || on_air.switch_at.is_some() {
                let pts = buffer.pts();
                let running = pad
                    .sticky_event::<gst::event::Segment>(0)
                    .zip(pts)
                    .and_then(|(segment, pts)| {
                        segment.segment().downcast_ref::<gst::ClockTime>()?.to_running_time(pts)
                    });
                if on_air.fading
                    || on_air
                        .switch_at
                        .zip(running)
                        .is_some_and(|(at, rt)| rt.nseconds() >= at)
                {
                    on_air.advance(pts.map(gst::ClockTime::nseconds), running.map(gst::ClockTime::nseconds));
                }
            }
            let shown: Vec<&Entry> = on_air.entries.iter().filter(|e| e.fade.alpha() > 0.0).collect();
            if shown.is_empty() {
                return gst::PadProbeReturn::Ok;
            }
            let buffer = buffer.make_mut();
            match gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &video) {
                Ok(mut frame) => {
                    for entry in shown {
                        entry.picture.blend(&mut frame, entry.fade.alpha());
                    }
                }
                Err(_) => tracing::warn!("overlays: a frame that cannot be written"),
            }
            gst::PadProbeReturn::Ok
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
            let then = o.then.map(|(placed, at)| (picture_of(placed), at.nseconds()));
            made.push((o, picture_of(o.placed), then));
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
    }
}

impl OnAir {
    /// Puts the frame `pixels` beneath every overlay, fully on, fading out over `ms` from the next frame. A
    /// previous cross-fade's frame still fading goes on above it (the new frame was taken without it).
    fn fade_from(&mut self, picture: Picture, ms: u32) {
        let mut fade = Fade::appearing(0);
        fade.towards(0.0, ms);
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
    }

    fn next_switch(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| e.then.as_ref().map(|(_, at)| *at))
            .min()
    }
}
