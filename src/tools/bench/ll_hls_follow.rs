//! What a low-latency HLS follower reads, as plain data: the parts a media playlist lists (and which start with
//! a keyframe), its init segment, its preload hint and hold-back; and how many video samples an fMP4 part
//! carries (from its `trun`), so each sample the demuxer hands out can be traced back to the part it came in.

use crate::output::fmp4::VIDEO_TRACK_ID;
use crate::output::ll_hls_playlist::parse_part_name;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// `EXT-X-MAP`'s URI (the last one listed).
    pub map: Option<String>,
    /// Each `EXT-X-PART`: segment number, part index, URI, `INDEPENDENT=YES`.
    pub parts: Vec<ListedPart>,
    /// `EXT-X-PRELOAD-HINT`'s part, as (segment number, part index).
    pub hint: Option<(u64, u64)>,
    /// `PART-HOLD-BACK` of `EXT-X-SERVER-CONTROL`, in seconds.
    pub part_hold_back_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    pub at: (u64, u64),
    pub uri: String,
    pub independent: bool,
}

/// The value of `NAME=` in a tag's attribute list (quotes taken off).
fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    // Attributes are split on commas outside quotes; the URIs here hold none, so a plain split is enough.
    attributes.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

pub fn listing(playlist: &str) -> Listing {
    let mut out = Listing::default();
    for line in playlist.lines().map(str::trim) {
        if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            out.map = attribute(attrs, "URI").map(str::to_string);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let Some(uri) = attribute(attrs, "URI") else { continue };
            let Some(at) = parse_part_name(uri) else { continue };
            out.parts.push(ListedPart {
                at,
                uri: uri.to_string(),
                independent: attribute(attrs, "INDEPENDENT") == Some("YES"),
            });
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            if attribute(attrs, "TYPE") == Some("PART") {
                out.hint = attribute(attrs, "URI").and_then(parse_part_name);
            }
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            out.part_hold_back_s = attribute(attrs, "PART-HOLD-BACK").and_then(|v| v.parse().ok());
        }
    }
    out
}

/// Where a follower that just joined starts: the newest part that starts with a keyframe (a decoder can begin
/// there), so it catches up on at most one segment.
pub fn first_to_fetch(listing: &Listing) -> Option<(u64, u64)> {
    listing.parts.iter().rev().find(|p| p.independent).map(|p| p.at)
}

/// The boxes directly inside `bytes`: (type, body).
fn boxes(mut bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
        // Sizes 0 (to the end) and 1 (64-bit) are not written by callcast's muxer: stop rather than guess.
        if size < 8 || size > bytes.len() {
            return None;
        }
        let body = &bytes[8..size];
        bytes = &bytes[size..];
        Some((kind, body))
    })
}

/// The number of video samples in an fMP4 fragment (`moof`/`traf` of the video track/`trun`'s sample count).
pub fn video_samples(fragment: &[u8]) -> Option<u32> {
    let (_, moof) = boxes(fragment).find(|(kind, _)| kind == b"moof")?;
    let mut total = None;
    for (_, traf) in boxes(moof).filter(|(kind, _)| kind == b"traf") {
        // tfhd: version and flags (4 bytes), then the track ID.
        let (_, tfhd) = boxes(traf).find(|(kind, _)| kind == b"tfhd")?;
        let track = u32::from_be_bytes(tfhd.get(4..8)?.try_into().ok()?);
        if track != VIDEO_TRACK_ID {
            continue;
        }
        for (_, trun) in boxes(traf).filter(|(kind, _)| kind == b"trun") {
            let count = u32::from_be_bytes(trun.get(4..8)?.try_into().ok()?);
            total = Some(total.unwrap_or(0) + count);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n\
        #EXT-X-VERSION:6\n\
        #EXT-X-TARGETDURATION:1\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n\
        #EXT-X-PART-INF:PART-TARGET=0.334\n\
        #EXT-X-MEDIA-SEQUENCE:3\n\
        #EXT-X-MAP:URI=\"init0.mp4\"\n\
        #EXT-X-PART:DURATION=0.333,URI=\"part00003.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.333,URI=\"part00003.1.m4s\"\n\
        #EXTINF:0.667,\n\
        segment00003.m4s\n\
        #EXT-X-PART:DURATION=0.333,URI=\"part00004.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.333,URI=\"part00004.1.m4s\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part00004.2.m4s\"\n";

    #[test]
    fn a_low_latency_playlist_lists_its_parts_hint_and_hold_back() {
        let l = listing(PLAYLIST);
        assert_eq!(l.map.as_deref(), Some("init0.mp4"));
        let at: Vec<_> = l.parts.iter().map(|p| (p.at, p.independent)).collect();
        assert_eq!(at, [((3, 0), true), ((3, 1), false), ((4, 0), true), ((4, 1), false)]);
        assert_eq!(l.parts[2].uri, "part00004.0.m4s");
        assert_eq!(l.hint, Some((4, 2)));
        assert_eq!(l.part_hold_back_s, Some(1.002));
        assert_eq!(first_to_fetch(&l), Some((4, 0)), "the newest keyframe part");
        assert_eq!(first_to_fetch(&listing("#EXTM3U\n")), None);
    }

    /// A box as bytes: 32-bit size, type, body.
    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn traf(track: u32, samples: u32) -> Vec<u8> {
        let tfhd = mp4_box(b"tfhd", &[&[0, 2, 0, 0][..], &track.to_be_bytes()].concat());
        // trun: version/flags, sample count, then (ignored here) a data offset.
        let trun = mp4_box(b"trun", &[&[1, 0, 0, 1][..], &samples.to_be_bytes(), &[0; 4]].concat());
        mp4_box(b"traf", &[tfhd, trun].concat())
    }

    #[test]
    fn the_video_samples_of_a_fragment_are_its_video_truns_count() {
        let mfhd = mp4_box(b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 7]);
        let moof = mp4_box(b"moof", &[mfhd, traf(2, 16), traf(VIDEO_TRACK_ID, 10)].concat());
        let fragment = [moof, mp4_box(b"mdat", &[0; 32])].concat();
        assert_eq!(
            video_samples(&fragment),
            Some(10),
            "the audio track's 16 are not counted"
        );
        assert_eq!(video_samples(&mp4_box(b"mdat", &[0; 4])), None, "no moof");
        assert_eq!(video_samples(&fragment[..20]), None, "cut short");
    }
}
