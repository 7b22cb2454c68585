//! Depayload + decode chains from webrtcbin's RTP pads to raw media, ending in an appsink per track.

use crate::gst_util::make;
use anyhow::{anyhow, Result};
use gst::prelude::*;

/// Raw audio format every participant is normalised to before mixing (Opus decodes to it natively).
pub const MIX_AUDIO_CAPS: &str = "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
}

/// Video and audio codecs we decode, by RTP encoding name.
pub const SUPPORTED_ENCODINGS: &[&str] = &["VP8", "VP9", "H264", "OPUS"];

/// Factories for one encoding: (kind, elements from depayloader to raw output).
fn chain_for(encoding: &str) -> Option<(TrackKind, &'static [&'static str])> {
    match encoding {
        "VP8" => Some((TrackKind::Video, &["rtpvp8depay", "vp8dec"])),
        "VP9" => Some((TrackKind::Video, &["rtpvp9depay", "vp9dec"])),
        "H264" => Some((TrackKind::Video, &["rtph264depay", "h264parse", "avdec_h264"])),
        "OPUS" => Some((
            TrackKind::Audio,
            &["rtpopusdepay", "opusdec", "audioconvert", "audioresample"],
        )),
        _ => None,
    }
}

/// The RTP encoding name on a webrtcbin source pad.
pub fn pad_encoding(pad: &gst::Pad) -> Option<String> {
    let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)))?;
    let s = caps.structure(0)?;
    s.get::<&str>("encoding-name").ok().map(|e| e.to_ascii_uppercase())
}

/// A track linked to its decoder.
pub struct LinkedTrack {
    pub kind: TrackKind,
    /// Decoded media.
    pub appsink: gst_app::AppSink,
    /// The decoder's sink pad, where video is gated (not decoded while nobody shows it).
    pub decoder_sink: gst::Pad,
    /// The depayloader's sink pad: every keyframe request of the track leaves through it.
    pub depayloader_sink: gst::Pad,
    /// For H.264: the element whose source pad carries the parsed stream before decoding.
    pub h264: Option<gst::Element>,
}

/// The appsink a decoded track ends in, added while its pipeline is already PLAYING. Not async: an async sink
/// added to a PLAYING pipeline makes the whole pipeline lose its state (back to PAUSED until that sink prerolls),
/// and a track linked meanwhile is only set to PAUSED. The video sink of a participant nobody shows never prerolls
/// (its decoder is gated), so when webrtcbin gave the video pad first, the audio sink linked after it held its
/// first buffer in PAUSED for good: a participant beyond `max_tiles` was never heard (8 runs in 68 here).
fn track_sink() -> gst_app::AppSink {
    gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        .max_buffers(2)
        .build()
}

/// Builds `depay ! decoder ! ... ! appsink` in `pipeline`, links `pad` to it and starts it, or returns an error
/// for codecs we do not decode.
pub fn link_decoder(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<LinkedTrack> {
    let encoding = pad_encoding(pad).ok_or_else(|| anyhow!("pad without RTP caps"))?;
    let (kind, factories) = chain_for(&encoding).ok_or_else(|| anyhow!("unsupported encoding {encoding}"))?;
    let mut elements = factories.iter().map(|f| make(f)).collect::<Result<Vec<_>>>()?;
    // The parsed H.264 is also what the zero-transcode path forwards: SPS/PPS with every keyframe, so the
    // outputs can start on any of them. Its format stays what the decoder asks for: forcing Annex B here made
    // avdec_h264 lose the first slice of multi-slice pictures.
    let h264 = elements
        .iter()
        .find(|e| e.factory().is_some_and(|f| f.name() == "h264parse"))
        .cloned();
    if let Some(parse) = &h264 {
        parse.set_property("config-interval", -1i32);
    }
    // A decoder that starts mid-stream asks the sender for a keyframe (PLI) instead of waiting for the next one;
    // those requests leave through the depayloader's sink pad, where the track's `KeyframeRequester` throttles them.
    let depay = &elements[0];
    for property in ["request-keyframe", "wait-for-keyframe"] {
        if depay.has_property(property) {
            depay.set_property(property, true);
        }
    }
    if kind == TrackKind::Audio {
        let filter = make("capsfilter")?;
        filter.set_property("caps", MIX_AUDIO_CAPS.parse::<gst::Caps>()?);
        elements.push(filter);
    }
    let appsink = track_sink();
    elements.push(appsink.clone().upcast());
    pipeline.add_many(&elements)?;
    gst::Element::link_many(&elements)?;
    for element in &elements {
        element.sync_state_with_parent()?;
    }
    let sink = elements[0]
        .static_pad("sink")
        .ok_or_else(|| anyhow!("depayloader has no sink pad"))?;
    pad.link(&sink)?;
    // The decoder is the last element before any conversion: the one after the depayloader, parser and filter.
    let decoder = match kind {
        TrackKind::Video => &elements[factories.len() - 1],
        TrackKind::Audio => &elements[1],
    };
    let decoder_sink = decoder
        .static_pad("sink")
        .ok_or_else(|| anyhow!("decoder has no sink pad"))?;
    Ok(LinkedTrack {
        kind,
        appsink,
        decoder_sink,
        depayloader_sink: sink,
        h264,
    })
}

/// Swallows a track we do not use, so webrtcbin does not error on an unlinked pad.
pub fn link_discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<()> {
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    pad.link(&sink.static_pad("sink").expect("fakesink has a sink pad"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::track_sink;
    use gst::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Adds `src ! sink` to the PLAYING `pipeline` the way a leg links a track (elements synced with the parent);
    /// a `drop_all` source's buffers never reach the sink, as a gated decoder's never do.
    fn add_track(pipeline: &gst::Pipeline, factory: &str, drop_all: bool) -> gst_app::AppSink {
        let src = gst::ElementFactory::make(factory)
            .property("is-live", true)
            .build()
            .expect("test source");
        let sink = track_sink();
        pipeline.add_many([&src, sink.upcast_ref()]).unwrap();
        src.link(&sink).unwrap();
        if drop_all {
            src.static_pad("src")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, |_, _| gst::PadProbeReturn::Drop);
        }
        sink.sync_state_with_parent().unwrap();
        src.sync_state_with_parent().unwrap();
        sink
    }

    #[test]
    fn a_track_linked_after_one_that_never_gets_a_buffer_still_flows() {
        gst::init().expect("GStreamer");
        let pipeline = gst::Pipeline::new();
        pipeline.set_state(gst::State::Playing).unwrap();
        // The picture of a participant nobody shows: linked first, never a buffer.
        let _video = add_track(&pipeline, "videotestsrc", true);
        // Their sound, linked right after.
        let audio = add_track(&pipeline, "audiotestsrc", false);
        let samples = Arc::new(AtomicU64::new(0));
        let counted = samples.clone();
        audio.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    counted.fetch_add(1, Ordering::Relaxed);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        // 20 buffers of audiotestsrc (1024 samples each by default) are about half a second of sound.
        let deadline = Instant::now() + Duration::from_secs(5);
        while samples.load(Ordering::Relaxed) < 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (_, state, pending) = pipeline.state(gst::ClockTime::ZERO);
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(
            samples.load(Ordering::Relaxed) >= 20,
            "{} audio samples in 5 s; pipeline {state:?} (pending {pending:?})",
            samples.load(Ordering::Relaxed)
        );
    }
}
