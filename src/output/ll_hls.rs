//! Low-latency HLS output (`{"kind":"hls","low_latency":true}`): fMP4 parts of about a third of a second,
//! whole segments starting on keyframes, and a playlist with parts, a preload hint and blocking reload.
//!
//! GStreamer only parses: `appsrc ! h264parse` to length-prefixed access units (`avc`) and `appsrc ! aacparse` to
//! raw AAC frames, each into an appsink. From there it is plain Rust: `ll_hls_parts` decides where parts and
//! segments end, `fmp4` writes each part as one `moof`+`mdat` (the whole segment is its parts joined),
//! `ll_hls_playlist` lists them, and the board (`ll_hls_board`) tells the HTTP server what is listed.
//!
//! With `renditions`, the output decodes its H.264 once and scales and encodes each rendition as plain HLS does
//! (`hls_renditions::scaled_encodes`), each into an appsink and a writer of its own (in folder `{height}p/`, with
//! its own board); the one AAC goes into every rendition's parts, and `index.m3u8` is the multivariant playlist.
//!
//! Files in the output's folder (or each rendition's): `init{run}.mp4` (one per attempt), `part{msn}.{n}.m4s`,
//! `segment{msn}.m4s`, `index.m3u8`. A part's file is complete (written aside, then renamed) before the playlist lists it, and the
//! playlist before the board says so: whoever the board wakes finds both on disk.

use super::fmp4::{AudioTrack, Run, VideoTrack, AUDIO_TRACK_ID, VIDEO_TRACK_ID};
use super::hls_ladder::{folder, Ladder};
use super::hls_renditions::{Cadence, Multivariant};
use super::ll_hls_board::{LlHlsBoard, Progress};
use super::ll_hls_parts::{AudioFrame, ClosedPart, Cutter, VideoFrame};
use super::ll_hls_playlist::LlPlaylist;
use super::{OutputPipeline, Tracks};
use crate::gst_util::make;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The part target: a third of a second, rounded up so ten frames at 30 fps (333.3 ms) fit under it.
pub const PART_TARGET_MS: u64 = 334;
/// A keyframe this much before the segment's length is up still starts the next segment (as in `hls`).
const SEGMENT_SLACK_NS: u64 = 250_000_000;
/// Segments kept on disk past the window, for a player that read the playlist a moment ago.
const EXTRA_SEGMENTS: usize = 3;

/// H.264 as the fMP4 writer takes it: length-prefixed access units, with the parameter sets in the caps.
const AVC_CAPS: &str = "video/x-h264,stream-format=avc,alignment=au";

/// The output's pipeline for one attempt; the board keeps the playlist across attempts. With a `ladder`, `dir`
/// gets the multivariant playlist and each rendition a folder with its own playlist, parts and segments (its
/// board is `board.rendition(folder)`); returns a writer per rendition, the main one first.
pub fn build(
    dir: &Path,
    segment_seconds: u32,
    window: u32,
    board: &LlHlsBoard,
    ladder: Option<&Ladder>,
) -> Result<(OutputPipeline, Vec<LlWriter>)> {
    std::fs::create_dir_all(dir)?;
    let pipeline = gst::Pipeline::with_name("ll-hls-output");
    let tracks = Tracks::add(&pipeline, false)?;
    let (video_src, h264parse) = tracks.video.as_ref().context("low-latency HLS needs video")?;
    // One audio appsink: every rendition's writer gets the same AAC frames (muxed into each rendition's parts).
    let audio_sink = appsink("audio-parts", "audio/mpeg,mpegversion=4,stream-format=raw")?;
    pipeline.add(&audio_sink)?;
    tracks.audio.1.link(&audio_sink)?;
    let main_sink = appsink("video-parts", AVC_CAPS)?;
    pipeline.add(&main_sink)?;
    let writers = match ladder {
        None => {
            h264parse.link(&main_sink)?;
            let (first_msn, first_init) = numbers_after(dir);
            let writer = LlWriter::open(dir, segment_seconds, window, board, (first_msn, first_init), None)?;
            writer.follow_video(&main_sink);
            vec![writer]
        }
        Some(ladder) => {
            let video_src_pad = video_src.static_pad("src").context("appsrc src pad")?;
            add_ladder(
                &pipeline,
                h264parse,
                &main_sink,
                &video_src_pad,
                ladder,
                dir,
                segment_seconds,
                window,
                board,
            )?
        }
    };
    LlWriter::follow_audio(&audio_sink, writers.clone());
    let output = OutputPipeline {
        pipeline,
        video: Some(video_src.clone()),
        audio: tracks.audio.0,
        sink: main_sink.upcast(),
        recording: None,
    };
    Ok((output, writers))
}

/// The ladder's renditions (`hls_renditions::scaled_encodes`, as for plain HLS) each into an appsink and a
/// writer of its own in its folder. Keyframes are aligned by the renditions' encoders, and each writer's cutter
/// makes the same parts and segments of the same frames: every rendition has the same segment and part
/// numbers for the same media times, so players switch between them at any part.
#[allow(clippy::too_many_arguments)]
fn add_ladder(
    pipeline: &gst::Pipeline,
    h264parse: &gst::Element,
    main_sink: &gst_app::AppSink,
    video_src: &gst::Pad,
    ladder: &Ladder,
    dir: &Path,
    segment_seconds: u32,
    window: u32,
    board: &LlHlsBoard,
) -> Result<Vec<LlWriter>> {
    let folders: Vec<String> = std::iter::once(ladder.main.height)
        .chain(ladder.renditions.iter().map(|r| r.height))
        .map(folder)
        .collect();
    let boards: Vec<LlHlsBoard> = folders
        .iter()
        .map(|f| {
            board
                .rendition(f)
                .with_context(|| format!("no board for rendition {f}"))
        })
        .collect::<Result<_>>()?;
    for f in &folders {
        std::fs::create_dir_all(dir.join(f))?;
    }
    align_open_segments(&boards);
    // Numbered after what any rendition's folder holds: every rendition starts at the same numbers.
    let numbers = folders
        .iter()
        .map(|f| numbers_after(&dir.join(f)))
        .fold((0, 0), |(m, i), (fm, fi)| (m.max(fm), i.max(fi)));
    let multivariant = Arc::new(Multivariant::new(dir, ladder, segment_seconds));
    let cadence = Arc::new(Cadence::default());
    note_keyframes(video_src, cadence.clone());
    let video_tee = make("tee")?;
    pipeline.add(&video_tee)?;
    h264parse.link(&video_tee)?;
    super::hls_renditions::branch(pipeline, &video_tee, &[], main_sink.upcast_ref())?;
    let mut sinks = vec![main_sink.clone()];
    for (i, (_, parse)) in super::hls_renditions::scaled_encodes(pipeline, &video_tee, ladder, cadence, false)?
        .into_iter()
        .enumerate()
    {
        let sink = appsink(&format!("video-parts-{}", i + 1), AVC_CAPS)?;
        pipeline.add(&sink)?;
        parse.link(&sink)?;
        sinks.push(sink);
    }
    let mut writers = Vec::new();
    for (i, ((f, board), sink)) in folders.iter().zip(&boards).zip(&sinks).enumerate() {
        let variant = Some((multivariant.clone(), i));
        let writer = LlWriter::open(&dir.join(f), segment_seconds, window, board, numbers, variant)?;
        writer.follow_video(sink);
        writers.push(writer);
    }
    Ok(writers)
}

/// Before a rebuilt attempt restarts the renditions' playlists (each closes the segment it had open with the parts
/// it wrote): the renditions' encodes lag the main one by a frame or so, so the last attempt may have left one with
/// fewer parts of its open segment, or one that had not yet closed the segment another had. The parts past what
/// the furthest-behind rendition wrote of its open segment are unlisted, so every rendition goes on with the same
/// segment number (the segment closed at the restart may then be shorter in some renditions than in others).
fn align_open_segments(boards: &[LlHlsBoard]) {
    let state = |b: &LlHlsBoard| b.playlist().as_ref().map(|p| (p.next_msn(), p.open_parts()));
    let Some(behind) = boards.iter().filter_map(state).min() else {
        return;
    };
    for board in boards {
        let mut playlist = board.playlist();
        let Some(playlist) = playlist.as_mut() else { continue };
        // A rendition that closed the segment the one behind has open keeps none of its next one's parts.
        let keep = if playlist.next_msn() > behind.0 { 0 } else { behind.1 };
        let kept: Vec<String> = playlist.open_part_names().into_iter().take(keep).collect();
        playlist.keep_open_parts(|name| kept.iter().any(|k| k == name));
    }
}

/// Notes every keyframe of the main rendition (by running time) for the other renditions' encoders to key.
fn note_keyframes(video: &gst::Pad, cadence: Arc<Cadence>) {
    video.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let keyframe = info
            .buffer()
            .filter(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT))
            .and_then(|b| b.pts());
        if let Some(at) = keyframe.and_then(|pts| super::hls_renditions::running_time(pad, pts)) {
            cadence.keyframe(at, false);
        }
        gst::PadProbeReturn::Ok
    });
}

fn appsink(name: &str, caps: &str) -> Result<gst_app::AppSink> {
    let caps: gst::Caps = caps.parse().context("appsink caps")?;
    let sink = gst_app::AppSink::builder().name(name).caps(&caps).sync(false).build();
    // Not a clock-synchronised sink: it must not hold the pipeline's state change waiting for data either.
    sink.set_property("async", false);
    Ok(sink)
}

/// The writer of one attempt, fed by its appsinks and ended by the runner.
#[derive(Clone)]
pub struct LlWriter(Arc<Mutex<Writer>>);

struct Writer {
    dir: PathBuf,
    board: LlHlsBoard,
    map: String,
    cutter: Cutter,
    /// Width, height, avcC.
    video: Option<(u16, u16, Vec<u8>)>,
    /// Rate, channels, AudioSpecificConfig.
    audio: Option<(u32, u16, Vec<u8>)>,
    init_written: bool,
    /// Parts closed before both tracks' configuration was known (the init segment comes first).
    waiting: Vec<ClosedPart>,
    /// The next fragment's sequence number.
    sequence: u32,
    /// The open segment's parts so far, joined: its whole file once it closes.
    segment_bytes: Vec<u8>,
    /// Files out of the playlist, deleted a few segments later.
    retired: VecDeque<Vec<String>>,
    ended: bool,
    /// With a ladder: the multivariant playlist, and which of its renditions this writer's is.
    variant: Option<(Arc<Multivariant>, usize)>,
    /// The first write that failed since a streaming thread last looked: the output fails with it, as a plain
    /// HLS output does when multifilesink cannot write, and the runner builds it again.
    failed: Option<String>,
}

impl LlWriter {
    /// The writer of the playlist in `dir` that `board` keeps: a new one numbered from `first` (segment, init),
    /// or the last attempt's, restarted. `variant`: the multivariant playlist it is rendition `.1` of.
    fn open(
        dir: &Path,
        segment_seconds: u32,
        window: u32,
        board: &LlHlsBoard,
        first: (u64, u32),
        variant: Option<(Arc<Multivariant>, usize)>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (first_msn, first_init) = first;
        // An init segment and segment numbers of their own: an earlier output's files there are never written over.
        let map = format!("init{first_init}.mp4");
        let removed = {
            let mut playlist = board.playlist();
            match playlist.as_mut() {
                Some(existing) => {
                    // The segment the last attempt left open ends with the parts it wrote: its whole file from them.
                    // A part whose file is not there (taken away with the folder) is listed no more.
                    existing.keep_open_parts(|name| dir.join(name).is_file());
                    let parts = existing.open_part_names();
                    if !parts.is_empty() {
                        let whole: Vec<u8> = parts
                            .iter()
                            .flat_map(|p| std::fs::read(dir.join(p)).unwrap_or_default())
                            .collect();
                        if let Err(e) = write_aside(dir, &existing.open_segment_name(), &whole) {
                            tracing::warn!("cannot write an HLS segment: {e}");
                        }
                    }
                    existing.restart(&map)
                }
                None => {
                    let target = u64::from(segment_seconds);
                    *playlist = Some(LlPlaylist::new(window, target, PART_TARGET_MS, &map, first_msn));
                    Vec::new()
                }
            }
        };
        let segment_ns = u64::from(segment_seconds) * 1_000_000_000;
        let writer = LlWriter(Arc::new(Mutex::new(Writer {
            dir: dir.to_path_buf(),
            board: board.clone(),
            map,
            cutter: Cutter::new(
                PART_TARGET_MS * 1_000_000,
                segment_ns,
                SEGMENT_SLACK_NS,
                board.keyframe_interval().as_nanos() as u64,
                48_000,
            ),
            video: None,
            audio: None,
            init_written: false,
            waiting: Vec::new(),
            sequence: 0,
            segment_bytes: Vec::new(),
            retired: VecDeque::new(),
            ended: false,
            failed: None,
            variant,
        })));
        {
            // The playlist on disk first (the rebuilt one lists the segment closed above), then whoever waits is woken.
            let mut writer = writer.lock();
            writer.retire(removed);
            writer.write_playlist();
            writer.publish();
        }
        Ok(writer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn follow_video(&self, sink: &gst_app::AppSink) {
        Self::on_each_sample(sink, vec![self.clone()], Writer::on_video);
    }

    /// Every writer gets the audio: each rendition's parts carry the broadcast's AAC.
    fn follow_audio(sink: &gst_app::AppSink, writers: Vec<LlWriter>) {
        Self::on_each_sample(sink, writers, Writer::on_audio);
    }

    /// Hands every sample `sink` gets to `take` of each of `writers`, on its streaming thread.
    fn on_each_sample(sink: &gst_app::AppSink, writers: Vec<LlWriter>, take: fn(&mut Writer, &gst::Sample)) {
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let failed = writers.iter().find_map(|this| {
                        let mut writer = this.lock();
                        take(&mut writer, &sample);
                        writer.failed.take()
                    });
                    if let Some(message) = failed {
                        gst::element_error!(sink, gst::ResourceError::Write, ("{}", message));
                        return Err(gst::FlowError::Error);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }

    /// The output ends: `complete` (EOS went through) lists what is left as the last part; the playlist gets
    /// its end list either way.
    pub fn finish(&self, complete: bool) {
        let mut writer = self.lock();
        if writer.ended {
            return;
        }
        if complete {
            if let Some(last) = writer.cutter.finish() {
                writer.on_part(last);
            }
        } else {
            // Cut short: the parts written so far make the last segment.
            writer.close_open_segment();
        }
        writer.ended = true;
        if let Some(playlist) = writer.board.playlist().as_mut() {
            playlist.end();
        }
        writer.write_playlist();
        writer.publish();
    }
}

/// Maps a timestamp of `sample`'s stream to running time, by the offset at `pts` (a decode time before the
/// segment's start maps too). The same frame has the same running time in every rendition (a rendition's
/// x264enc moves its timestamps by 1000 hours, and its segment with them), so their parts line up and their
/// fragments' decode times match. Timestamps as they are without a time segment.
fn running_offset(sample: &gst::Sample, pts: gst::ClockTime) -> impl Fn(gst::ClockTime) -> u64 {
    let running = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>().and_then(|s| s.to_running_time(pts)))
        .unwrap_or(pts);
    let (from, to) = (pts.nseconds(), running.nseconds());
    move |ts: gst::ClockTime| (ts.nseconds() + to).saturating_sub(from)
}

fn buffer_bytes(buffer: &gst::BufferRef) -> Option<Vec<u8>> {
    buffer.map_readable().ok().map(|m| m.as_slice().to_vec())
}

fn codec_data(structure: &gst::StructureRef) -> Option<Vec<u8>> {
    let data = structure.get::<gst::Buffer>("codec_data").ok()?;
    buffer_bytes(&data)
}

impl Writer {
    fn on_video(&mut self, sample: &gst::Sample) {
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            return;
        };
        if self.video.is_none() {
            let Some(s) = caps.structure(0) else { return };
            let size = |f: &str| s.get::<i32>(f).ok().and_then(|v| u16::try_from(v).ok());
            if let (Some(w), Some(h), Some(avcc)) = (size("width"), size("height"), codec_data(s)) {
                self.video = Some((w, h, avcc));
            }
        }
        let (Some(pts), Some(data)) = (buffer.pts(), buffer_bytes(buffer)) else {
            return;
        };
        let to_running = running_offset(sample, pts);
        let frame = VideoFrame {
            data,
            dts_ns: to_running(buffer.dts().unwrap_or(pts)),
            pts_ns: to_running(pts),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        };
        for part in self.cutter.push_video(frame) {
            self.on_part(part);
        }
    }

    fn on_audio(&mut self, sample: &gst::Sample) {
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            return;
        };
        if self.audio.is_none() {
            let Some(s) = caps.structure(0) else { return };
            let rate = s.get::<i32>("rate").ok().and_then(|v| u32::try_from(v).ok());
            let channels = s.get::<i32>("channels").ok().and_then(|v| u16::try_from(v).ok());
            if let (Some(rate), Some(channels), Some(asc)) = (rate, channels, codec_data(s)) {
                self.cutter.set_audio_rate(rate);
                self.audio = Some((rate, channels, asc));
            }
        }
        let rate = self.audio.as_ref().map_or(48_000, |a| a.0);
        let (Some(pts), Some(data)) = (buffer.pts(), buffer_bytes(buffer)) else {
            return;
        };
        let duration = buffer.duration().map_or(1024, |d| {
            (u128::from(d.nseconds()) * u128::from(rate) / 1_000_000_000) as u32
        });
        // aacparse's durations are whole frames give or take a tick of rounding: 1024 samples for AAC-LC.
        let duration = if duration.abs_diff(1024) <= 1 { 1024 } else { duration };
        self.cutter.push_audio(AudioFrame {
            data,
            pts_ns: running_offset(sample, pts)(pts),
            duration,
        });
    }

    fn on_part(&mut self, part: ClosedPart) {
        if !self.init_written {
            let (Some(video), Some(audio)) = (&self.video, &self.audio) else {
                self.waiting.push(part);
                return;
            };
            let init = super::fmp4::init_segment(
                &VideoTrack {
                    width: video.0,
                    height: video.1,
                    avcc: &video.2,
                },
                &AudioTrack {
                    rate: audio.0,
                    channels: audio.1,
                    asc: &audio.2,
                },
            );
            if let Err(e) = write_aside(&self.dir, &self.map, &init) {
                // No part is listed without it; the output fails and its next attempt writes its own.
                self.fail("the init segment", e);
                return;
            }
            self.init_written = true;
            if let Some((multivariant, index)) = &self.variant {
                // avcC: version, then the profile, its compatibility flags and the level (RFC 6381's `avc1.PPCCLL`).
                if let Some(codec) = video.2.get(1..4) {
                    let codec = format!("avc1.{:02x}{:02x}{:02x}", codec[0], codec[1], codec[2]);
                    multivariant.seen(*index, u32::from(video.0), u32::from(video.1), codec);
                }
            }
            for early in std::mem::take(&mut self.waiting) {
                self.on_part(early);
            }
        }
        self.sequence += 1;
        let bytes = super::fmp4::fragment(
            self.sequence,
            &[
                Run {
                    track_id: VIDEO_TRACK_ID,
                    base_decode_time: part.video_decode_time,
                    samples: &part.video,
                },
                Run {
                    track_id: AUDIO_TRACK_ID,
                    base_decode_time: part.audio_decode_time,
                    samples: &part.audio,
                },
            ],
        );
        let Some(name) = self.board.playlist().as_ref().map(LlPlaylist::next_part_name) else {
            return;
        };
        if let Err(e) = write_aside(&self.dir, &name, &bytes) {
            // Not listed, not in its segment: the output fails with it and the next attempt goes on.
            self.fail("a part", e);
            return;
        }
        self.segment_bytes.extend_from_slice(&bytes);
        if let Some(playlist) = self.board.playlist().as_mut() {
            playlist.add_part(part.duration_ns / 1_000_000, part.independent);
        }
        if part.ends_segment {
            self.close_open_segment();
        }
        self.write_playlist();
        self.publish();
        if let Some((multivariant, index)) = &self.variant {
            // Once every rendition lists a part, the multivariant playlist names them all.
            multivariant.listed(*index);
        }
    }

    /// Writes the open segment's whole file (its parts joined) and lists it, if it has any part.
    fn close_open_segment(&mut self) {
        let whole = std::mem::take(&mut self.segment_bytes);
        let (dropped, written) = {
            let mut playlist = self.board.playlist();
            let Some(playlist) = playlist.as_mut().filter(|p| p.open_parts() > 0) else {
                return;
            };
            let written = write_aside(&self.dir, &playlist.open_segment_name(), &whole);
            (playlist.close_segment(), written)
        };
        if let Err(e) = written {
            self.fail("a segment", e);
        }
        self.retire(dropped);
    }

    fn retire(&mut self, files: Vec<String>) {
        if files.is_empty() {
            return;
        }
        self.retired.push_back(files);
        while self.retired.len() > EXTRA_SEGMENTS {
            for name in self.retired.pop_front().unwrap_or_default() {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
    }

    /// Remembers the first write that failed, for the streaming thread to fail the output with.
    fn fail(&mut self, what: &str, e: std::io::Error) {
        if self.failed.is_none() {
            self.failed = Some(format!("cannot write {what} of the low-latency HLS output: {e}"));
        }
    }

    fn write_playlist(&mut self) {
        let Some(text) = self.board.playlist().as_ref().map(LlPlaylist::render) else {
            return;
        };
        // Not synced to disk: a low-latency playlist is rewritten three times a second and never read back
        // (a rebuilt attempt goes on from the board's model).
        if let Err(e) = write_aside(&self.dir, super::hls::PLAYLIST, text.as_bytes()) {
            self.fail("the playlist", e);
        }
    }

    fn publish(&self) {
        let progress = self.board.playlist().as_ref().map(|p| Progress {
            next_msn: p.next_msn(),
            parts: p.open_parts() as u64,
            ended: p.is_ended(),
            target_duration_s: p.target_duration(),
        });
        if let Some(progress) = progress {
            self.board.publish(progress);
        }
    }
}

/// Writes `name` in `dir` whole: aside first, then renamed, so a reader never finds it half written.
fn write_aside(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, dir.join(name))
}

/// Ends the low-latency playlist `text` (in `dir`) a dead process left open (server restart): the parts of the
/// segment it was writing and the preload hint go, the end list comes. Anything else is left alone.
pub fn end_left_open(dir: &Path, text: &str) {
    if !text.contains("#EXT-X-PART-INF:") || text.contains("#EXT-X-ENDLIST") {
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    // After the last whole segment's URI comes the unfinished one's; with no whole segment, everything from
    // the first segment's tags on is the unfinished one's and the header is left.
    let kept = match lines.iter().rposition(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        Some(last) => last + 1,
        None => lines
            .iter()
            .position(|l| {
                l.starts_with("#EXT-X-MAP:")
                    || *l == "#EXT-X-DISCONTINUITY"
                    || l.starts_with("#EXT-X-PART:")
                    || l.starts_with("#EXT-X-PRELOAD-HINT:")
            })
            .unwrap_or(lines.len()),
    };
    let mut ended: String = lines[..kept].iter().map(|l| format!("{l}\n")).collect();
    ended.push_str("#EXT-X-ENDLIST\n");
    if let Err(e) = write_aside(dir, super::hls::PLAYLIST, ended.as_bytes()) {
        tracing::warn!("cannot close {}: {e}", dir.join(super::hls::PLAYLIST).display());
    }
}

/// After what `dir` holds from an earlier low-latency output (removed, then one added again, or an attempt
/// before this one): the first segment number and init number that name no file there.
fn numbers_after(dir: &Path) -> (u64, u32) {
    let (mut msn, mut init) = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| super::hls::is_servable(n)) else {
            continue;
        };
        if let Some((n, _)) = super::ll_hls_playlist::parse_part_name(name) {
            msn = msn.max(n + 1);
        } else if let Some(n) = name.strip_prefix("segment").and_then(|n| n.strip_suffix(".m4s")) {
            msn = msn.max(n.parse::<u64>().map_or(0, |n| n + 1));
        } else if let Some(n) = name.strip_prefix("init").and_then(|n| n.strip_suffix(".mp4")) {
            init = init.max(n.parse::<u32>().map_or(0, |n| n + 1));
        }
    }
    (msn, init)
}

#[cfg(test)]
mod tests {
    use super::numbers_after;
    use crate::output::fmp4::Sample;
    use crate::output::ll_hls_board::LlHlsBoard;
    use crate::output::ll_hls_parts::ClosedPart;

    fn part(keyframe: bool, ends_segment: bool) -> ClosedPart {
        let sample = Sample {
            data: vec![1, 2, 3],
            duration: 3000,
            composition_offset: 0,
            keyframe,
        };
        ClosedPart {
            video: vec![sample.clone(); 10],
            video_decode_time: 0,
            audio: vec![sample; 15],
            audio_decode_time: 0,
            duration_ns: 333_333_333,
            independent: keyframe,
            ends_segment,
        }
    }

    #[test]
    fn a_rebuilt_attempt_ends_the_open_segment_with_its_parts_and_goes_on_after_a_discontinuity() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let board = LlHlsBoard::new(1);
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap_or_default();
        let first = super::build(dir.path(), 1, 6, &board, None).unwrap().1.remove(0);
        {
            let mut writer = first.lock();
            writer.video = Some((640, 360, vec![1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]));
            writer.audio = Some((48_000, 2, vec![0x11, 0x90]));
            for (keyframe, ends) in [(true, false), (false, false), (false, true), (true, false)] {
                writer.on_part(part(keyframe, ends));
            }
        }
        assert_eq!(
            read("segment00000.m4s"),
            [
                read("part00000.0.m4s"),
                read("part00000.1.m4s"),
                read("part00000.2.m4s")
            ]
            .concat()
        );
        assert_eq!(board.progress().next_msn, 1);
        assert_eq!(board.progress().parts, 1);
        // The attempt fails; the next one ends segment 1 with the part it had, from the file on disk.
        let second = super::build(dir.path(), 1, 6, &board, None).unwrap().1.remove(0);
        assert_eq!(read("segment00001.m4s"), read("part00001.0.m4s"));
        assert!(!read("part00001.0.m4s").is_empty());
        {
            let mut writer = second.lock();
            writer.video = Some((640, 360, vec![1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]));
            writer.audio = Some((48_000, 2, vec![0x11, 0x90]));
            writer.on_part(part(true, false));
        }
        let text = String::from_utf8(read("index.m3u8")).unwrap();
        assert!(
            text.contains("segment00001.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXT-X-PART:DURATION=0.333,URI=\"part00002.0.m4s\",INDEPENDENT=YES\n"),
            "{text}"
        );
        for init in ["init0.mp4", "init1.mp4"] {
            assert_eq!(
                read(init).get(4..8),
                Some(&b"ftyp"[..]),
                "{init}: an init segment per attempt"
            );
        }
        // Stopped without EOS: the parts written make the last segment, then the end list.
        second.finish(false);
        let text = String::from_utf8(read("index.m3u8")).unwrap();
        assert!(
            text.ends_with("#EXTINF:0.333,\nsegment00002.m4s\n#EXT-X-ENDLIST\n"),
            "{text}"
        );
        assert!(board.progress().ended);
    }

    #[test]
    fn a_part_not_written_is_not_listed_and_a_rebuild_lists_only_parts_on_disk_before_waking_anyone() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let board = LlHlsBoard::new(1);
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap_or_default();
        let playlist = || std::fs::read_to_string(dir.path().join("index.m3u8")).unwrap_or_default();
        let first = super::build(dir.path(), 1, 6, &board, None).unwrap().1.remove(0);
        assert!(
            playlist().ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part00000.0.m4s\"\n"),
            "a new output's playlist is written before it is published: {}",
            playlist()
        );
        {
            let mut writer = first.lock();
            writer.video = Some((640, 360, vec![1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]));
            writer.audio = Some((48_000, 2, vec![0x11, 0x90]));
            writer.on_part(part(true, false));
            writer.on_part(part(false, false));
            // The third part cannot be written (a folder where its file goes aside): the output fails with it.
            std::fs::create_dir(dir.path().join(".part00000.2.m4s.tmp")).unwrap();
            writer.on_part(part(false, false));
            assert!(writer.failed.take().is_some_and(|e| e.contains("a part")));
            assert_eq!(
                writer.segment_bytes,
                [read("part00000.0.m4s"), read("part00000.1.m4s")].concat()
            );
        }
        let text = playlist();
        let listed = |uri: &str| text.lines().any(|l| l.starts_with("#EXT-X-PART:") && l.contains(uri));
        assert!(listed("part00000.1.m4s") && !listed("part00000.2.m4s"), "{text}");
        assert_eq!(board.progress().parts, 2);
        // Part 1 goes missing before the next attempt: the segment the rebuild closes is part 0 alone, and the
        // playlist on disk lists it by the time the board says so.
        std::fs::remove_file(dir.path().join("part00000.1.m4s")).unwrap();
        let published = board.subscribe();
        let _second = super::build(dir.path(), 1, 6, &board, None).unwrap().1.remove(0);
        assert!(published.has_changed().unwrap());
        assert_eq!(board.progress().next_msn, 1);
        assert_eq!(read("segment00000.m4s"), read("part00000.0.m4s"));
        let text = playlist();
        assert!(
            text.contains("URI=\"part00000.0.m4s\",INDEPENDENT=YES\n#EXTINF:0.333,\nsegment00000.m4s\n"),
            "{text}"
        );
        assert!(!text.contains("part00000.1.m4s"), "{text}");
    }

    #[test]
    fn a_ladder_numbers_every_rendition_alike_and_lists_them_once_each_has_a_part() {
        use crate::output::hls_ladder::{Ladder, MainPicture, Rendition};
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ladder = Ladder {
            main: MainPicture {
                width: 640,
                height: 360,
                fps: 30,
                bitrate_kbps: 1000,
            },
            audio_kbps: 128,
            renditions: vec![Rendition {
                height: 180,
                bitrate_kbps: 250,
            }],
        };
        let board = LlHlsBoard::ladder(1, vec!["360p".into(), "180p".into()]);
        // An earlier output left segment 4 in the small rendition's folder only: both start at 5.
        std::fs::create_dir_all(dir.path().join("180p")).unwrap();
        std::fs::write(dir.path().join("180p/segment00004.m4s"), b"x").unwrap();
        let (_, writers) = super::build(dir.path(), 1, 6, &board, Some(&ladder)).unwrap();
        assert_eq!(writers.len(), 2);
        let multivariant = dir.path().join("index.m3u8");
        // High profile, level 3.0 (avcC: version, profile, compatibility, level).
        let sizes = [
            (640, 360, vec![1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]),
            (320, 180, vec![1, 0x42, 0xc0, 0x0d, 0xff]),
        ];
        for (i, (writer, (w, h, avcc))) in writers.iter().zip(sizes).enumerate() {
            assert!(!multivariant.exists(), "listed before rendition {i} had a part");
            let mut writer = writer.lock();
            writer.video = Some((w, h, avcc));
            writer.audio = Some((48_000, 2, vec![0x11, 0x90]));
            writer.on_part(part(true, false));
        }
        for folder in ["360p", "180p"] {
            let text = std::fs::read_to_string(dir.path().join(folder).join("index.m3u8")).unwrap();
            assert!(
                text.contains("#EXT-X-MAP:URI=\"init0.mp4\"\n#EXT-X-PART:DURATION=0.333,URI=\"part00005.0.m4s\",INDEPENDENT=YES\n"),
                "{folder}: {text}"
            );
            assert!(dir.path().join(folder).join("part00005.0.m4s").is_file());
            let progress = board.rendition(folder).unwrap().progress();
            assert_eq!((progress.next_msn, progress.parts), (5, 1), "{folder}");
        }
        assert_eq!(
            board.progress().parts,
            0,
            "the multivariant playlist's board lists nothing"
        );
        // 1 s segments: (1000 * 1.6 + 128) * 1.15 and (250 * 1.6 + 128) * 1.15 kb/s.
        assert_eq!(
            std::fs::read_to_string(&multivariant).unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1987000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=30.000\n\
             360p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=607000,RESOLUTION=320x180,CODECS=\"avc1.42c00d,mp4a.40.2\",FRAME-RATE=30.000\n\
             180p/index.m3u8\n"
        );
    }

    #[test]
    fn a_rebuilt_ladder_unlists_the_parts_a_rendition_behind_did_not_write_so_numbers_stay_aligned() {
        use crate::output::ll_hls_playlist::LlPlaylist;
        let boards: Vec<LlHlsBoard> = (0..3).map(|_| LlHlsBoard::new(1)).collect();
        let set = |board: &LlHlsBoard, closed: usize, open: usize| {
            let mut playlist = LlPlaylist::new(6, 1, 334, "init0.mp4", 0);
            for _ in 0..closed {
                playlist.add_part(333, true);
                playlist.close_segment();
            }
            for i in 0..open {
                playlist.add_part(333, i == 0);
            }
            *board.playlist() = Some(playlist);
        };
        let state = |board: &LlHlsBoard| {
            let playlist = board.playlist();
            let p = playlist.as_ref().unwrap();
            (p.next_msn(), p.open_parts())
        };
        // The main one wrote two parts of segment 3, one rendition one part, another none yet.
        set(&boards[0], 3, 2);
        set(&boards[1], 3, 1);
        set(&boards[2], 3, 0);
        super::align_open_segments(&boards);
        assert_eq!(boards.iter().map(state).collect::<Vec<_>>(), [(3, 0); 3]);
        // One rendition had not closed segment 2 yet: the others unlist what they wrote of segment 3; each closes
        // segment 2 or has it closed, and every one goes on with segment 3.
        set(&boards[0], 3, 1);
        set(&boards[1], 2, 2);
        set(&boards[2], 3, 0);
        super::align_open_segments(&boards);
        assert_eq!(boards.iter().map(state).collect::<Vec<_>>(), [(3, 0), (2, 2), (3, 0)]);
        let mut playlist = boards[1].playlist();
        playlist.as_mut().unwrap().restart("init1.mp4");
        assert_eq!(playlist.as_ref().unwrap().next_msn(), 3);
        drop(playlist);
        // Alike: nothing changes.
        set(&boards[0], 3, 2);
        set(&boards[1], 3, 2);
        super::align_open_segments(&boards[..2]);
        assert_eq!(boards[..2].iter().map(state).collect::<Vec<_>>(), [(3, 2); 2]);
    }

    #[test]
    fn a_new_output_numbers_after_the_files_there_and_an_open_playlist_left_behind_is_ended() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(numbers_after(dir.path()), (0, 0));
        for name in [
            "init0.mp4",
            "init1.mp4",
            "segment00004.m4s",
            "part00005.1.m4s",
            "segment00009.ts",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(numbers_after(dir.path()), (6, 2));
        let open = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n\
                    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n\
                    #EXT-X-PART-INF:PART-TARGET=0.334\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-MAP:URI=\"init1.mp4\"\n\
                    #EXT-X-PART:DURATION=0.333,URI=\"part00004.0.m4s\",INDEPENDENT=YES\n\
                    #EXTINF:0.333,\nsegment00004.m4s\n\
                    #EXT-X-PART:DURATION=0.333,URI=\"part00005.0.m4s\",INDEPENDENT=YES\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part00005.1.m4s\"\n";
        std::fs::write(dir.path().join("index.m3u8"), open).unwrap();
        // Through the plain output's cleanup at start, which hands a playlist it cannot read over.
        crate::output::hls_writer::end_left_open(dir.path());
        let ended = std::fs::read_to_string(dir.path().join("index.m3u8")).unwrap();
        let cut = open.find("#EXT-X-PART:DURATION=0.333,URI=\"part00005").unwrap();
        assert_eq!(ended, format!("{}#EXT-X-ENDLIST\n", &open[..cut]));
        // Not one whole segment yet: the header is left, with the end list.
        let cut = open.find("#EXT-X-MAP").unwrap();
        let no_segment = format!(
            "{}#EXT-X-PART:DURATION=0.333,URI=\"part00004.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part00004.1.m4s\"\n",
            &open[..open.find("#EXT-X-PART:").unwrap()]
        );
        std::fs::write(dir.path().join("index.m3u8"), no_segment).unwrap();
        crate::output::hls_writer::end_left_open(dir.path());
        let ended = std::fs::read_to_string(dir.path().join("index.m3u8")).unwrap();
        assert_eq!(ended, format!("{}#EXT-X-ENDLIST\n", &open[..cut]));
    }
}
