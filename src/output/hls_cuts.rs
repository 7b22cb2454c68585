//! Tells the owner each time an HLS output's served playlist lists a new segment (`PlaylistWritten`), so the
//! segment and then the playlist can be uploaded. hlssink rewrites its playlist while a cut goes through its sink
//! pad (`hls::after_each_cut`), and the keep-every-segment playlist is published by the probe `hls_vod` added
//! before this one (when the pipeline was built): probes run in the order they were added, so the report comes
//! once both are written.

use super::events::{OutputEvent, Reporter};
use gst::prelude::*;

pub fn report_cuts(hlssink: &gst::Element, reporter: Reporter) {
    let Some(pad) = hlssink.static_pad("sink") else {
        return;
    };
    // The reporter never blocks this streaming thread.
    super::hls::after_each_cut(&pad, move || reporter.send(OutputEvent::PlaylistWritten));
}
