//! The canvas's background image: an appsrc on its own compositor pad just above the background colour, fed one
//! decoded still picture about once a second (the compositor shows a pad's last picture until the next).
//! The branch is made when the first picture is shown, with the mixer running: a compositor pad that never gets
//! data from the start would hold the whole mix back. For the same reason a hidden picture (a template without
//! one) keeps feeding its pad, drawn transparent: a pad that stops getting data stalled the whole output.

use anyhow::{Context, Result};
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Above the background colour (z 0); tiles start above it.
pub const ZORDER: u32 = 1;

struct Branch {
    src: gst_app::AppSrc,
    pad: gst::Pad,
}

pub struct BackgroundImage {
    canvas: (i32, i32),
    branch: Mutex<Option<Branch>>,
    /// The picture last shown; it goes on feeding the branch while hidden.
    image: Mutex<Option<(gst::Buffer, gst::Caps)>>,
    shown: AtomicBool,
}

impl BackgroundImage {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            canvas: (width as i32, height as i32),
            branch: Mutex::new(None),
            image: Mutex::new(None),
            shown: AtomicBool::new(false),
        }
    }

    fn make_branch(&self, pipeline: &gst::Pipeline, compositor: &gst::Element) -> Result<Branch> {
        let src = gst_app::AppSrc::builder()
            .name("background-image")
            .format(gst::Format::Time)
            .is_live(true)
            .max_buffers(2)
            .build();
        src.set_property_from_str("leaky-type", "downstream");
        pipeline.add(&src)?;
        let pad = compositor.request_pad_simple("sink_%u").context("compositor pad")?;
        pad.set_property("zorder", ZORDER);
        pad.set_property("width", self.canvas.0);
        pad.set_property("height", self.canvas.1);
        src.static_pad("src").expect("appsrc src").link(&pad)?;
        src.sync_state_with_parent()?;
        Ok(Branch { src, pad })
    }

    /// Shows `image` from now on (None: only the background colour).
    pub fn set(&self, image: Option<(gst::Buffer, gst::Caps)>) {
        let shown = image.is_some();
        if image.is_some() {
            *self.image.lock().unwrap() = image;
        }
        self.shown.store(shown, Ordering::Relaxed);
        if let Some(branch) = self.branch.lock().unwrap().as_ref() {
            branch.pad.set_property("alpha", Self::alpha(shown));
        }
    }

    fn alpha(shown: bool) -> f64 {
        if shown {
            1.0
        } else {
            0.0
        }
    }

    /// Pushes the current picture stamped `running_time` (transparent while hidden); makes the branch on the first
    /// one shown.
    pub fn refresh(&self, pipeline: &gst::Pipeline, compositor: &gst::Element, running_time: Option<gst::ClockTime>) {
        let (Some(pts), Some((buffer, caps))) = (running_time, self.image.lock().unwrap().clone()) else {
            return;
        };
        let shown = self.shown.load(Ordering::Relaxed);
        let mut branch = self.branch.lock().unwrap();
        if branch.is_none() && !shown {
            return;
        }
        if branch.is_none() {
            match self.make_branch(pipeline, compositor) {
                Ok(made) => *branch = Some(made),
                Err(e) => {
                    tracing::warn!("background image not shown: {e:#}");
                    return;
                }
            }
        }
        let branch = branch.as_ref().expect("made above");
        if branch.src.caps().as_ref() != Some(&caps) {
            branch.src.set_caps(Some(&caps));
        }
        branch.pad.set_property("alpha", Self::alpha(shown));
        let mut frame = buffer;
        frame.make_mut().set_pts(pts);
        let _ = branch.src.push_buffer(frame);
    }
}
