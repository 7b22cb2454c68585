//! An HLS output's files: `multifilesink` writes the segments, this writes the playlist (`hls_playlist`) and
//! deletes segments that slid out of the window.
//!
//! A segment's name is never used twice in an output's directory: a rebuilt pipeline (a retry after a write
//! error, or the output removed and added again) numbers its segments on from the highest one there, and goes
//! on with the playlist it finds (after an `#EXT-X-DISCONTINUITY`) instead of starting over. So a player or a
//! CDN that fetched a segment never finds other media under its name, and uploads can store segments immutable.
//!
//! The playlist lists a segment once `multifilesink` closed its file: it closes a file when the cut's
//! force-key-unit event reaches it, so the first buffer after that event finds the file complete. The playlist
//! is written to a temporary file, then renamed over the served one.

use super::hls::{PLAYLIST, SEGMENT_PATTERN};
use super::hls_playlist::MediaPlaylist;
use gst::prelude::*;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Segments kept on disk beyond the playlist window, so a player that just read the playlist still finds them.
const EXTRA_SEGMENTS: usize = 3;

/// Where the playlist is written before it is renamed into place (not servable: see `hls::is_servable`).
const PLAYLIST_TMP: &str = ".index.m3u8.tmp";

/// The playlist of one attempt of an HLS output, shared by its pipeline's probe and its runner.
#[derive(Clone)]
pub struct HlsPlaylist(Arc<Mutex<Writer>>);

struct Writer {
    dir: PathBuf,
    playlist: MediaPlaylist,
    /// The index of the segment `multifilesink` writes now (or will open first).
    current: u64,
    /// `multifilesink` has a file open (it opens one at the first buffer, or at a cut before any).
    open: bool,
    /// A cut went by: the file before it is closed once the next buffer comes.
    cut_pending: bool,
    /// The last force-key-unit count `multifilesink` acted on (it ignores one repeating it).
    last_count: Option<u32>,
    /// Timestamps of the open segment's first buffer and of the newest buffer.
    segment_start: Option<gst::ClockTime>,
    newest: Option<gst::ClockTime>,
    /// Segments out of the window but still on disk, oldest first.
    retired: VecDeque<String>,
}

/// The number in a segment's name, if `name` is one of ours.
fn segment_index(name: &str) -> Option<u64> {
    if !super::hls::is_servable(name) || name == PLAYLIST {
        return None;
    }
    name.strip_prefix("segment")?.strip_suffix(".ts")?.parse().ok()
}

fn segment_name(index: u64) -> String {
    format!("segment{index:05}.ts")
}

impl HlsPlaylist {
    /// Goes on from what `dir` holds: the playlist there (if any) resumed, segment numbers after the highest
    /// on disk. Returns the playlist and the index `multifilesink` must start from.
    pub fn open(dir: &Path, window: u32, target_seconds: u32) -> (Self, u64) {
        let target = u64::from(target_seconds);
        let playlist = std::fs::read_to_string(dir.join(PLAYLIST))
            .ok()
            .and_then(|text| MediaPlaylist::parse(&text))
            .map(|mut playlist| {
                playlist.resume(window, target);
                playlist
            })
            .unwrap_or_else(|| MediaPlaylist::new(window, target));
        let listed: Vec<u64> = playlist.segments().filter_map(|s| segment_index(&s.uri)).collect();
        let on_disk: Vec<u64> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(segment_index))
                    .collect()
            })
            .unwrap_or_default();
        let next = listed.iter().chain(&on_disk).max().map_or(0, |max| max + 1);
        let (first_listed, last_listed) = (listed.first().copied(), listed.last().copied());
        let mut retired: Vec<u64> = Vec::new();
        let listed_set: std::collections::HashSet<u64> = listed.iter().copied().collect();
        for index in on_disk.into_iter().filter(|i| !listed_set.contains(i)) {
            if first_listed.is_some_and(|first| index < first) {
                retired.push(index);
            } else if last_listed.is_some_and(|last| index > last) {
                // Cut short by the attempt that failed, never listed: nobody can have fetched it. (With no
                // playlist to go by, nothing is deleted: the files may be all that is left of a recording.)
                let _ = std::fs::remove_file(dir.join(segment_name(index)));
            }
        }
        retired.sort_unstable();
        let writer = Writer {
            dir: dir.to_path_buf(),
            playlist,
            current: next,
            open: false,
            cut_pending: false,
            last_count: None,
            segment_start: None,
            newest: None,
            retired: retired.into_iter().map(segment_name).collect(),
        };
        (Self(Arc::new(Mutex::new(writer))), next)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows what reaches `multifilesink`'s sink pad: cuts and buffers. Add it before any other probe that
    /// acts after a cut (`hls::after_each_cut`): probes run in the order added, so theirs see the playlist
    /// that lists the segment the cut closed.
    pub fn follow(&self, sink_pad: &gst::Pad) {
        let this = self.clone();
        sink_pad.add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                match &info.data {
                    // Checked first: parsing any other event is a GLib critical.
                    Some(gst::PadProbeData::Event(event)) if gst_video::ForceKeyUnitEvent::is(event) => {
                        if let Ok(cut) = gst_video::DownstreamForceKeyUnitEvent::parse(event) {
                            this.lock().on_cut(cut.count);
                        }
                    }
                    Some(gst::PadProbeData::Buffer(buffer)) => this.lock().on_data(buffer.pts(), buffer.pts()),
                    Some(gst::PadProbeData::BufferList(list)) if !list.is_empty() => {
                        let (first, last) = (list.get(0).and_then(|b| b.pts()), list.get(list.len() - 1));
                        this.lock().on_data(first, last.and_then(|b| b.pts()))
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// The attempt is over and the output ends: the playlist gets its end list. Called once the pipeline is
    /// in NULL (every file closed). `last_complete`: the pipeline went through EOS, so the segment it was
    /// writing is whole and is listed first; so is one a cut closed just before the end.
    pub fn finish(&self, last_complete: bool) {
        let mut writer = self.lock();
        if (last_complete || writer.cut_pending) && writer.segment_start.is_some() {
            let end = writer.newest;
            writer.close_segment(end);
        }
        writer.playlist.end();
        if writer.playlist.segments().next().is_some() {
            writer.write();
        }
    }
}

impl Writer {
    fn on_cut(&mut self, count: u32) {
        if self.last_count == Some(count) {
            return;
        }
        self.last_count = Some(count);
        // A cut before any data opens the first file; one after closes the file and opens the next.
        self.cut_pending = self.open;
        self.open = true;
    }

    fn on_data(&mut self, first: Option<gst::ClockTime>, last: Option<gst::ClockTime>) {
        self.open = true;
        if std::mem::take(&mut self.cut_pending) {
            self.close_segment(first);
            self.current += 1;
            self.segment_start = first;
        }
        if self.segment_start.is_none() {
            self.segment_start = first;
        }
        if let Some(last) = last.or(first) {
            self.newest = Some(last);
        }
    }

    /// Lists the segment being written (its file closed), which ended at `end`.
    fn close_segment(&mut self, end: Option<gst::ClockTime>) {
        let duration_ms = match (self.segment_start, end) {
            (Some(start), Some(end)) => end.saturating_sub(start).mseconds(),
            _ => 0,
        };
        let name = segment_name(self.current);
        let dropped = self.playlist.push(&name, duration_ms);
        self.write();
        self.retired.extend(dropped);
        while self.retired.len() > EXTRA_SEGMENTS {
            if let Some(old) = self.retired.pop_front() {
                let _ = std::fs::remove_file(self.dir.join(old));
            }
        }
    }

    fn write(&self) {
        let tmp = self.dir.join(PLAYLIST_TMP);
        if let Err(e) = replace_synced(&tmp, &self.dir.join(PLAYLIST), &self.playlist.render()) {
            tracing::warn!("cannot write the HLS playlist: {e}");
        }
    }
}

/// Ends the playlist in `dir` a dead process left open (server restart), so players stop waiting for more.
pub fn end_left_open(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join(PLAYLIST)) else {
        return;
    };
    let Some(mut playlist) = MediaPlaylist::parse(&text) else {
        super::ll_hls::end_left_open(dir, &text);
        return;
    };
    if playlist.is_ended() {
        return;
    }
    playlist.end();
    let tmp = dir.join(PLAYLIST_TMP);
    if let Err(e) = replace_synced(&tmp, &dir.join(PLAYLIST), &playlist.render()) {
        tracing::warn!("cannot close {}: {e}", dir.join(PLAYLIST).display());
    }
}

/// Writes `text` to `tmp`, on disk before it is renamed over `path`: after a power cut the playlist is the old one
/// or the new one, never empty (an empty one would restart the numbering of a rebuilt output).
pub(super) fn replace_synced(tmp: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()?;
    std::fs::rename(tmp, path)
}

/// `multifilesink`'s location for segments in `dir`.
pub fn location(dir: &Path) -> String {
    dir.join(SEGMENT_PATTERN).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::HlsPlaylist;
    use std::path::Path;

    fn secs(s: u64) -> Option<gst::ClockTime> {
        Some(gst::ClockTime::from_seconds(s))
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".ts"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn without_a_playlist_segments_there_are_kept_and_numbered_after() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("segment00004.ts"), b"ts").unwrap();
        let (_, first) = HlsPlaylist::open(dir.path(), 0, 1);
        assert_eq!(first, 5);
        assert_eq!(files(dir.path()), ["segment00004.ts"]);
    }

    #[test]
    fn a_rebuilt_output_numbers_on_after_every_segment_there_and_goes_on_with_its_playlist() {
        let dir = tempfile::tempdir().unwrap();
        // Left by the last run: 3 and 4 listed, 1 and 2 out of the window, 5 and 6 cut short and never listed.
        for i in 1..=6 {
            std::fs::write(dir.path().join(format!("segment{i:05}.ts")), b"ts").unwrap();
        }
        std::fs::write(
            dir.path().join("index.m3u8"),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXTINF:1.000,\nsegment00003.ts\n#EXTINF:1.000,\nsegment00004.ts\n",
        )
        .unwrap();
        let (playlist, first) = HlsPlaylist::open(dir.path(), 2, 1);
        assert_eq!(first, 7, "after the highest on disk, listed or not");
        assert_eq!(
            files(dir.path()),
            [
                "segment00001.ts",
                "segment00002.ts",
                "segment00003.ts",
                "segment00004.ts"
            ],
            "the never-listed ones go"
        );
        let read = || std::fs::read_to_string(dir.path().join("index.m3u8")).unwrap();
        {
            let mut writer = playlist.lock();
            writer.on_data(secs(10), secs(10));
            writer.on_data(secs(11), secs(11));
            writer.on_cut(1);
            writer.on_cut(1); // a repeat: multifilesink ignores it, so does the writer
        }
        assert!(
            !read().contains("segment00007.ts"),
            "not listed before its file is closed"
        );
        playlist.lock().on_data(secs(12), secs(12));
        // A window of 2, but 00004 and 00007 list 3 s, under three target durations (2 s, since 00007): 00003
        // stays.
        assert_eq!(
            read(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXTINF:1.000,\nsegment00003.ts\n#EXTINF:1.000,\nsegment00004.ts\n#EXT-X-DISCONTINUITY\n\
             #EXTINF:2.000,\nsegment00007.ts\n"
        );
        playlist.lock().on_cut(2);
        playlist.lock().on_data(secs(13), secs(13));
        // Nothing slides out while the list holds under 6 s: 1 and 2 (out of the window) stay on disk.
        assert_eq!(files(dir.path())[0], "segment00001.ts");
        playlist.lock().on_cut(3);
        playlist.lock().on_data(secs(15), secs(15));
        // 00009 (2 s) makes 7 s listed: 00003 slides out; out of the window now 1, 2 and 3, kept on disk.
        assert_eq!(files(dir.path())[0], "segment00001.ts");
        playlist.lock().on_cut(4);
        playlist.lock().on_data(secs(17), secs(17));
        // 00010 (2 s): 00004 slides out; at most three out of the window stay on disk, so 00001 goes.
        assert_eq!(
            files(dir.path())[0],
            "segment00002.ts",
            "the oldest out of the window goes"
        );
        playlist.lock().on_data(secs(18), secs(18));
        // At the end 00011 (1 s) is listed: 00007 and its discontinuity slide out (6 s still listed).
        playlist.finish(true);
        assert_eq!(
            read(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:6\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXTINF:1.000,\nsegment00008.ts\n#EXTINF:2.000,\nsegment00009.ts\n\
             #EXTINF:2.000,\nsegment00010.ts\n#EXTINF:1.000,\nsegment00011.ts\n#EXT-X-ENDLIST\n"
        );
    }
}
