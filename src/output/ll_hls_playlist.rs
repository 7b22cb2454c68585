//! A low-latency HLS media playlist (RFC 8216bis: parts, preload hint, blocking reload), as plain data rendered
//! to text. No GStreamer and no files here: `ll_hls` hands it parts as they close and writes what it renders.
//!
//! Every segment is made of parts (`part{msn}.{n}.m4s`, each one fMP4 fragment) and is also served whole
//! (`segment{msn}.m4s`, its parts one after the other), after an `EXT-X-MAP` init segment. Parts are listed
//! for the segments within three target durations of the playlist's end (older ones only as whole segments),
//! then the open segment's parts and a preload hint for the next part.

use std::collections::VecDeque;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub uri: String,
    pub duration_ms: u64,
    /// Starts with a keyframe.
    pub independent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    uri: String,
    parts: Vec<Part>,
    /// The init segment its fragments need.
    map: String,
    discontinuity: bool,
}

impl Segment {
    fn duration_ms(&self) -> u64 {
        self.parts.iter().map(|p| p.duration_ms).sum()
    }
}

/// RFC 8216bis §7: `EXT-X-MAP` outside an I-frame playlist needs version 6; the low-latency tags used here need
/// none higher (9 is for `EXT-X-SKIP`, which callcast does not serve).
const VERSION: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlPlaylist {
    /// Segments listed at most (closed ones plus the open one); 0 keeps every one (an `EVENT` playlist).
    window: u32,
    /// Seconds; never changes (RFC 8216bis §6.2.1): the cutter keeps segments within it.
    target_duration: u64,
    /// A segment longer than the target was warned of (once).
    warned_long: bool,
    part_target_ms: u64,
    media_sequence: u64,
    discontinuity_sequence: u64,
    closed: VecDeque<Segment>,
    /// The segment being written (number `next_msn`), its parts so far.
    open: Segment,
    map: String,
    ended: bool,
}

pub fn part_name(msn: u64, index: usize) -> String {
    format!("part{msn:05}.{index}.m4s")
}

/// The segment number and part index in a part's name, if `name` is one.
pub fn parse_part_name(name: &str) -> Option<(u64, u64)> {
    let (msn, index) = name.strip_prefix("part")?.strip_suffix(".m4s")?.split_once('.')?;
    if !(super::hls::is_file_number(msn) && super::hls::is_file_number(index)) {
        return None;
    }
    Some((msn.parse().ok()?, index.parse().ok()?))
}

pub fn segment_name(msn: u64) -> String {
    format!("segment{msn:05}.m4s")
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

impl LlPlaylist {
    /// `first_msn`: the first segment's number (after those an earlier output left in the folder).
    pub fn new(window: u32, target_duration: u64, part_target_ms: u64, map: &str, first_msn: u64) -> Self {
        Self {
            window,
            target_duration,
            warned_long: false,
            part_target_ms,
            media_sequence: first_msn,
            discontinuity_sequence: 0,
            closed: VecDeque::new(),
            open: Segment {
                uri: segment_name(first_msn),
                parts: Vec::new(),
                map: map.to_string(),
                discontinuity: false,
            },
            map: map.to_string(),
            ended: false,
        }
    }

    /// The number of the segment being written.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.closed.len() as u64
    }

    /// How many parts of the segment being written are listed.
    pub fn open_parts(&self) -> usize {
        self.open.parts.len()
    }

    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The name of the next part, before it is added.
    pub fn next_part_name(&self) -> String {
        part_name(self.next_msn(), self.open.parts.len())
    }

    /// Lists a complete part of the open segment; returns its name.
    pub fn add_part(&mut self, duration_ms: u64, independent: bool) -> String {
        let uri = self.next_part_name();
        self.open.parts.push(Part {
            uri: uri.clone(),
            duration_ms,
            independent,
        });
        uri
    }

    /// The open segment is complete (its whole file written): it is listed as a segment, and the next one opens.
    /// Returns the files that slid out of the window (the segment and its parts).
    pub fn close_segment(&mut self) -> Vec<String> {
        let next = Segment {
            uri: segment_name(self.next_msn() + 1),
            parts: Vec::new(),
            map: self.map.clone(),
            discontinuity: false,
        };
        let done = std::mem::replace(&mut self.open, next);
        let rounded = (done.duration_ms() + 500) / 1000;
        if rounded > self.target_duration && !self.warned_long {
            // Only with no keyframe where the encoder's interval puts one; the tag stays as it is all the same.
            tracing::warn!(
                "low-latency HLS segment {} lasts {} ms, over the target duration of {} s",
                done.uri,
                done.duration_ms(),
                self.target_duration
            );
            self.warned_long = true;
        }
        self.closed.push_back(done);
        let mut dropped = Vec::new();
        // The open segment counts against the window too.
        while self.window > 0 && self.closed.len() >= self.window as usize {
            let Some(old) = self.closed.pop_front() else { break };
            self.media_sequence += 1;
            if old.discontinuity {
                self.discontinuity_sequence += 1;
            }
            dropped.push(old.uri);
            dropped.extend(old.parts.into_iter().map(|p| p.uri));
        }
        dropped
    }

    /// A new run (a rebuilt pipeline: new timestamps, new codec state) from the next segment on, with the init
    /// segment `map`. A segment the last run left open ends with the parts it had.
    pub fn restart(&mut self, map: &str) -> Vec<String> {
        let dropped = if self.open.parts.is_empty() {
            Vec::new()
        } else {
            self.close_segment()
        };
        self.map = map.to_string();
        self.open.map = map.to_string();
        self.open.discontinuity = self.closed.back().is_some();
        self.ended = false;
        dropped
    }

    /// No part will be added: `#EXT-X-ENDLIST`, no preload hint.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The part names of the open segment, for the writer to join into its whole file.
    pub fn open_part_names(&self) -> Vec<String> {
        self.open.parts.iter().map(|p| p.uri.clone()).collect()
    }

    /// Unlists the open segment's parts `exists` says have no file.
    pub fn keep_open_parts(&mut self, exists: impl Fn(&str) -> bool) {
        self.open.parts.retain(|p| exists(&p.uri));
    }

    pub fn open_segment_name(&self) -> String {
        self.open.uri.clone()
    }

    pub fn render(&self) -> String {
        let mut text = String::from("#EXTM3U\n");
        if self.window == 0 {
            let _ = writeln!(text, "#EXT-X-PLAYLIST-TYPE:EVENT");
        }
        let _ = writeln!(text, "#EXT-X-VERSION:{VERSION}");
        let _ = writeln!(text, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        let _ = writeln!(
            text,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
            seconds(3 * self.part_target_ms)
        );
        let _ = writeln!(text, "#EXT-X-PART-INF:PART-TARGET={}", seconds(self.part_target_ms));
        let _ = writeln!(text, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(text, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        // Parts are listed for the segments that end within three target durations of the playlist's end.
        let horizon_ms = 3 * 1000 * self.target_duration;
        let mut after_ms = self.open.duration_ms();
        let mut with_parts = vec![false; self.closed.len()];
        for (i, segment) in self.closed.iter().enumerate().rev() {
            with_parts[i] = after_ms <= horizon_ms;
            after_ms += segment.duration_ms();
        }
        let mut map: Option<&str> = None;
        for (segment, parts) in self.closed.iter().zip(with_parts) {
            self.render_head(&mut text, segment, &mut map);
            if parts {
                render_parts(&mut text, &segment.parts);
            }
            let _ = writeln!(text, "#EXTINF:{},\n{}", seconds(segment.duration_ms()), segment.uri);
        }
        if self.ended {
            text.push_str("#EXT-X-ENDLIST\n");
            return text;
        }
        self.render_head(&mut text, &self.open, &mut map);
        render_parts(&mut text, &self.open.parts);
        let _ = writeln!(text, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", self.next_part_name());
        text
    }

    /// A segment's discontinuity and, when it differs from the one before's (or is the first), its map.
    fn render_head<'a>(&self, text: &mut String, segment: &'a Segment, map: &mut Option<&'a str>) {
        if segment.discontinuity {
            text.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if *map != Some(segment.map.as_str()) {
            let _ = writeln!(text, "#EXT-X-MAP:URI=\"{}\"", segment.map);
            *map = Some(&segment.map);
        }
    }
}

fn render_parts(text: &mut String, parts: &[Part]) {
    for part in parts {
        let independent = if part.independent { ",INDEPENDENT=YES" } else { "" };
        let _ = writeln!(
            text,
            "#EXT-X-PART:DURATION={},URI=\"{}\"{independent}",
            seconds(part.duration_ms),
            part.uri
        );
    }
}

#[cfg(test)]
mod tests {
    use super::LlPlaylist;

    /// Segments of three parts (333 + 333 + 334 ms), the first independent.
    fn add_segment(playlist: &mut LlPlaylist) -> Vec<String> {
        playlist.add_part(333, true);
        playlist.add_part(333, false);
        playlist.add_part(334, false);
        playlist.close_segment()
    }

    #[test]
    fn a_live_playlist_lists_parts_and_hints_the_next_one() {
        let mut playlist = LlPlaylist::new(6, 1, 334, "init0.mp4", 0);
        add_segment(&mut playlist);
        playlist.add_part(333, true);
        assert_eq!(
            playlist.render(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n\
             #EXT-X-PART-INF:PART-TARGET=0.334\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-MAP:URI=\"init0.mp4\"\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part00000.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part00000.1.m4s\"\n\
             #EXT-X-PART:DURATION=0.334,URI=\"part00000.2.m4s\"\n\
             #EXTINF:1.000,\nsegment00000.m4s\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part00001.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part00001.1.m4s\"\n"
        );
        assert_eq!((playlist.next_msn(), playlist.open_parts()), (1, 1));
        // A segment of 1.933 s (no keyframe where one was due): listed as it is, the target duration unchanged.
        for _ in 0..4 {
            playlist.add_part(400, false);
        }
        playlist.close_segment();
        let text = playlist.render();
        assert!(text.contains("#EXTINF:1.933,\nsegment00001.m4s\n"), "{text}");
        assert!(text.contains("#EXT-X-TARGETDURATION:1\n"), "{text}");
    }

    #[test]
    fn old_segments_lose_their_parts_then_slide_out_and_a_restart_is_a_discontinuity_with_a_new_map() {
        let mut playlist = LlPlaylist::new(3, 1, 334, "init0.mp4", 0);
        assert!(add_segment(&mut playlist).is_empty());
        assert!(add_segment(&mut playlist).is_empty());
        // Three segments counting the open one: the first slides out with its parts.
        assert_eq!(
            add_segment(&mut playlist),
            [
                "segment00000.m4s",
                "part00000.0.m4s",
                "part00000.1.m4s",
                "part00000.2.m4s"
            ]
        );
        assert!(playlist.restart("init1.mp4").is_empty(), "nothing open to close");
        add_segment(&mut playlist);
        playlist.end();
        // Both listed segments end within 3 target durations of the end: their parts stay; ended, no hint.
        let text = playlist.render();
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n\
             #EXT-X-PART-INF:PART-TARGET=0.334\n#EXT-X-MEDIA-SEQUENCE:2\n\
             #EXT-X-MAP:URI=\"init0.mp4\"\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part00002.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part00002.1.m4s\"\n\
             #EXT-X-PART:DURATION=0.334,URI=\"part00002.2.m4s\"\n\
             #EXTINF:1.000,\nsegment00002.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part00003.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part00003.1.m4s\"\n\
             #EXT-X-PART:DURATION=0.334,URI=\"part00003.2.m4s\"\n\
             #EXTINF:1.000,\nsegment00003.m4s\n\
             #EXT-X-ENDLIST\n"
        );
        // Five segments of 1 s kept (window 0): the oldest ends 4 s from the end, past 3 target durations.
        let mut playlist = LlPlaylist::new(0, 1, 334, "init0.mp4", 0);
        for _ in 0..5 {
            add_segment(&mut playlist);
        }
        let text = playlist.render();
        assert!(!text.contains("part00000."), "{text}");
        assert!(
            text.contains("#EXT-X-MAP:URI=\"init0.mp4\"\n#EXTINF:1.000,\nsegment00000.m4s\n"),
            "{text}"
        );
        assert!(text.contains("URI=\"part00001.0.m4s\""), "{text}");
        // Numbered on after an earlier output's files.
        let text = LlPlaylist::new(6, 1, 334, "init2.mp4", 7).render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:7\n"), "{text}");
        assert!(
            text.ends_with("#EXT-X-MAP:URI=\"init2.mp4\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part00007.0.m4s\"\n"),
            "{text}"
        );
        // A restart closes the segment a failed run left open, with the parts it had.
        let mut playlist = LlPlaylist::new(0, 1, 334, "init0.mp4", 0);
        playlist.add_part(333, true);
        playlist.restart("init1.mp4");
        assert_eq!(playlist.next_msn(), 1);
        let text = playlist.render();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
        assert!(
            text.ends_with(
                "#EXTINF:0.333,\nsegment00000.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n\
                 #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part00001.0.m4s\"\n"
            ),
            "{text}"
        );
    }
}
