//! One track of one participant's appearance written to its own file, as received: `appsrc ! [parser] ! mux !
//! filesink`. Buffers come from the participant's encoded tap on their leg's streaming thread and never wait:
//! the appsrc drops its oldest data when the file cannot keep up. A video file starts at a keyframe (asked for
//! when it is set up, and again every half second until one comes).
//!
//! Crash safety: the muxer closes a cluster at least every `CLUSTER_NS` and the file is written unbuffered, so a
//! SIGKILL leaves a file readable up to its last cluster; only a clean end writes its duration and index.

use super::codec::Codec;
use crate::call::encoded_tap::EncodedTap;
use crate::call::timeline;
use crate::gst_util::make;
use crate::output::hub::EncodedHub;
use crate::wall_clock::now_ms;
use anyhow::{Context, Result};
use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest cluster: about what a crash can cost.
const CLUSTER_NS: i64 = 1_000_000_000;
/// How much a file may hold in memory before it drops its oldest data.
const QUEUE_NS: u64 = 3_000_000_000;
/// Between keyframe requests while a video file waits for its first keyframe.
const RETRY_KEYFRAME_MS: u64 = 500;
/// A buffer this much earlier than the one before means the receive path re-timed the stream.
const BACKWARD_JUMP: gst::ClockTime = gst::ClockTime::from_mseconds(100);
/// A file re-timed within its first seconds starts again; later, timestamps are only kept increasing.
const RESTART_WINDOW: gst::ClockTime = gst::ClockTime::from_seconds(10);
/// Matroska's default timestamp resolution.
const CONTAINER_TICK: gst::ClockTime = gst::ClockTime::MSECOND;
/// How long a closing file gets to write its index.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the manifest needs of a file once it is open.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub path: PathBuf,
    pub codec: Codec,
    /// First media and the end of the last, on the outputs' timeline.
    pub start: gst::ClockTime,
    pub end: gst::ClockTime,
}

struct Open {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    caps: gst::Caps,
    info: FileInfo,
    /// The last buffer's timestamp on the outputs' timeline.
    last: gst::ClockTime,
    /// The last buffer's timestamp in the file (none yet before the first).
    last_in_file: Option<gst::ClockTime>,
}

enum State {
    /// No file yet: waiting for the first buffer (a keyframe for video); the last keyframe request's ms.
    Waiting {
        asked_at_ms: u64,
    },
    Writing(Open),
    /// The file could not be opened or written: why, and the file's name.
    Failed {
        error: String,
        file: String,
    },
    Closed,
}

struct Inner {
    /// The file's path without its extension (the codec decides it).
    stem: PathBuf,
    video: bool,
    tap: EncodedTap,
    hub: EncodedHub,
    mixer_base_time: Option<gst::ClockTime>,
    state: State,
    /// The file's info is kept after it closed, for the manifest.
    info: Option<FileInfo>,
    /// Told when the file opens or fails: the manifest lists a file from its first frame on (a crash then
    /// never leaves a file the manifest does not know), and a failure is reported at once.
    changed: Arc<tokio::sync::Notify>,
}

/// One track's file; clones share it.
#[derive(Clone)]
pub struct TrackWriter {
    inner: Arc<Mutex<Inner>>,
}

impl TrackWriter {
    /// A writer for `tap` (video or not) into `stem` + the codec's extension; asks for a keyframe at once.
    /// `changed` is notified when the file opens or fails.
    pub fn new(
        stem: PathBuf,
        video: bool,
        tap: &EncodedTap,
        hub: &EncodedHub,
        changed: Arc<tokio::sync::Notify>,
    ) -> Self {
        if video {
            tap.request_keyframe();
        }
        Self {
            inner: Arc::new(Mutex::new(Inner {
                stem,
                video,
                tap: tap.clone(),
                hub: hub.clone(),
                mixer_base_time: None,
                state: State::Waiting { asked_at_ms: now_ms() },
                info: None,
                changed,
            })),
        }
    }

    /// The receiver to subscribe to the tap with.
    pub fn receiver(&self) -> crate::call::encoded_tap::Receiver {
        let inner = self.inner.clone();
        Box::new(move |buffer, caps| inner.lock().unwrap().push(buffer, caps))
    }

    /// The file as it stands (None before it opened).
    pub fn info(&self) -> Option<FileInfo> {
        self.inner.lock().unwrap().info.clone()
    }

    /// The file's name and why it could not be written, if it could not. A file that fails while written is
    /// stopped (what it holds stays readable up to its last cluster); nothing more is written to it.
    pub fn failure(&self) -> Option<(String, String)> {
        let mut inner = self.inner.lock().unwrap();
        if let State::Writing(open) = &inner.state {
            let error = open
                .pipeline
                .bus()
                .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
                .and_then(|msg| match msg.view() {
                    gst::MessageView::Error(err) => Some(crate::gst_util::describe_error(err)),
                    _ => None,
                })?;
            let file = file_name(&open.info.path);
            let State::Writing(open) = std::mem::replace(
                &mut inner.state,
                State::Failed {
                    error: error.clone(),
                    file: file.clone(),
                },
            ) else {
                unreachable!("matched Writing above");
            };
            // Stopped outside the lock: the participant's streaming thread takes it for every buffer, and must not
            // wait for a pipeline's teardown.
            drop(inner);
            let _ = open.pipeline.set_state(gst::State::Null);
            return Some((file, error));
        }
        match &inner.state {
            State::Failed { error, file } => Some((file.clone(), error.clone())),
            State::Waiting { .. } | State::Writing(_) | State::Closed => None,
        }
    }

    /// Ends the file (blocking, bounded): EOS through the muxer writes its duration and index. True when it was
    /// finalised cleanly (false too when it never opened). A file that failed stays failed (`failure` still says
    /// so, for its manifest entry).
    pub fn close(&self) -> bool {
        let state = {
            let mut inner = self.inner.lock().unwrap();
            if matches!(inner.state, State::Failed { .. }) {
                return false;
            }
            std::mem::replace(&mut inner.state, State::Closed)
        };
        let State::Writing(open) = state else {
            return false;
        };
        let _ = open.appsrc.end_of_stream();
        let finished = open.pipeline.bus().and_then(|bus| {
            bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(CLOSE_TIMEOUT.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
        });
        let clean = finished.is_some_and(|msg| matches!(msg.view(), gst::MessageView::Eos(_)));
        if !clean {
            tracing::warn!(path = %open.info.path.display(), "track file not finalised");
        }
        let _ = open.pipeline.set_state(gst::State::Null);
        clean
    }
}

impl Inner {
    fn push(&mut self, mut buffer: gst::Buffer, caps: &gst::Caps) {
        if self.mixer_base_time.is_none() {
            self.mixer_base_time = self.hub.mixer_base_time();
        }
        let (Some(base), Some(pts)) = (self.mixer_base_time, buffer.pts()) else {
            return;
        };
        let Some(at) = timeline::participant_track_to_output(pts, base) else {
            return;
        };
        if let State::Writing(open) = &self.state {
            if at + BACKWARD_JUMP < open.last && open.last - open.info.start < RESTART_WINDOW {
                self.start_again(at);
            }
        }
        if let State::Waiting { asked_at_ms } = self.state {
            if self.video && buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                let now = now_ms();
                if now.saturating_sub(asked_at_ms) >= RETRY_KEYFRAME_MS {
                    self.tap.request_keyframe();
                    self.state = State::Waiting { asked_at_ms: now };
                }
                return;
            }
            self.state = match self.open(caps, at) {
                Ok(open) => State::Writing(open),
                Err(err) => {
                    tracing::warn!(stem = %self.stem.display(), "cannot write a track: {err:#}");
                    let path = Codec::of(caps).map_or(self.stem.clone(), |c| self.stem.with_extension(c.extension()));
                    State::Failed {
                        error: format!("{err:#}"),
                        file: file_name(&path),
                    }
                }
            };
            self.changed.notify_one();
        }
        let State::Writing(open) = &mut self.state else {
            return;
        };
        if open.caps != *caps {
            open.caps = caps.clone();
            open.appsrc.set_caps(Some(caps));
        }
        let in_file = in_file_time(at.saturating_sub(open.info.start), open.last_in_file);
        open.last_in_file = Some(in_file);
        open.last = open.info.start + in_file;
        open.info.end = open
            .info
            .end
            .max(open.last + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
        {
            let b = buffer.make_mut();
            b.set_pts(in_file);
            b.set_dts(in_file);
        }
        // Errors mean the file is closing; a full queue drops its oldest data itself.
        let _ = open.appsrc.push_buffer(buffer);
        self.info = Some(open.info.clone());
    }

    /// The receive path moved the stream's timestamps back (its lip-sync settles on the sender's first RTCP
    /// report, re-timing what it had already stamped by up to seconds): what was written is on the old timing.
    /// The file is dropped and starts again from here (video from its next keyframe).
    fn start_again(&mut self, at: gst::ClockTime) {
        let State::Writing(open) = std::mem::replace(&mut self.state, State::Waiting { asked_at_ms: 0 }) else {
            return;
        };
        tracing::info!(
            path = %open.info.path.display(),
            "the stream was re-timed {} ms back: its file starts again",
            (open.last - at).mseconds()
        );
        let _ = open.pipeline.set_state(gst::State::Null);
        if let Err(e) = std::fs::remove_file(&open.info.path) {
            tracing::warn!(path = %open.info.path.display(), "cannot remove a re-timed track file: {e}");
        }
        self.info = None;
    }

    fn open(&self, caps: &gst::Caps, at: gst::ClockTime) -> Result<Open> {
        let codec = Codec::of(caps).with_context(|| format!("a codec not recorded: {caps}"))?;
        let path = self.stem.with_extension(codec.extension());
        let (pipeline, appsrc) = file_pipeline(&path, codec, caps)?;
        pipeline
            .set_state(gst::State::Playing)
            .with_context(|| format!("starting to write {}", path.display()))?;
        tracing::info!(path = %path.display(), codec = codec.name(), "track file opened");
        Ok(Open {
            pipeline,
            appsrc,
            caps: caps.clone(),
            info: FileInfo {
                path,
                codec,
                start: at,
                end: at,
            },
            last: at,
            last_in_file: None,
        })
    }
}

/// A file's name alone (what the manifest and the status name it by).
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// A buffer's time in the file, from its time since the file's start and the last buffer's: each at least one
/// tick of the container's clock (1 ms) after the last (a burst released with one timestamp, a small step back),
/// the file's second buffer too (two frames at 0 ms made ffmpeg refuse the file: "non monotonically increasing
/// dts"). In whole ticks: matroskamux floors a cluster's time but rounds a block's offset in it, so two times
/// 1 ms apart off the whole ms (10.6 ms, then 11.6 ms starting a cluster) could otherwise be written as one.
fn in_file_time(since_start: gst::ClockTime, last: Option<gst::ClockTime>) -> gst::ClockTime {
    let tick = CONTAINER_TICK.nseconds();
    let whole = gst::ClockTime::from_nseconds(since_start.nseconds() / tick * tick);
    match last {
        Some(last) if whole < last + CONTAINER_TICK => last + CONTAINER_TICK,
        _ => whole,
    }
}

/// `appsrc ! [parser] ! mux ! filesink` writing `path`.
fn file_pipeline(path: &Path, codec: Codec, caps: &gst::Caps) -> Result<(gst::Pipeline, gst_app::AppSrc)> {
    let pipeline = gst::Pipeline::with_name("track-file");
    let appsrc = gst_app::AppSrc::builder()
        // Its streaming thread (the muxing and writing) is `tracks:src` in `callcast bench`'s CPU by thread.
        .name("tracks")
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(false)
        .max_time(gst::ClockTime::from_nseconds(QUEUE_NS))
        .max_bytes(0)
        .max_buffers(0)
        .build();
    appsrc.set_property_from_str("leaky-type", "downstream");
    let mut chain: Vec<gst::Element> = vec![appsrc.clone().upcast()];
    if let Some(parser) = codec.parser() {
        chain.push(make(parser)?);
    }
    let mux = make(codec.muxer())?;
    mux.set_property("max-cluster-duration", CLUSTER_NS);
    let sink = make("filesink")?;
    sink.set_property("location", path.to_string_lossy().as_ref());
    // Every block reaches the disk as it is muxed (a crash then loses at most the open cluster), and the muxer
    // seeks back to finish clusters and the header: no clock to wait for.
    sink.set_property_from_str("buffer-mode", "unbuffered");
    sink.set_property("async", false);
    let refs: Vec<&gst::Element> = chain.iter().collect();
    crate::gst_util::add_and_link(&pipeline, &refs)?;
    crate::gst_util::add_and_link(&pipeline, &[&mux, &sink])?;
    let pad = if codec.is_video() { "video_%u" } else { "audio_%u" };
    chain
        .last()
        .expect("the appsrc at least")
        .link_pads(None, &mux, Some(pad))
        .with_context(|| format!("linking {} to {}", codec.name(), codec.muxer()))?;
    Ok((pipeline, appsrc))
}

#[cfg(test)]
mod tests {
    use super::TrackWriter;
    use crate::call::encoded_tap::EncodedTap;
    use crate::output::hub::EncodedHub;
    use gst::prelude::*;

    /// `n` VP8 frames of a test picture, a keyframe every `key_every`, as the depayloader gives them.
    fn vp8_frames(n: u32, key_every: u32) -> (Vec<gst::Buffer>, gst::Caps) {
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc num-buffers={n} ! video/x-raw,width=64,height=48,framerate=30/1 ! \
             vp8enc keyframe-max-dist={key_every} ! appsink name=out sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = pipeline.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut frames = Vec::new();
        let mut caps = None;
        while let Ok(sample) = sink.pull_sample() {
            caps = sample.caps().map(|c| c.to_owned());
            frames.push(sample.buffer_owned().unwrap());
        }
        pipeline.set_state(gst::State::Null).unwrap();
        (frames, caps.unwrap())
    }

    /// (keyframe, pts in s) of every video packet of `path`, as ffprobe reads the container.
    fn packets(path: &std::path::Path) -> Vec<(bool, f64)> {
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=flags,pts_time",
            ])
            .args(["-of", "csv=p=0"])
            .arg(path)
            .output()
            .expect("ffprobe");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (pts, flags) = l.split_once(',')?;
                Some((flags.starts_with('K'), pts.parse().ok()?))
            })
            .collect()
    }

    /// Frames that arrive with one timestamp (at the file's start, and later) are written at strictly increasing
    /// times.
    #[test]
    fn frames_never_share_a_time_in_the_file() {
        let _glib = crate::glib_watch::watch();
        let (frames, caps) = vp8_frames(10, 100);
        let (mixer, hub) = playing_hub();
        let base = hub.mixer_base_time().expect("the mixer's base time");
        let dir = tempfile::tempdir().unwrap();
        let writer = video_writer(dir.path(), &hub);
        let mut receive = writer.receiver();
        // In µs after the first: frames 0 (a keyframe) and 1 at one time (a burst as the file opens); 6 and 7 at
        // one time off the whole ms, 7 then moved 1 ms after 6 and starting a cluster (the longest is 1 s).
        let at_us = [
            0, 0, 200_000, 400_000, 600_000, 800_000, 999_600, 999_600, 1_100_000, 1_200_000,
        ];
        for (frame, us) in frames.iter().zip(at_us) {
            let mut frame = frame.copy();
            frame
                .make_mut()
                .set_pts(base + gst::ClockTime::from_mseconds(2000) + gst::ClockTime::from_useconds(us));
            receive(frame, &caps);
        }
        assert!(writer.close(), "finalised");
        mixer.set_state(gst::State::Null).unwrap();
        let written = packets(&writer.info().expect("a file").path);
        let times: Vec<f64> = written.iter().map(|(_, t)| *t).collect();
        assert_eq!(times.len(), 10, "{written:?}");
        assert!(times.windows(2).all(|w| w[1] > w[0]), "times not increasing: {times:?}");
    }

    /// A file that failed while written (an error on its pipeline, as a full disk posts) is reported, and stays
    /// failed once closed: its manifest entry says so at the participant's leave too.
    #[test]
    fn a_failed_file_stays_failed_when_closed() {
        let _glib = crate::glib_watch::watch();
        let (frames, caps) = vp8_frames(3, 100);
        let (mixer, hub) = playing_hub();
        let base = hub.mixer_base_time().expect("the mixer's base time");
        let dir = tempfile::tempdir().unwrap();
        let writer = video_writer(dir.path(), &hub);
        let mut receive = writer.receiver();
        for (i, frame) in frames.iter().enumerate() {
            let mut frame = frame.copy();
            frame
                .make_mut()
                .set_pts(base + gst::ClockTime::from_mseconds(2000 + 100 * i as u64));
            receive(frame, &caps);
        }
        assert!(writer.info().is_some(), "the file opened");
        {
            let inner = writer.inner.lock().unwrap();
            let super::State::Writing(open) = &inner.state else {
                panic!("not writing");
            };
            let error = gst::message::Error::new(gst::ResourceError::NoSpaceLeft, "No space left on device");
            open.pipeline.post_message(error).unwrap();
        }
        let (file, error) = writer.failure().expect("the failure");
        assert!(
            file.starts_with("p-1-video") && error.contains("No space left"),
            "{file}: {error}"
        );
        assert!(!writer.close(), "a failed file is not finalised");
        assert_eq!(writer.failure().map(|(f, _)| f), Some(file));
        mixer.set_state(gst::State::Null).unwrap();
    }

    /// A video track's writer of `dir/p-1-video`, on `hub`'s timeline.
    fn video_writer(dir: &std::path::Path, hub: &EncodedHub) -> TrackWriter {
        TrackWriter::new(
            dir.join("p-1-video"),
            true,
            &EncodedTap::new(Default::default()),
            hub,
            std::sync::Arc::default(),
        )
    }

    /// A hub whose mixer is playing: its base time puts frames on the outputs' timeline.
    fn playing_hub() -> (gst::Pipeline, EncodedHub) {
        let mixer = gst::Pipeline::new();
        let sink = || gst_app::AppSink::builder().async_(false).build();
        let (video, audio) = (sink(), sink());
        mixer
            .add_many([video.upcast_ref::<gst::Element>(), audio.upcast_ref()])
            .unwrap();
        let hub = EncodedHub::new(gst::ClockTime::SECOND);
        hub.attach(&video, &audio, std::sync::Arc::default());
        mixer.set_state(gst::State::Playing).unwrap();
        (mixer, hub)
    }

    /// A video file set up mid-stream drops the frames before the next keyframe and starts its own time there.
    #[test]
    fn a_video_file_starts_at_the_first_keyframe_it_gets() {
        let _glib = crate::glib_watch::watch();
        let (frames, caps) = vp8_frames(12, 5);
        let keys: Vec<bool> = frames
            .iter()
            .map(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT))
            .collect();
        assert_eq!(
            keys.iter().filter(|k| **k).count(),
            3,
            "keyframes at 0, 5, 10: {keys:?}"
        );
        let (mixer, hub) = playing_hub();
        let base = hub.mixer_base_time().expect("the mixer's base time");
        let dir = tempfile::tempdir().unwrap();
        let writer = video_writer(dir.path(), &hub);
        let mut receive = writer.receiver();
        // From frame 1 on (a delta frame), 100 ms apart, 2 s after the mixer started.
        for (i, frame) in frames.iter().enumerate().skip(1) {
            let mut frame = frame.copy();
            let pts = base + gst::ClockTime::from_mseconds(2000 + 100 * i as u64);
            frame.make_mut().set_pts(pts);
            receive(frame, &caps);
        }
        assert!(writer.close(), "finalised");
        mixer.set_state(gst::State::Null).unwrap();
        let info = writer.info().expect("a file");
        let written = packets(&info.path);
        // Frames 5..=11: the keyframe at 5 first, at 0 s of the file.
        assert_eq!(written.len(), 7, "{written:?}");
        assert_eq!(written[0], (true, 0.0), "{written:?}");
        assert_eq!(written.iter().filter(|(k, _)| *k).count(), 2, "{written:?}");
        // Its place on the outputs' timeline: frame 5's time since the mixer started, plus the AAC delay.
        assert_eq!(info.start, gst::ClockTime::from_nseconds(2_500_000_000 + 21_333_333));
        // It ends where its last frame (at 600 ms) ends.
        let last = frames
            .last()
            .and_then(|f| f.duration())
            .expect("vp8enc stamps durations");
        assert_eq!(info.end, info.start + gst::ClockTime::from_mseconds(600) + last);
    }
}
