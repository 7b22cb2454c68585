//! An HLS output's rendition ladder: the broadcast's own encode (the main rendition) and smaller renditions
//! scaled from it, each a media playlist in a folder of its own (`720p/index.m3u8`), all listed by a
//! multivariant `index.m3u8` (RFC 8216bis 4.4.6.2). Plain data and text; the pipeline is `hls_renditions`.

use std::fmt::Write;

/// Extra renditions an HLS output may ask for: each is a decode-fed x264 encode on the same 2 cores.
pub const MAX_RENDITIONS: usize = 4;
/// Range of an extra rendition's height (even, and below the main one's).
pub const MIN_HEIGHT: u32 = 90;
/// Range of an extra rendition's video bitrate.
pub const BITRATE_KBPS: std::ops::RangeInclusive<u32> = 100..=20_000;
/// x264enc's default VBV buffer (`vbv-buf-capacity`, ms), the main encode's and the renditions': how far a
/// constant-bitrate stream may run ahead of its rate over any stretch of time.
pub const VBV_MS: u64 = 600;
/// MPEG-TS packetisation on top of the elementary streams (188-byte packets, PES headers, PAT/PMT, PCR):
/// about 4 % for video and up to 15 % for 128 kb/s AAC; 15 % bounds both.
const TS_OVERHEAD_PERCENT: u64 = 15;

/// One extra rendition as asked: its height (the width follows the canvas's shape) and video bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    pub height: u32,
    pub bitrate_kbps: u32,
}

/// The broadcast's picture, as its encode makes it (the main rendition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainPicture {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    pub main: MainPicture,
    /// The broadcast's AAC, shared by every rendition.
    pub audio_kbps: u32,
    /// Highest first.
    pub renditions: Vec<Rendition>,
}

impl Ladder {
    /// The width of a rendition `height` pixels high with the main picture's shape, rounded to an even number (x264's
    /// 4:2:0 takes even sizes only).
    pub fn width_for(&self, height: u32) -> u32 {
        let exact = u64::from(self.main.width) * u64::from(height) / u64::from(self.main.height);
        (exact as u32 + 1) & !1
    }

    /// The peak bitrate (bit/s) of a segment of a rendition with `video_kbps`: a constant-bitrate encode may
    /// spend its VBV buffer on top of its rate within one segment, then the AAC, then MPEG-TS packetisation.
    pub fn bandwidth(&self, video_kbps: u32, segment_seconds: u32) -> u64 {
        let segment_ms = u64::from(segment_seconds.max(1)) * 1000;
        let video = u64::from(video_kbps) * (segment_ms + VBV_MS) / segment_ms;
        (video + u64::from(self.audio_kbps)) * (100 + TS_OVERHEAD_PERCENT) / 100 * 1000
    }
}

/// The folder of the rendition `height` pixels high (also its name in the multivariant playlist).
pub fn folder(height: u32) -> String {
    format!("{height}p")
}

/// True for the folder names `folder` makes, so the HTTP server serves nothing else.
pub fn is_folder(name: &str) -> bool {
    name.strip_suffix('p')
        .is_some_and(|digits| (2..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// One rendition as the multivariant playlist lists it, from what its stream turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub folder: String,
    /// Peak segment bitrate, bit/s.
    pub bandwidth: u64,
    pub width: u32,
    pub height: u32,
    /// `avc1.PPCCLL` from the stream's sequence parameter set.
    pub video_codec: String,
    pub fps: u32,
}

/// AAC-LC, the broadcast's audio in every rendition.
pub const AUDIO_CODEC: &str = "mp4a.40.2";

/// The multivariant playlist over `variants` (listed in that order: players start with the first).
pub fn render_multivariant(variants: &[Variant]) -> String {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    // Every segment of every rendition starts with a keyframe (`hls::cut_at_keyframes`).
    text.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = writeln!(
            text,
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{},{AUDIO_CODEC}\",FRAME-RATE={}.000\n{}/{}",
            v.bandwidth,
            v.width,
            v.height,
            v.video_codec,
            v.fps,
            v.folder,
            super::hls::PLAYLIST
        );
    }
    text
}

/// The RFC 6381 name of an H.264 stream (`avc1.` and the profile, constraint flags and level bytes of its
/// sequence parameter set) from an Annex B access unit holding one; None if it holds none.
pub fn avc1_codec(access_unit: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 3 < access_unit.len() {
        // A start code (00 00 01; a four-byte one ends the same way), then the NAL header.
        if access_unit[i..i + 3] == [0, 0, 1] {
            let nal = &access_unit[i + 3..];
            if nal.len() >= 4 && nal[0] & 0x1f == 7 {
                return Some(format!("avc1.{:02x}{:02x}{:02x}", nal[1], nal[2], nal[3]));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Ladder {
        Ladder {
            main: MainPicture {
                width: 1280,
                height: 720,
                fps: 30,
                bitrate_kbps: 2500,
            },
            audio_kbps: 128,
            renditions: vec![Rendition {
                height: 360,
                bitrate_kbps: 800,
            }],
        }
    }

    #[test]
    fn widths_keep_the_shape_and_are_even() {
        let l = ladder();
        assert_eq!(l.width_for(360), 640);
        assert_eq!(l.width_for(240), 426, "426.7: the nearest even width");
        assert_eq!(l.width_for(480), 854, "853.3: the nearest even width");
    }

    #[test]
    fn bandwidth_bounds_a_segment_with_the_vbv_and_the_mux() {
        // 2 s segments: 800 kb/s may carry 0.6 s more; (1040 + 128) * 1.15 = 1343.2 kb/s.
        assert_eq!(ladder().bandwidth(800, 2), 1_343_000, "1343.2 kb/s, in whole kb/s");
    }

    #[test]
    fn the_codec_comes_from_the_sequence_parameter_set() {
        // An access unit delimiter, then an SPS for High (0x64) with no constraint flags, level 3.1 (0x1f).
        let au = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0, 0, 1, 0x68, 0xee,
        ];
        assert_eq!(avc1_codec(&au).as_deref(), Some("avc1.64001f"));
        assert_eq!(avc1_codec(&[0, 0, 1, 0x65, 0x88, 0x84, 0x00]), None, "a slice alone");
    }

    #[test]
    fn folders_are_heights() {
        assert_eq!(folder(360), "360p");
        assert!(is_folder("1080p") && is_folder("90p"));
        for bad in ["p", "..", "360", "360p/..", "12345p", "x60p"] {
            assert!(!is_folder(bad), "{bad}");
        }
    }

    #[test]
    fn the_multivariant_playlist_lists_each_variant() {
        let v = Variant {
            folder: "360p".into(),
            bandwidth: 1_343_200,
            width: 640,
            height: 360,
            video_codec: "avc1.64001e".into(),
            fps: 30,
        };
        assert_eq!(
            render_multivariant(&[v]),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1343200,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",\
             FRAME-RATE=30.000\n360p/index.m3u8\n"
        );
    }
}
