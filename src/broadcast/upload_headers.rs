//! The `Content-Type` and `Cache-Control` each uploaded file is stored with, for a CDN in front of the bucket:
//! what never changes once stored (segments, recordings, track files) is cached for a year (an HLS output never
//! reuses a segment's name, even when its pipeline is rebuilt: `output::hls_writer`); a live playlist,
//! rewritten at each cut, for a second; a closed one (end list: VOD, or a show that ended) for a minute: an HLS
//! output removed and added again to a live broadcast reopens its playlist under the same key.

use crate::storage::ObjectHeaders;

/// A playlist with its end list: final unless its output is added again (then live again within a minute).
pub const CLOSED_PLAYLIST: &str = "max-age=60";
/// Files that never change once stored.
pub const IMMUTABLE: &str = "max-age=31536000, immutable";
/// A playlist still growing: players reload it about once a target duration (1 s at the least).
pub const LIVE_PLAYLIST: &str = "max-age=1";
/// A tracks manifest: small and read rarely; stored again if a file is added after it (always revalidated).
pub const MANIFEST: &str = "no-cache";

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// An HLS playlist as it is now: short-lived while live, a minute once it has its end list.
pub fn playlist(text: &str) -> ObjectHeaders {
    let closed = text.lines().any(|l| l.trim() == "#EXT-X-ENDLIST");
    ObjectHeaders::new(PLAYLIST_TYPE, if closed { CLOSED_PLAYLIST } else { LIVE_PLAYLIST })
}

/// A tracks output's `manifest.json`.
pub fn manifest() -> ObjectHeaders {
    ObjectHeaders::new("application/json", MANIFEST)
}

/// A media file that is final when queued (HLS segment, recording, track file), by its extension.
pub fn media(name: &str) -> ObjectHeaders {
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e).to_ascii_lowercase();
    let content_type = match extension.as_str() {
        "ts" => "video/mp2t",
        "mp4" => "video/mp4",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mka" => "audio/x-matroska",
        _ => "application/octet-stream",
    };
    ObjectHeaders::new(content_type, IMMUTABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(headers: ObjectHeaders) -> (String, String) {
        (headers.content_type.unwrap(), headers.cache_control.unwrap())
    }

    #[test]
    fn each_kind_of_file_gets_its_type_and_cache() {
        let long = "max-age=31536000, immutable".to_string();
        for (name, content_type) in [
            ("segment00003.ts", "video/mp2t"),
            ("out_1-20261130T041502.123Z.mp4", "video/mp4"),
            ("out_1-20261130T041502.123Z.MKV", "video/x-matroska"),
            ("p_1-1-video.webm", "video/webm"),
            ("p_1-1-audio.webm", "video/webm"),
            ("no-extension", "application/octet-stream"),
        ] {
            assert_eq!(pair(media(name)), (content_type.to_string(), long.clone()), "{name}");
        }
        assert_eq!(
            pair(manifest()),
            ("application/json".to_string(), "no-cache".to_string())
        );
    }

    #[test]
    fn a_playlist_is_cached_a_second_while_live_and_a_minute_once_closed() {
        let live = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:1.0,\nsegment00000.ts\n";
        assert_eq!(
            pair(playlist(live)),
            ("application/vnd.apple.mpegurl".to_string(), "max-age=1".to_string())
        );
        let closed = format!("{live}#EXT-X-ENDLIST\n");
        assert_eq!(pair(playlist(&closed)).1, "max-age=60");
        // A segment named like the tag is not the tag.
        assert_eq!(pair(playlist(&format!("{live}#EXT-X-ENDLIST-NOT\n"))).1, "max-age=1");
    }
}
