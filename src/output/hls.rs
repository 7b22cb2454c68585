//! HLS output: MPEG-TS segments that start on keyframes, and a sliding playlist closed with ENDLIST at the end.

use super::{sources, OutputPipeline};
use crate::gst_util::make;
use anyhow::Result;
use gst::prelude::*;
use std::path::Path;

pub const PLAYLIST: &str = "index.m3u8";
pub const SEGMENT_PATTERN: &str = "segment%05d.ts";

/// Segments kept on disk beyond the playlist window, so a player that just read the playlist still finds them.
const EXTRA_SEGMENTS: u32 = 3;

pub fn build(dir: &Path, segment_seconds: u32, window: u32) -> Result<OutputPipeline> {
    std::fs::create_dir_all(dir)?;
    let pipeline = gst::Pipeline::with_name("hls-output");
    let (video, h264parse, audio, aacparse) = sources(&pipeline)?;
    let sink = make("hlssink2")?;
    sink.set_property("location", dir.join(SEGMENT_PATTERN).to_string_lossy().as_ref());
    sink.set_property("playlist-location", dir.join(PLAYLIST).to_string_lossy().as_ref());
    sink.set_property("target-duration", segment_seconds);
    sink.set_property("playlist-length", window);
    sink.set_property("max-files", window + EXTRA_SEGMENTS);
    // Keyframes come from our own encoder on a fixed interval; requests would go nowhere.
    sink.set_property("send-keyframe-requests", false);
    pipeline.add(&sink)?;
    h264parse.link_pads(None, &sink, Some("video"))?;
    aacparse.link_pads(None, &sink, Some("audio"))?;
    Ok(OutputPipeline {
        pipeline,
        video,
        audio,
        sink,
    })
}

/// True for file names this output writes, so the HTTP server never serves anything else.
pub fn is_servable(name: &str) -> bool {
    if name == PLAYLIST {
        return true;
    }
    name.strip_prefix("segment")
        .and_then(|rest| rest.strip_suffix(".ts"))
        .is_some_and(|digits| !digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::is_servable;

    #[test]
    fn only_our_files_are_servable() {
        assert!(is_servable("index.m3u8"));
        assert!(is_servable("segment00012.ts"));
        for bad in [
            "../index.m3u8",
            "segment.ts",
            "segment1.ts/..",
            "/etc/passwd",
            "segment00001.mp4",
            "x.m3u8",
        ] {
            assert!(!is_servable(bad), "{bad}");
        }
    }
}
