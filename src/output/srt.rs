//! SRT output: the broadcast's own H.264 and AAC (no encode) in MPEG-TS over `srtsink`.
//!
//! Caller mode: srtsink's own reconnection is off: a broken or refused connection is an error on the bus, and
//! the runner retries on the output's backoff like RTMP (one retry policy, one status for both).
//!
//! Listener mode: srtsink listens on the port and sends to every caller it accepted (SRT refuses a caller with
//! another passphrase at the handshake, srtsink never sees it). With no caller it drops what it gets rather
//! than wait (`wait-for-connection` off), so the output runs, counts its callers and stalls nothing.

use super::events::{OutputEvent, Reporter};
use super::srt_url::{SrtMode, SrtUrl};
use super::{OutputPipeline, Tracks};
use crate::gst_util::make;
use anyhow::Result;
use gst::prelude::*;
use secrecy::ExposeSecret;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

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
    // Setting `uri` resets every other SRT setting, so it goes first.
    sink.set_property("uri", url.address());
    match url.mode() {
        SrtMode::Caller => {
            sink.set_property_from_str("mode", "caller");
            sink.set_property("auto-reconnect", false);
        }
        SrtMode::Listener => {
            sink.set_property_from_str("mode", "listener");
            // srtsink 1.22 takes the address and port to bind from the uri only when the uri itself says
            // listener; with `mode` set as a property it bound port 0 ("Binding to 0.0.0.0 (port: 0)" in its
            // debug log) and no caller ever reached it. Set explicitly, they bind where the URL says.
            sink.set_property("localaddress", url.local_address());
            sink.set_property("localport", u32::from(url.port()));
            sink.set_property("wait-for-connection", false);
            if let Some(streamid) = url.streamid() {
                admit_only(&sink, streamid);
            }
        }
    }
    if let Some(passphrase) = url.passphrase() {
        sink.set_property("passphrase", passphrase);
    }
    if let (Some(streamid), SrtMode::Caller) = (url.streamid(), url.mode()) {
        sink.set_property("streamid", streamid);
    }
    if let Some(ms) = url.latency_ms() {
        sink.set_property("latency", ms as i32);
    }
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

/// A listener admits only callers that send `streamid` (srtsink asks `caller-connecting` at each handshake, and a
/// `false` refuses the caller before it gets anything).
fn admit_only(sink: &gst::Element, streamid: &str) {
    let expected = secrecy::SecretString::from(streamid.to_string());
    // Its paramspec says true, but srtsink 1.22 starts with it false and then never asks (every caller got in).
    sink.set_property("authentication", true);
    sink.connect("caller-connecting", false, move |args| {
        let offered = args.get(2).and_then(|v| v.get::<Option<String>>().ok()).flatten();
        Some((offered.as_deref() == Some(expected.expose_secret())).to_value())
    });
}

/// Reports a listener's callers as they come and go (srtsink signals each one it accepts, and each one it drops
/// when a send to it fails: a caller that left is dropped at the next send, one that vanished once SRT's peer
/// timeout, 5 s, broke its socket).
pub fn report_callers(sink: &gst::Element, reporter: &Reporter) {
    let callers = Arc::new(AtomicU32::new(0));
    reporter.send(OutputEvent::Callers(0));
    for (signal, added) in [("caller-added", true), ("caller-removed", false)] {
        let (callers, reporter) = (callers.clone(), reporter.clone());
        sink.connect(signal, false, move |_| {
            let now = match added {
                true => callers.fetch_add(1, Ordering::Relaxed) + 1,
                false => callers.fetch_sub(1, Ordering::Relaxed).saturating_sub(1),
            };
            reporter.send(OutputEvent::Callers(now));
            None
        });
    }
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
///
/// A listener that cannot open its socket was refused the port ("Cannot bind" in srtsink's debug text, which the
/// error's message leaves out).
pub fn explain(text: &str, was_live: bool, mode: SrtMode) -> Option<&'static str> {
    if mode == SrtMode::Listener && text.contains("Could not open resource") {
        Some("cannot listen there: the port is taken (by another program or output) or the host is not an address of this machine")
    } else if text.contains("Failed to authenticate") {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// srtsink binds when it opens (NULL to READY): the address and port of the URL, and frees them after NULL.
    #[test]
    fn a_listener_binds_the_address_and_port_of_its_url() {
        gst::init().unwrap();
        let port = crate::tools::bench::peer::free_port();
        let url = SrtUrl::parse(&format!("srt://127.0.0.1:{port}?mode=listener")).unwrap();
        let output = build(&url, true).unwrap();
        output.pipeline.set_state(gst::State::Ready).unwrap();
        let bound = std::net::UdpSocket::bind(("127.0.0.1", port)).is_err();
        output.pipeline.set_state(gst::State::Null).unwrap();
        assert!(bound, "srtsink did not bind 127.0.0.1:{port}");
        // SRT closes a socket late (its collector thread; 4 s here): the port is free some seconds after NULL.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} still bound 15 s after NULL"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn a_listener_refused_its_port_is_told_why() {
        let text = "/GstPipeline:srt-output/GstSRTSink:srtsink0: Could not open resource for writing.";
        assert!(explain(text, false, SrtMode::Listener).is_some_and(|hint| hint.contains("port is taken")));
        assert_eq!(explain(text, false, SrtMode::Caller), None);
    }
}
