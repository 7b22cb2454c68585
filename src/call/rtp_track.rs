//! One track of a plain RTP participant as its sender declares it (no SDP negotiation: the caps come from here).

use super::decode::TrackKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpTrack {
    pub kind: TrackKind,
    /// RTP encoding name, upper case, one of `decode::SUPPORTED_ENCODINGS`.
    pub encoding: String,
    pub payload_type: u8,
    pub clock_rate: u32,
    /// Audio channels (Opus is always declared as 2 in SDP).
    pub channels: Option<u32>,
    /// Packets with another SSRC are dropped; None: any (the first one seen is decoded).
    pub ssrc: Option<u32>,
}

impl RtpTrack {
    /// The caps the jitter buffer and depayloader need, as webrtcbin would give them after negotiation. Video
    /// declares PLI and FIR feedback as a negotiated session would. (With GStreamer 1.22 the RTP session was seen
    /// to send the decoder's keyframe requests as RTCP FIR, since they ask for all headers, with or without these
    /// fields.)
    pub fn caps(&self) -> gst::Caps {
        let media = match self.kind {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        };
        let mut caps = gst::Caps::builder("application/x-rtp")
            .field("media", media)
            .field("clock-rate", self.clock_rate as i32)
            .field("encoding-name", self.encoding.as_str())
            .field("payload", i32::from(self.payload_type));
        if let Some(channels) = self.channels {
            caps = caps.field("encoding-params", channels.to_string());
        }
        if self.kind == TrackKind::Video {
            caps = caps.field("rtcp-fb-nack-pli", true).field("rtcp-fb-ccm-fir", true);
        }
        caps.build()
    }
}
