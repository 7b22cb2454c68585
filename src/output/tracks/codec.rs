//! Which container a track is written in, by the codec it arrived in: VP8, VP9 and Opus go to WebM, H.264 to
//! Matroska (WebM does not allow it). The bytes are the participant's own: at most a parser rewraps them.

/// A codec we record as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    Vp9,
    H264,
    Opus,
}

impl Codec {
    /// The codec of encoded caps as a depayloader or parser gives them; None for one we do not record.
    pub fn of(caps: &gst::CapsRef) -> Option<Self> {
        match caps.structure(0)?.name().as_str() {
            "video/x-vp8" => Some(Codec::Vp8),
            "video/x-vp9" => Some(Codec::Vp9),
            "video/x-h264" => Some(Codec::H264),
            "audio/x-opus" => Some(Codec::Opus),
            _ => None,
        }
    }

    /// Its name in the manifest: ffprobe's `codec_name` for it.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::H264 => "h264",
            Codec::Opus => "opus",
        }
    }

    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Opus)
    }

    /// The file extension of the container it is written in.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::H264 => "mkv",
            Codec::Vp8 | Codec::Vp9 | Codec::Opus => "webm",
        }
    }

    /// The muxer of that container.
    pub fn muxer(self) -> &'static str {
        match self {
            Codec::H264 => "matroskamux",
            Codec::Vp8 | Codec::Vp9 | Codec::Opus => "webmmux",
        }
    }

    /// What goes between the tap and the muxer: H.264 in the muxer's framing (`avc` with its codec data), VP9
    /// and Opus with the caps fields the muxer needs (picture size, channels and rate), none of it decoding.
    /// VP8 comes from its depayloader with its size already (and 1.22 has no VP8 parser).
    pub fn parser(self) -> Option<&'static str> {
        match self {
            Codec::Vp8 => None,
            Codec::Vp9 => Some("vp9parse"),
            Codec::H264 => Some("h264parse"),
            Codec::Opus => Some("opusparse"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Codec;

    #[test]
    fn each_codec_goes_to_a_container_that_allows_it() {
        gst::init().unwrap();
        let table = [
            ("video/x-vp8", Codec::Vp8, "vp8", "webm", "webmmux"),
            ("video/x-vp9", Codec::Vp9, "vp9", "webm", "webmmux"),
            (
                "video/x-h264,stream-format=avc",
                Codec::H264,
                "h264",
                "mkv",
                "matroskamux",
            ),
            (
                "audio/x-opus,channel-mapping-family=0",
                Codec::Opus,
                "opus",
                "webm",
                "webmmux",
            ),
        ];
        for (caps, codec, name, extension, muxer) in table {
            let caps: gst::Caps = caps.parse().unwrap();
            assert_eq!(Codec::of(&caps), Some(codec), "{caps}");
            assert_eq!(
                (codec.name(), codec.extension(), codec.muxer()),
                (name, extension, muxer)
            );
        }
        for other in ["video/x-raw", "audio/x-raw", "audio/mpeg,mpegversion=4"] {
            assert_eq!(Codec::of(&other.parse::<gst::Caps>().unwrap()), None, "{other}");
        }
    }
}
