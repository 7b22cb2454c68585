//! Tells the owner each time an HLS output's served playlist lists a new segment (`PlaylistWritten`), so the
//! segment and then the playlist can be uploaded. hlssink rewrites its playlist while a cut's force-key-unit
//! event goes through its sink pad, and the keep-every-segment playlist is published by the probe `hls_vod`
//! added before this one: the first buffer after that event comes once both are written.

use super::events::{OutputEvent, Reporter};
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn report_cuts(hlssink: &gst::Element, reporter: Reporter) {
    let Some(pad) = hlssink.static_pad("sink") else {
        return;
    };
    let cut = Arc::new(AtomicBool::new(false));
    pad.add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Event(event)) if gst_video::ForceKeyUnitEvent::is(event) => {
                    cut.store(true, Ordering::Relaxed);
                }
                Some(gst::PadProbeData::Event(_)) => {}
                // The reporter never blocks this streaming thread.
                Some(_) if cut.swap(false, Ordering::Relaxed) => reporter.send(OutputEvent::PlaylistWritten),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}
