//! HLS as VOD (`window: 0`): every segment kept and listed, the playlist typed `EVENT` while live and `VOD`
//! once it has its end list.
//!
//! 1.22's `hlssink` (and `hlssink2`) cannot write `#EXT-X-PLAYLIST-TYPE`. Rather than edit the file hlssink
//! writes in place (a player could read it between hlssink's write and ours), hlssink writes a private playlist
//! that is never served, and the served one is made from it with the type added and put in place atomically
//! (temporary file, then rename): after each segment is cut, and once more after EOS.

use std::path::Path;

/// hlssink's own playlist when the output keeps every segment (not servable: see `hls::is_servable`).
pub const HLSSINK_PLAYLIST: &str = ".hlssink-index.m3u8";

const TYPE_TAG: &str = "#EXT-X-PLAYLIST-TYPE:";

/// `playlist` with its type: `VOD` when it has its end list, `EVENT` before (segments are only ever added).
pub fn with_playlist_type(playlist: &str) -> String {
    let kind = if playlist.lines().any(|l| l.trim_end() == "#EXT-X-ENDLIST") {
        "VOD"
    } else {
        "EVENT"
    };
    let mut typed = String::with_capacity(playlist.len() + 32);
    for line in playlist.lines().filter(|l| !l.starts_with(TYPE_TAG)) {
        typed.push_str(line);
        typed.push('\n');
        if line.trim_end() == "#EXTM3U" {
            typed.push_str(TYPE_TAG);
            typed.push_str(kind);
            typed.push('\n');
        }
    }
    typed
}

/// Makes the served playlist in `dir` from hlssink's, typed. Nothing to do before hlssink wrote one.
pub fn publish(dir: &Path) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(dir.join(HLSSINK_PLAYLIST)) else {
        return Ok(());
    };
    let tmp = dir.join(".index.m3u8.tmp");
    std::fs::write(&tmp, with_playlist_type(&text))?;
    std::fs::rename(tmp, dir.join(super::hls::PLAYLIST))
}

/// Publishes after every cut (see `hls::after_each_cut`). Added when the pipeline is built, before the output's
/// runner adds `hls_cuts::report_cuts`: the playlist listing a segment is published before its upload is asked for.
pub fn publish_after_cuts(hlssink_pad: &gst::Pad, dir: &Path) {
    let dir = dir.to_path_buf();
    super::hls::after_each_cut(hlssink_pad, move || {
        if let Err(e) = publish(&dir) {
            tracing::warn!("cannot publish the HLS playlist: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::with_playlist_type;

    const LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:2\n\n\
                        #EXTINF:2.000,\nsegment00000.ts\n#EXTINF:2.000,\nsegment00001.ts\n";

    #[test]
    fn a_live_playlist_is_an_event_and_an_ended_one_vod() {
        assert_eq!(
            with_playlist_type(LIVE),
            "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-TARGETDURATION:2\n\n#EXTINF:2.000,\nsegment00000.ts\n#EXTINF:2.000,\nsegment00001.ts\n"
        );
        let ended = format!("{LIVE}#EXT-X-ENDLIST\n");
        let typed = with_playlist_type(&ended);
        assert!(
            typed.starts_with("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-VERSION:3\n"),
            "{typed}"
        );
        assert!(typed.ends_with("segment00001.ts\n#EXT-X-ENDLIST\n"), "{typed}");
    }

    #[test]
    fn typing_twice_leaves_one_type_tag() {
        let once = with_playlist_type(LIVE);
        let twice = with_playlist_type(&format!("{once}#EXT-X-ENDLIST\n"));
        assert_eq!(twice.matches("#EXT-X-PLAYLIST-TYPE:").count(), 1, "{twice}");
        assert!(twice.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{twice}");
    }
}
