//! One participant inside the mixer: `appsrc ! videocrop` into a compositor pad, and their `Voice` into the
//! audiomixer. Placement and cropping (fill) are set live; the name label is an overlay the stage draws
//! (`overlay_label`).

use super::voice::{input_src, Voice};
use super::Mixer;
use crate::call::participant::Participant;
use crate::call::tap::Subscription;
use crate::gst_util::make;
use crate::layout::template::Fit;
use crate::layout::Rect;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::sync::Arc;

/// How a tile looks now; `rect: None` hides it (still heard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileLook {
    pub rect: Option<Rect>,
    pub z: u32,
    pub fit: Fit,
}

/// A picture's size and the size it is drawn at.
type Scaling = ((i32, i32), (i32, i32));

pub struct Tile {
    pub participant: Arc<Participant>,
    video_src: gst_app::AppSrc,
    crop: gst::Element,
    video_pad: gst::Pad,
    video_subscription: Subscription,
    voice: Voice,
    /// The crop applied last, so an unchanged one is not set again (a change renegotiates caps).
    last_crop: std::sync::Mutex<[i32; 4]>,
    /// Source and drawn sizes the scaler was configured for (a new config rebuilds the pad's converter).
    last_scaling: std::sync::Mutex<Option<Scaling>>,
    placeholder: (gst::Buffer, gst::Caps),
    showing_placeholder: std::sync::atomic::AtomicBool,
    attached_ms: u64,
    video_timeout_ms: u64,
}

/// A new participant without any video yet gets the placeholder this soon.
const FIRST_VIDEO_GRACE_MS: u64 = 2000;

/// Left, right, top, bottom pixels to crop from a `src_w`x`src_h` picture so it fills a tile of `rect`'s shape.
pub fn fill_crop(src_w: i32, src_h: i32, rect: Rect) -> [i32; 4] {
    if src_w <= 0 || src_h <= 0 || rect.w <= 0 || rect.h <= 0 {
        return [0; 4];
    }
    let (sw, sh, tw, th) = (i64::from(src_w), i64::from(src_h), i64::from(rect.w), i64::from(rect.h));
    if sw * th > tw * sh {
        let keep = (sh * tw / th) as i32;
        let side = (src_w - keep) / 2;
        [side, src_w - keep - side, 0, 0]
    } else {
        let keep = (sw * th / tw) as i32;
        let side = (src_h - keep) / 2;
        [0, 0, side, src_h - keep - side]
    }
}

impl Tile {
    pub(super) fn attach(mixer: &Mixer, participant: Arc<Participant>) -> Result<Self> {
        let video_src = input_src(format!("video-{}", participant.id), mixer.input_latency, 3);
        let crop = make("videocrop")?;
        let elements: [&gst::Element; 2] = [video_src.upcast_ref(), &crop];
        mixer.pipeline.add_many(elements)?;
        video_src.link(&crop)?;
        let video_pad = mixer
            .compositor
            .request_pad_simple("sink_%u")
            .context("compositor pad")?;
        video_pad.set_property("alpha", 0.0f64);
        crop.static_pad("src").expect("videocrop src").link(&video_pad)?;
        for element in elements {
            element.sync_state_with_parent()?;
        }
        let video_subscription = participant.video.subscribe(video_src.clone());
        let voice = Voice::attach(&mixer.pipeline, &mixer.audiomixer, &participant, mixer.input_latency)?;
        Ok(Self {
            video_src,
            crop,
            video_pad,
            video_subscription,
            voice,
            placeholder: super::placeholder::frame(&participant.name),
            last_crop: std::sync::Mutex::new([0; 4]),
            last_scaling: std::sync::Mutex::new(None),
            showing_placeholder: std::sync::atomic::AtomicBool::new(false),
            attached_ms: crate::wall_clock::now_ms(),
            video_timeout_ms: mixer.video_timeout.as_millis() as u64,
            participant,
        })
    }

    /// The participant's picture size, once known.
    fn source_size(&self) -> Option<(i32, i32)> {
        let caps = self.participant.video.caps()?;
        let s = caps.structure(0)?;
        Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
    }

    pub fn show(&self, look: &TileLook) {
        // An unseen tile needs no decoded video (the tap stops decoding when no broadcast shows it).
        self.video_subscription.set_wanted(look.rect.is_some());
        let Some(rect) = look.rect else {
            self.video_pad.set_property("alpha", 0.0f64);
            return;
        };
        let crop = match (look.fit, self.source_size()) {
            (Fit::Fill, Some((w, h))) => fill_crop(w, h, rect),
            (Fit::Fit, Some(size)) => super::scaling::trim_to_tile(size, (rect.w, rect.h)).unwrap_or([0; 4]),
            _ => [0; 4],
        };
        let mut last = self.last_crop.lock().unwrap();
        if *last != crop {
            for (name, value) in ["left", "right", "top", "bottom"].iter().zip(crop) {
                self.crop.set_property(name, value);
            }
            *last = crop;
        }
        drop(last);
        if let Some((w, h)) = self.source_size() {
            let src = (w - crop[0] - crop[1], h - crop[2] - crop[3]);
            let sizes = Some((src, (rect.w, rect.h)));
            let mut last = self.last_scaling.lock().unwrap();
            if *last != sizes {
                let config = super::scaling::converter_config(src, (rect.w, rect.h));
                self.video_pad.set_property("converter-config", config);
                *last = sizes;
            }
        }
        let policy = if look.fit == Fit::Fit {
            "keep-aspect-ratio"
        } else {
            "none"
        };
        self.video_pad.set_property_from_str("sizing-policy", policy);
        self.video_pad.set_property("xpos", rect.x);
        self.video_pad.set_property("ypos", rect.y);
        self.video_pad.set_property("width", rect.w);
        self.video_pad.set_property("height", rect.h);
        self.video_pad
            .set_property("zorder", look.z + super::background_image::ZORDER + 1);
        self.video_pad.set_property("alpha", 1.0f64);
    }

    /// True while the placeholder stands in for silent video: a colour, which only the name label tells apart.
    pub fn showing_placeholder(&self) -> bool {
        self.showing_placeholder.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Shows the placeholder when the participant's video is silent, refreshing it about once a second
    /// (called from the relayout tick); real video takes over as soon as it flows again.
    pub fn keep_picture(&self, running_time: Option<gst::ClockTime>) {
        use std::sync::atomic::Ordering;
        let now = crate::wall_clock::now_ms();
        let last = self.participant.video.last_buffer_ms();
        let silent = if last == 0 {
            now.saturating_sub(self.attached_ms) > FIRST_VIDEO_GRACE_MS
        } else {
            now.saturating_sub(last) > self.video_timeout_ms
        };
        let was = self.showing_placeholder.swap(silent, Ordering::Relaxed);
        if !silent {
            return;
        }
        let Some(pts) = running_time else { return };
        let (buffer, caps) = &self.placeholder;
        if !was {
            self.video_src.set_caps(Some(caps));
            // The real video's caps must be set again when it comes back.
            self.video_subscription.resend_caps();
        }
        let mut frame = buffer.copy();
        frame.make_mut().set_pts(pts);
        let _ = self.video_src.push_buffer(frame);
    }

    pub(super) fn detach(self, mixer: &Mixer) {
        drop(self.video_subscription);
        crate::gst_util::retire(&mixer.pipeline, &[self.video_src.upcast_ref(), &self.crop]);
        mixer.compositor.release_request_pad(&self.video_pad);
        self.voice.detach(&mixer.pipeline, &mixer.audiomixer);
    }
}

#[cfg(test)]
mod tests {
    use super::fill_crop;
    use crate::layout::Rect;

    #[test]
    fn crop_fills_the_tile_shape() {
        let square = Rect {
            x: 0,
            y: 0,
            w: 100,
            h: 100,
        };
        assert_eq!(fill_crop(640, 360, square), [140, 140, 0, 0]);
        let wide = Rect {
            x: 0,
            y: 0,
            w: 320,
            h: 90,
        };
        assert_eq!(fill_crop(640, 360, wide), [0, 0, 90, 90]);
        let same = Rect {
            x: 0,
            y: 0,
            w: 320,
            h: 180,
        };
        assert_eq!(fill_crop(640, 360, same), [0, 0, 0, 0]);
    }
}
