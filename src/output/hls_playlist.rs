//! An HLS media playlist (RFC 8216) as callcast writes it: plain data, rendered to text and read back from it.
//!
//! The playlist outlives the pipeline that cuts its segments: an output rebuilt after a write error, or removed
//! and added again, reads the playlist it left (`parse`), `resume`s it (the next segment comes after an
//! `#EXT-X-DISCONTINUITY`: new timestamps, new encoder state) and goes on adding to it, so a player never sees
//! the list start over. No GStreamer here: the output's writer (`hls_writer`) hands it closed segments.

use std::collections::VecDeque;
use std::fmt::Write;

/// One closed segment, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub uri: String,
    pub duration_ms: u64,
    /// An `#EXT-X-DISCONTINUITY` comes before it (the first segment of a new run).
    pub discontinuity: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// How many segments are listed (more while they hold less than `MIN_TARGET_DURATIONS_LISTED`); 0 keeps
    /// every one (an `EVENT` playlist, `VOD` once ended).
    window: u32,
    /// Seconds; only ever grows (RFC 8216bis: it must not change, and every segment must fit under it).
    target_duration: u64,
    /// The sequence number of the first listed segment: how many have slid out of the window.
    media_sequence: u64,
    /// How many discontinuities have slid out of the window.
    discontinuity_sequence: u64,
    segments: VecDeque<Segment>,
    ended: bool,
    /// The next segment added starts a new run.
    discontinuity_next: bool,
}

const VERSION: u32 = 3;

/// A live playlist never lists less than this many target durations (RFC 8216 §6.2.2: a segment is not removed
/// if that leaves less), however many segments that takes: keyframes made out of turn (WHEP viewers joining)
/// can cut short segments.
const MIN_TARGET_DURATIONS_LISTED: u64 = 3;

impl MediaPlaylist {
    pub fn new(window: u32, target_duration: u64) -> Self {
        Self {
            window,
            target_duration,
            media_sequence: 0,
            discontinuity_sequence: 0,
            segments: VecDeque::new(),
            ended: false,
            discontinuity_next: false,
        }
    }

    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// A new run of segments follows (a rebuilt pipeline): the playlist is open again, and the next segment is
    /// marked discontinuous if anything is listed before it. The window is the new output's.
    pub fn resume(&mut self, window: u32, target_duration: u64) {
        self.window = window;
        self.target_duration = self.target_duration.max(target_duration);
        self.ended = false;
        self.discontinuity_next = !self.segments.is_empty();
    }

    /// Lists a closed segment; returns the URIs that slid out of the window (still wanted on disk for a while:
    /// a player that read the playlist a moment ago may fetch them).
    pub fn push(&mut self, uri: &str, duration_ms: u64) -> Vec<String> {
        self.target_duration = self.target_duration.max(rounded(duration_ms));
        self.segments.push_back(Segment {
            uri: uri.to_string(),
            duration_ms,
            discontinuity: std::mem::take(&mut self.discontinuity_next),
        });
        let mut dropped = Vec::new();
        let mut listed_ms: u64 = self.segments.iter().map(|s| s.duration_ms).sum();
        let min_listed_ms = MIN_TARGET_DURATIONS_LISTED * self.target_duration * 1000;
        while self.window > 0
            && self.segments.len() > self.window as usize
            && listed_ms - self.segments.front().map_or(0, |s| s.duration_ms) >= min_listed_ms
        {
            let Some(old) = self.segments.pop_front() else { break };
            listed_ms -= old.duration_ms;
            self.media_sequence += 1;
            // The segments after a dropped discontinuity are in the next discontinuity sequence.
            if old.discontinuity {
                self.discontinuity_sequence += 1;
            }
            dropped.push(old.uri);
        }
        dropped
    }

    /// No segment will be added: `#EXT-X-ENDLIST`, and a keep-every-segment playlist becomes `VOD`.
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn render(&self) -> String {
        let mut text = String::from("#EXTM3U\n");
        if self.window == 0 {
            let kind = if self.ended { "VOD" } else { "EVENT" };
            let _ = writeln!(text, "#EXT-X-PLAYLIST-TYPE:{kind}");
        }
        let _ = writeln!(text, "#EXT-X-VERSION:{VERSION}");
        let _ = writeln!(text, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        let _ = writeln!(text, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(text, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        for segment in &self.segments {
            if segment.discontinuity {
                text.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let ms = segment.duration_ms;
            let _ = writeln!(text, "#EXTINF:{}.{:03},\n{}", ms / 1000, ms % 1000, segment.uri);
        }
        if self.ended {
            text.push_str("#EXT-X-ENDLIST\n");
        }
        text
    }

    /// Reads a playlist back (ours, or one in the same tags); None if it is not a media playlist.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next()? != "#EXTM3U" {
            return None;
        }
        let mut playlist = Self::new(0, 0);
        let mut window_kind_seen = false;
        let mut duration_ms = None;
        let mut discontinuity = false;
        for line in lines {
            let tag = |name: &str| line.strip_prefix(name);
            if let Some(kind) = tag("#EXT-X-PLAYLIST-TYPE:") {
                window_kind_seen = matches!(kind, "EVENT" | "VOD");
            } else if let Some(v) = tag("#EXT-X-TARGETDURATION:") {
                playlist.target_duration = v.parse().ok()?;
            } else if let Some(v) = tag("#EXT-X-MEDIA-SEQUENCE:") {
                playlist.media_sequence = v.parse().ok()?;
            } else if let Some(v) = tag("#EXT-X-DISCONTINUITY-SEQUENCE:") {
                playlist.discontinuity_sequence = v.parse().ok()?;
            } else if line == "#EXT-X-DISCONTINUITY" {
                discontinuity = true;
            } else if let Some(v) = tag("#EXTINF:") {
                let seconds: f64 = v.split(',').next()?.trim().parse().ok()?;
                duration_ms = Some((seconds * 1000.0).round() as u64);
            } else if line == "#EXT-X-ENDLIST" {
                playlist.ended = true;
            } else if line.starts_with("#EXT-X-MAP:") {
                // A low-latency output's fMP4 playlist: MPEG-TS segments cannot go on from it.
                return None;
            } else if !line.starts_with('#') {
                playlist.segments.push_back(Segment {
                    uri: line.to_string(),
                    duration_ms: duration_ms.take()?,
                    discontinuity: std::mem::take(&mut discontinuity),
                });
            }
        }
        // The window is not written down: a typed playlist keeps every segment, an untyped one slides over
        // as many as it lists (the output that resumes it says its own with `resume`).
        playlist.window = if window_kind_seen {
            0
        } else {
            playlist.segments.len() as u32
        };
        Some(playlist)
    }
}

/// Seconds to the nearest whole one: what a segment's `EXTINF` is held to against the target duration.
fn rounded(duration_ms: u64) -> u64 {
    (duration_ms + 500) / 1000
}

#[cfg(test)]
mod tests {
    use super::MediaPlaylist;

    #[test]
    fn a_sliding_window_drops_the_oldest_and_counts_them_in_the_media_sequence() {
        let mut playlist = MediaPlaylist::new(3, 2);
        let mut dropped = Vec::new();
        for (i, ms) in [2000, 2040, 1960, 2000, 2400].into_iter().enumerate() {
            dropped.extend(playlist.push(&format!("segment{i:05}.ts"), ms));
        }
        assert_eq!(dropped, ["segment00000.ts", "segment00001.ts"]);
        assert_eq!(
            playlist.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n\
             #EXTINF:1.960,\nsegment00002.ts\n#EXTINF:2.000,\nsegment00003.ts\n#EXTINF:2.400,\nsegment00004.ts\n"
        );
    }

    #[test]
    fn short_segments_stay_listed_until_three_target_durations_are() {
        // Window 3, target 2 s: three 2 s segments, then a burst of 0.5 s ones (keyframes made out of turn).
        let mut playlist = MediaPlaylist::new(3, 2);
        for i in 0..3 {
            playlist.push(&format!("segment{i:05}.ts"), 2000);
        }
        let mut dropped = Vec::new();
        for i in 3..11 {
            dropped.extend(playlist.push(&format!("segment{i:05}.ts"), 500));
        }
        // Left listed: 00002 (2 s) and the eight 0.5 s ones, 6 s; without 00002, 4 s would be.
        assert_eq!(dropped, ["segment00000.ts", "segment00001.ts"]);
        let listed: Vec<String> = playlist.segments().map(|s| s.uri.clone()).collect();
        assert_eq!(listed.len(), 9, "{listed:?}");
        assert_eq!(listed[0], "segment00002.ts");
        assert!(playlist.render().contains("#EXT-X-MEDIA-SEQUENCE:2\n"));
    }

    #[test]
    fn the_target_duration_covers_the_longest_segment_rounded_and_never_shrinks() {
        let mut playlist = MediaPlaylist::new(1, 1);
        playlist.push("a.ts", 1400);
        assert!(
            playlist.render().contains("#EXT-X-TARGETDURATION:1\n"),
            "1.4 s rounds to 1"
        );
        playlist.push("b.ts", 2600);
        assert!(
            playlist.render().contains("#EXT-X-TARGETDURATION:3\n"),
            "2.6 s rounds to 3"
        );
        playlist.push("c.ts", 1000);
        assert!(
            playlist.render().contains("#EXT-X-TARGETDURATION:3\n"),
            "it never goes down"
        );
    }

    #[test]
    fn a_resumed_playlist_marks_the_new_run_and_counts_discontinuities_that_slide_out() {
        let mut playlist = MediaPlaylist::new(3, 1);
        playlist.push("segment00000.ts", 1000);
        playlist.push("segment00001.ts", 1000);
        playlist.resume(3, 1);
        playlist.push("segment00003.ts", 1000);
        assert_eq!(
            playlist.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXTINF:1.000,\nsegment00000.ts\n#EXTINF:1.000,\nsegment00001.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:1.000,\nsegment00003.ts\n"
        );
        playlist.push("segment00004.ts", 1000);
        playlist.push("segment00005.ts", 1000);
        // segment00001 went: the discontinuity is on the first listed segment, not yet counted.
        assert!(playlist
            .render()
            .contains("#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\nsegment00003.ts\n"));
        playlist.push("segment00006.ts", 1000);
        assert_eq!(
            playlist.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXTINF:1.000,\nsegment00004.ts\n#EXTINF:1.000,\nsegment00005.ts\n\
             #EXTINF:1.000,\nsegment00006.ts\n"
        );
    }

    #[test]
    fn keeping_every_segment_is_an_event_then_vod_with_its_end_list() {
        let mut playlist = MediaPlaylist::new(0, 2);
        for i in 0..4 {
            playlist.push(&format!("segment{i:05}.ts"), 2000);
        }
        let live = playlist.render();
        assert!(
            live.starts_with("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-VERSION:3\n"),
            "{live}"
        );
        assert_eq!(live.matches("#EXTINF:2.000,\n").count(), 4, "{live}");
        assert!(
            live.contains("#EXT-X-MEDIA-SEQUENCE:0\n") && !live.contains("ENDLIST"),
            "{live}"
        );
        playlist.end();
        assert_eq!(
            playlist.render(),
            "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\nsegment00000.ts\n#EXTINF:2.000,\nsegment00001.ts\n\
             #EXTINF:2.000,\nsegment00002.ts\n#EXTINF:2.000,\nsegment00003.ts\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn a_written_playlist_reads_back_the_same_and_resumes_where_it_was() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
                    #EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXTINF:1.980,\nsegment00007.ts\n#EXT-X-DISCONTINUITY\n\
                    #EXTINF:2.021,\nsegment00009.ts\n#EXT-X-ENDLIST\n";
        let mut playlist = MediaPlaylist::parse(text).expect("a media playlist");
        assert_eq!(playlist.render(), text);
        assert!(playlist.is_ended());
        playlist.resume(2, 1);
        playlist.push("segment00010.ts", 2000);
        // A window of 2, but two segments would list 4.021 s, under three target durations: 00007 stays.
        assert_eq!(
            playlist.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXTINF:1.980,\nsegment00007.ts\n#EXT-X-DISCONTINUITY\n\
             #EXTINF:2.021,\nsegment00009.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\nsegment00010.ts\n"
        );
        let vod = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n\
                   #EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.000,\nsegment00000.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(MediaPlaylist::parse(vod).expect("vod").render(), vod);
        assert_eq!(MediaPlaylist::parse("not a playlist"), None);
        let fmp4 = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"init0.mp4\"\n\
                    #EXTINF:1.000,\nsegment00000.m4s\n";
        assert_eq!(MediaPlaylist::parse(fmp4), None, "not one to go on with");
    }
}
