//! SRT output: the broadcast's own H.264 and AAC (no encode) in MPEG-TS over `srtsink`.
//!
//! srtsink's own reconnection is off: a broken or refused connection is an error on the bus, and the runner
//! retries on the output's backoff like RTMP (one retry policy, one status for both).

use super::srt_url::SrtUrl;
use super::{OutputPipeline, Tracks};
use crate::gst_util::make;
use anyhow::Result;
use gst::prelude::*;

/// MPEG-TS packets per buffer: 7 x 188 = 1316 bytes, the payload of one SRT live-mode packet. Unaligned buffers
/// (mpegtsmux's default) are larger than a packet, and a receiver lost the keyframe with its SPS/PPS.
const TS_PACKETS_PER_BUFFER: i32 = 7;

/// `audio_only`: the broadcast has no video; MPEG-TS carries the AAC alone.
pub fn build(url: &SrtUrl, audio_only: bool) -> Result<OutputPipeline> {
    let pipeline = gst::Pipeline::with_name("srt-output");
    let tracks = Tracks::add(&pipeline, audio_only)?;
    let mux = make("mpegtsmux")?;
    mux.set_property("alignment", TS_PACKETS_PER_BUFFER);
    let sink = make("srtsink")?;
    // Host and port only: the secrets go in properties (srtsink's `uri` is readable, its passphrase is not).
    sink.set_property("uri", url.address());
    sink.set_property_from_str("mode", "caller");
    if let Some(passphrase) = url.passphrase() {
        sink.set_property("passphrase", passphrase);
    }
    if let Some(streamid) = url.streamid() {
        sink.set_property("streamid", streamid);
    }
    if let Some(ms) = url.latency_ms() {
        sink.set_property("latency", ms as i32);
    }
    sink.set_property("auto-reconnect", false);
    sink.set_property("sync", false);
    crate::gst_util::add_and_link(&pipeline, &[&mux, &sink])?;
    if let Some((_, h264parse)) = &tracks.video {
        // SPS and PPS before every keyframe: a receiver that joins (or reconnects) mid-stream can decode from
        // the next keyframe.
        h264parse.set_property("config-interval", -1i32);
        h264parse.link(&mux)?;
    }
    tracks.audio.1.link(&mux)?;
    Ok(OutputPipeline {
        pipeline,
        video: tracks.video_src(),
        audio: tracks.audio.0,
        sink,
        recording: None,
    })
}

/// Whether `sink` (an srtsink) got media to a peer: it counts only bytes SRT accepted on a connected socket, so
/// zero while connecting and after a refused handshake (wrong passphrase).
pub fn sent(sink: &gst::Element) -> bool {
    sink.property::<Option<gst::Structure>>("stats")
        .and_then(|stats| stats.get::<u64>("bytes-sent-total").ok())
        .is_some_and(|sent| sent > 0)
}

/// A hint for errors whose SRT wording leaves the operator guessing (`was_live`: media had gone through).
///
/// srtsink names a refused passphrase only when the refusal comes while it waits to send; when it comes first
/// (on a near receiver it does) the next send finds the socket closed: "Connection does not exist". A socket
/// closed before anything went through was refused at the handshake, and SRT refuses a handshake for a
/// passphrase mismatch, a stream id the receiver does not take, or a receiver busy with another caller.
pub fn explain(text: &str, was_live: bool) -> Option<&'static str> {
    if text.contains("Failed to authenticate") {
        Some("the receiver refused the passphrase: check it, or that both sides use one")
    } else if (text.contains("Connection does not exist") || text.contains("Socket is broken or closed")) && !was_live {
        Some(
            "the receiver refused the connection: a passphrase that differs from its own (or one where it \
             expects none, or none where it expects one), a stream id it does not take, or it is busy",
        )
    } else if text.contains("Connection timeout") {
        Some("no SRT answer from the receiver: is it listening on that host and port (UDP)?")
    } else {
        None
    }
}
