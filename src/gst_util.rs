//! Small GStreamer helpers shared by every pipeline.

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;

/// Creates an element by factory name, naming the factory in the error so a missing plugin is obvious.
pub fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("GStreamer element `{factory}` is missing (is its plugin installed?)"))
}

/// Creates an element and sets string-typed properties with `set_property_from_str`, which parses enums and numbers.
pub fn make_with(factory: &str, props: &[(&str, &str)]) -> Result<gst::Element> {
    let element = make(factory)?;
    for (name, value) in props {
        if element.find_property(name).is_none() {
            return Err(anyhow!("element `{factory}` has no property `{name}`"));
        }
        element.set_property_from_str(name, value);
    }
    Ok(element)
}

/// Adds elements to a bin and links them in order.
pub fn add_and_link(bin: &impl IsA<gst::Bin>, elements: &[&gst::Element]) -> Result<()> {
    bin.add_many(elements.iter().copied())?;
    gst::Element::link_many(elements.iter().copied()).context("linking elements")?;
    Ok(())
}

/// Takes elements out of a running `bin` for good: their state locked first, so a state change of the bin under
/// way on another thread (an async one continuing to PLAYING, say) cannot bring them back up after they are set to
/// NULL; then NULL, then removed. An element disposed of in PLAYING is a GStreamer CRITICAL.
pub fn retire(bin: &impl IsA<gst::Bin>, elements: &[&gst::Element]) {
    for element in elements {
        element.set_locked_state(true);
        let _ = element.set_state(gst::State::Null);
    }
    let _ = bin.remove_many(elements.iter().copied());
    // A state change of the bin that took an element before it was locked may still have been under way.
    for element in elements {
        if element.current_state() != gst::State::Null {
            let _ = element.set_state(gst::State::Null);
        }
    }
}

/// Every factory the service needs; checked once at start so a missing plugin fails early with a clear message.
pub const REQUIRED_FACTORIES: &[&str] = &[
    "webrtcbin",
    "compositor",
    "audiomixer",
    "x264enc",
    "avenc_aac",
    "flvmux",
    "rtmp2sink",
    "srtsink",
    "multifilesink",
    "mpegtsmux",
    "vp8dec",
    "vp9dec",
    "avdec_h264",
    "opusdec",
    "rtpvp8depay",
    "rtpvp9depay",
    "rtph264depay",
    "rtpopusdepay",
    "h264parse",
    "aacparse",
    "matroskamux",
    "webmmux",
    "vp9parse",
    "opusparse",
    "appsrc",
    "appsink",
];

/// Required elements that are not installed.
pub fn missing_factories() -> Vec<&'static str> {
    REQUIRED_FACTORIES
        .iter()
        .copied()
        .filter(|f| gst::ElementFactory::find(f).is_none())
        .collect()
}

/// Elements made at run time besides `REQUIRED_FACTORIES`.
const MORE_FACTORIES: &[&str] = &[
    "audioconvert",
    "audioresample",
    "audiotestsrc",
    "capsfilter",
    "opusenc",
    "queue",
    "tee",
    "identity",
    "videoconvert",
    "videocrop",
    "videotestsrc",
    "videoscale",
    "vp8enc",
    "rtpvp8pay",
    "rtpopuspay",
    "mpegtsmux",
    "decodebin",
    "filesrc",
    "pngdec",
];

/// Makes one of every element once, here, on one thread: plugins load and element classes initialise before broadcasts run, instead of racing each other in several threads at the first
/// broadcast, which is where a broadcast was seen to stall before going live.
fn warm_up() {
    for name in REQUIRED_FACTORIES.iter().chain(MORE_FACTORIES) {
        if let Ok(element) = gst::ElementFactory::make(name).build() {
            drop(element);
        }
    }
}

/// Initialises GStreamer and checks every required element exists.
pub fn init() -> Result<()> {
    gst::init().context("initialising GStreamer")?;
    let missing = missing_factories();
    if missing.is_empty() {
        warm_up();
        Ok(())
    } else {
        Err(anyhow!(
            "GStreamer elements missing: {} (run deploy/install-deps.sh)",
            missing.join(", ")
        ))
    }
}

/// The error text of a bus error message, with the element that raised it.
pub fn describe_error(err: &gst::message::Error) -> String {
    let source = err
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_else(|| "pipeline".into());
    format!("{source}: {}", err.error())
}

/// Swallows the buffer or event a pad probe holds. Never return `PadProbeReturn::Drop` from a gstreamer-rs probe:
/// gstreamer-rs has already taken the buffer or event out of GStreamer's probe info, and GStreamer 1.22 then
/// unrefs the (now empty) data of a dropped item: `gst_mini_object_unref: assertion 'mini_object != NULL'
/// failed`, a CRITICAL each time. `Handled` with the item taken says the probe consumed it.
pub fn swallow(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    info.data.take();
    gst::PadProbeReturn::Handled
}
