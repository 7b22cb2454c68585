//! RTMP(S) output: FLV over rtmp2sink.

use super::{sources, OutputPipeline};
use crate::gst_util::make;
use crate::secret::RtmpUrl;
use anyhow::Result;
use gst::prelude::*;

pub fn build(url: &RtmpUrl, tls_verify: bool) -> Result<OutputPipeline> {
    let pipeline = gst::Pipeline::with_name("rtmp-output");
    let (video, h264parse, audio, aacparse) = sources(&pipeline)?;
    let mux = make("flvmux")?;
    mux.set_property("streamable", true);
    let sink = make("rtmp2sink")?;
    sink.set_property("location", url.expose());
    if url.is_tls() && !tls_verify {
        // The operator's explicit choice (`tls_verify: false`), said out loud on every connection.
        tracing::warn!(url = %url, "TLS certificate verification is off for this output (tls_verify: false)");
        sink.set_property_from_str("tls-validation-flags", "no-flags");
    }
    sink.set_property("sync", false);
    // Connect when the first media packet comes (not at READY): an output waiting for a keyframe holds no
    // connection. The state change never waits for the server either way.
    sink.set_property("async-connect", false);
    crate::gst_util::add_and_link(&pipeline, &[&mux, &sink])?;
    h264parse.link_pads(None, &mux, Some("video"))?;
    aacparse.link_pads(None, &mux, Some("audio"))?;
    Ok(OutputPipeline {
        pipeline,
        video: Some(video),
        audio,
        sink,
        recording: None,
    })
}

/// Whether `sink` (an rtmp2sink) got its server to take the stream. rtmp2sink sets its connection only after the
/// handshake, `connect` and `publish` succeeded, and its `stats` count that connection's bytes: all zeros until
/// then (also for a server that accepts TCP and never answers the handshake).
pub fn published(sink: &gst::Element) -> bool {
    sink.property::<Option<gst::Structure>>("stats")
        .and_then(|stats| stats.get::<u64>("out-bytes-total").ok())
        .is_some_and(|sent| sent > 0)
}
