//! Tells the owner each time an HLS output's served playlist lists a new segment (`PlaylistWritten`), so the
//! segment and then the playlist can be uploaded. The playlist is written by the probe `hls_writer` added to
//! the sink's pad when the pipeline was built, on the first buffer after a cut (`hls::after_each_cut`); probes
//! run in the order they were added, so the report comes once it is written.

use super::events::{OutputEvent, Reporter};
use gst::prelude::*;

pub fn report_cuts(hlssink: &gst::Element, reporter: Reporter) {
    let Some(pad) = hlssink.static_pad("sink") else {
        return;
    };
    // The reporter never blocks this streaming thread.
    super::hls::after_each_cut(&pad, move || reporter.send(OutputEvent::PlaylistWritten));
}
