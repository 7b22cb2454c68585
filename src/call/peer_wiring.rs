//! What every receiving webrtcbin does with a new track, whoever the peer is: ask the source whose track it is,
//! decode it once and attach it to that participant's taps. A track nobody claims is discarded.

use super::decode::{link_decoder, link_discard, LinkedTrack, TrackKind};
use super::participant::Participant;
use gst::prelude::*;
use std::sync::Arc;

/// What is known of a new track before it is decoded, for the source to say whose it is.
#[derive(Debug)]
pub struct NewTrack {
    /// The transceiver's mid (an SFU like Janus says which feed it put on which mid).
    pub mid: Option<String>,
    /// From the pad's RTP caps (`media`).
    pub kind: Option<TrackKind>,
}

impl NewTrack {
    fn of(pad: &gst::Pad) -> Self {
        let mid = pad
            .property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
            .and_then(|t| t.mid())
            .map(|m| m.to_string());
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let kind = caps
            .structure(0)
            .and_then(|s| s.get::<&str>("media").ok())
            .and_then(|media| match media {
                "video" => Some(TrackKind::Video),
                "audio" => Some(TrackKind::Audio),
                _ => None,
            });
        Self { mid, kind }
    }
}

/// Decodes every track `webrtc` (in `pipeline`) receives into the taps of the participant `owner` names; `owner`
/// says why when a track is not wanted. The callback holds the pipeline weakly, so it never keeps it alive.
pub fn decode_tracks<F>(pipeline: &gst::Pipeline, webrtc: &gst::Element, owner: F)
where
    F: Fn(&NewTrack) -> Result<Arc<Participant>, String> + Send + Sync + 'static,
{
    let pipeline = pipeline.downgrade();
    // Pads appear on streaming threads, outside any span: log in the span that wired the peer (a broadcast's,
    // a participant's), so these lines say whose they are.
    let span = tracing::Span::current();
    webrtc.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let _entered = span.enter();
        let track = NewTrack::of(pad);
        let linked = owner(&track).and_then(|participant| {
            let linked = link_decoder(&pipeline, pad).map_err(|e| format!("{e:#}"))?;
            attach(&participant, &linked, &track);
            Ok(())
        });
        if let Err(reason) = linked {
            tracing::warn!(mid = ?track.mid, "not decoding a track: {reason}");
            let _ = link_discard(&pipeline, pad);
        }
    });
}

/// Hands a decoded track to the participant's taps: picture (gated while nobody shows it), sound, the parsed
/// H.264 the zero-transcode path forwards, and the track as received (for track recordings). Every kind of
/// participant (WHIP, Janus, plain RTP) goes through it.
pub fn attach(participant: &Participant, linked: &LinkedTrack, track: &NewTrack) {
    tracing::debug!(participant_id = %participant.id, mid = ?track.mid, "decoding {:?}", linked.kind);
    match linked.kind {
        TrackKind::Video => {
            participant.video.attach(&linked.appsink);
            participant.video.gate_decoder(linked);
        }
        TrackKind::Audio => participant.audio.attach(&linked.appsink),
    }
    if let Some(parsed) = &linked.h264 {
        participant.h264.attach(parsed);
    }
    // Upstream of the decoder's own pad, where the video gate drops what nobody shows: recordings of the
    // track as received still get every frame.
    if let Some(encoded) = linked.decoder_sink.peer() {
        match linked.kind {
            TrackKind::Video => participant.encoded_video.attach_pad(&encoded),
            TrackKind::Audio => participant.encoded_audio.attach_pad(&encoded),
        }
    }
}
