//! FLV files read tag by tag (as nginx-rtmp records them), without ffmpeg: whether a recording is whole, to its
//! last byte, and what its tags carry. Written from the FLV spec (Adobe "Video File Format Specification",
//! version 10, annex E), not from anything the product uses.

use std::path::Path;

const TAG_HEADER: usize = 11;
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
/// Video tag frame type 1 (upper nibble of the first data byte): a keyframe.
const KEYFRAME: u8 = 1;
/// AVCPacketType 1: coded pictures (0 is the sequence header, 2 the end of sequence).
const AVC_NALU: u8 = 1;
/// AACPacketType 1: raw AAC frames (0 is the AudioSpecificConfig).
const AAC_RAW: u8 = 1;

/// One audio or video tag that carries media (not a codec header).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaTag {
    pub video: bool,
    /// The tag's timestamp (decode time) in seconds.
    pub seconds: f64,
    /// For video: the frame type says keyframe.
    pub keyframe: bool,
}

/// The media tags of the FLV file at `path`, in file order; Err when the file is not FLV, a tag's back
/// pointer (PreviousTagSize) does not match it, or the file ends inside a tag.
pub fn media_tags(path: &Path) -> Result<Vec<MediaTag>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn parse(bytes: &[u8]) -> Result<Vec<MediaTag>, String> {
    if bytes.len() < 13 || &bytes[..3] != b"FLV" {
        return Err(format!("not an FLV file ({} bytes)", bytes.len()));
    }
    let header = u32_at(bytes, 5).ok_or("short header")?;
    if u32_at(bytes, header) != Some(0) {
        return Err("PreviousTagSize0 is not 0".into());
    }
    let mut at = header + 4;
    let mut tags = Vec::new();
    while at < bytes.len() {
        let head = bytes.get(at..at + TAG_HEADER).ok_or_else(|| {
            format!(
                "the file ends inside the header of the tag at byte {at} of {}",
                bytes.len()
            )
        })?;
        let size = u24(&head[1..4]);
        let millis = (u32::from(head[7]) << 24) | u24(&head[4..7]) as u32;
        let data_at = at + TAG_HEADER;
        let data = bytes.get(data_at..data_at + size).ok_or_else(|| {
            format!(
                "the last tag (at byte {at}, {size} bytes of data) is cut: the file ends at {}",
                bytes.len()
            )
        })?;
        let back = u32_at(bytes, data_at + size)
            .ok_or_else(|| format!("the file ends before the size after the tag at byte {at}"))?;
        if back != TAG_HEADER + size {
            return Err(format!(
                "the tag at byte {at} is followed by size {back}, not {}",
                TAG_HEADER + size
            ));
        }
        let kind = head[0] & 0x1f;
        let media = match kind {
            VIDEO => data.get(1) == Some(&AVC_NALU),
            AUDIO => data.get(1) == Some(&AAC_RAW),
            _ => false,
        };
        if media {
            tags.push(MediaTag {
                video: kind == VIDEO,
                seconds: f64::from(millis) / 1000.0,
                keyframe: kind == VIDEO && data[0] >> 4 == KEYFRAME,
            });
        }
        at = data_at + size + 4;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tag as the spec lays it out: header, data, then the size of both.
    fn tag(kind: u8, millis: u32, data: &[u8]) -> Vec<u8> {
        let size = data.len() as u32;
        let mut out = vec![kind];
        out.extend_from_slice(&size.to_be_bytes()[1..]);
        out.extend_from_slice(&millis.to_be_bytes()[1..]);
        out.push((millis >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(data);
        out.extend_from_slice(&(size + 11).to_be_bytes());
        out
    }

    fn file(tags: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        tags.iter().for_each(|t| out.extend_from_slice(t));
        out
    }

    #[test]
    fn reads_media_tags_and_refuses_a_cut_or_mismatched_one() {
        let whole = file(&[
            tag(18, 0, b"onMetaData"),
            tag(9, 0, &[0x17, 0, 0, 0, 0]),
            tag(9, 0, &[0x17, 1, 0, 0, 0, 0xaa]),
            tag(8, 21, &[0xaf, 1, 0xbb]),
            tag(9, 0x0100_0021, &[0x27, 1, 0, 0, 0, 0xcc]),
        ]);
        let tags = parse(&whole).unwrap();
        assert_eq!(
            tags,
            vec![
                MediaTag {
                    video: true,
                    seconds: 0.0,
                    keyframe: true
                },
                MediaTag {
                    video: false,
                    seconds: 0.021,
                    keyframe: false
                },
                MediaTag {
                    video: true,
                    seconds: 16_777.249,
                    keyframe: false
                },
            ]
        );
        assert!(parse(&whole[..whole.len() - 1])
            .unwrap_err()
            .contains("ends before the size"));
        assert!(parse(&whole[..whole.len() - 6]).unwrap_err().contains("is cut"));
        let mut wrong = whole.clone();
        let last = wrong.len() - 1;
        wrong[last] ^= 1;
        assert!(parse(&wrong).unwrap_err().contains("followed by size"));
    }
}
