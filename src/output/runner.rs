//! Runs one output: builds its pipeline, feeds it from the hub, and on failure retries with backoff without
//! touching any other output.

use super::config::OutputConfig;
use super::events::{OutputEvent, Reporter};
use super::hls_writer::HlsPlaylist;
use super::hub::EncodedHub;
use super::record::Recording;
use super::record_parts::NextPart;
use super::OutputPipeline;
use futures::StreamExt;
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// HLS and recordings write to a local disk: a failure there is retried on this fixed backoff.
const LOCAL_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(10));
/// How long a stopping output may take to flush and close.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct OutputRunner {
    pub config: OutputConfig,
    pub dirs: OutputDirs,
    pub hub: EncodedHub,
    pub reporter: Reporter,
    /// Bytes written over every attempt: a counter that never goes down.
    bytes: Arc<AtomicU64>,
    /// An HLS output's playlist as its latest attempt left it, ended when the output ends.
    hls_playlists: std::sync::Mutex<Vec<HlsPlaylist>>,
    /// A low-latency HLS output's writer of its latest attempt, ended likewise.
    ll_hls: std::sync::Mutex<Vec<super::ll_hls::LlWriter>>,
}

/// Where a broadcast's outputs write, and how long it may last (a recording reserves index room for that).
#[derive(Debug, Clone)]
pub struct OutputDirs {
    pub hls: PathBuf,
    pub recordings: PathBuf,
    /// Tracks outputs write in a folder of their own under it.
    pub tracks: PathBuf,
    pub max_duration: Duration,
}

enum Outcome {
    /// EOS went through: the output is complete.
    Finished,
    /// The attempt failed; `was_live` if it had been sending before.
    Failed { error: String, was_live: bool },
}

impl OutputRunner {
    pub fn new(config: OutputConfig, dirs: OutputDirs, hub: EncodedHub, reporter: Reporter) -> Self {
        Self {
            config,
            dirs,
            hub,
            reporter,
            bytes: Arc::default(),
            hls_playlists: std::sync::Mutex::default(),
            ll_hls: std::sync::Mutex::default(),
        }
    }

    /// The last byte count, then the end.
    fn end(&self) {
        if let OutputConfig::Whep { station } = &self.config {
            station.close();
        }
        // Stopped while waiting to retry: the playlist the failed attempt left ends as it is.
        self.finish_hls_playlist(false);
        self.reporter
            .send(OutputEvent::Bytes(self.bytes.load(Ordering::Relaxed)));
        self.reporter.send(OutputEvent::Ended);
    }

    fn build(&self) -> anyhow::Result<OutputPipeline> {
        match &self.config {
            OutputConfig::Rtmp { url, tls_verify, .. } => super::rtmp::build(url, *tls_verify),
            OutputConfig::Srt { url, .. } => super::srt::build(url, self.hub.is_audio_only()),
            OutputConfig::Hls {
                segment_seconds,
                window,
                low_latency: Some(board),
                ladder,
                ..
            } => {
                let (output, writers) =
                    super::ll_hls::build(&self.dirs.hls, *segment_seconds, *window, board, ladder.as_ref())?;
                *self.ll_hls.lock().unwrap_or_else(|e| e.into_inner()) = writers;
                Ok(output)
            }
            OutputConfig::Hls {
                segment_seconds,
                window,
                ladder,
                ..
            } => {
                let timing = super::hls::SegmentTiming {
                    segment_seconds: *segment_seconds,
                    keyframe_interval: self.hub.keyframe_interval(),
                };
                let audio_only = self.hub.is_audio_only();
                let (output, playlists) =
                    super::hls::build(&self.dirs.hls, timing, *window, audio_only, ladder.as_ref())?;
                *self.hls_playlists.lock().unwrap_or_else(|e| e.into_inner()) = playlists;
                Ok(output)
            }
            OutputConfig::Record { format, split, .. } => {
                // Each attempt and each part its own file, named by when it opened: nothing is written over.
                let name = super::record::file_name(self.reporter.output_id(), crate::wall_clock::now_ms(), *format);
                let reserve = split.reserve(self.dirs.max_duration);
                let audio_only = self.hub.is_audio_only();
                super::record::build(&self.dirs.recordings.join(name), *format, reserve, audio_only)
            }
            OutputConfig::Tracks { .. } => anyhow::bail!("a tracks output follows the participants, not the hub"),
            OutputConfig::Whep { station } => {
                // Built (which tells the station whether there is a picture) before viewers may join.
                let output = super::whep::build(station, self.hub.is_audio_only())?;
                let hub = self.hub.clone();
                station.open(move || hub.request_keyframe());
                Ok(output)
            }
        }
    }

    /// Whether the destination has taken the stream, so the output is `live` and has something to drain at the
    /// end. HLS: data reached the sink (it writes files). RTMP: the sink's connection is up, which rtmp2sink has
    /// only once the handshake, `connect` and `publish` went through; the FLV header alone reaches the sink of a
    /// server that never answers. SRT: srtsink counted bytes sent on a connected socket (after the handshake).
    fn accepted(&self, sink: &gst::Element, data_seen: &AtomicBool) -> bool {
        data_seen.load(Ordering::Relaxed)
            && match &self.config {
                OutputConfig::Rtmp { .. } => super::rtmp::published(sink),
                OutputConfig::Srt { .. } => super::srt::sent(sink),
                OutputConfig::Hls { .. }
                | OutputConfig::Record { .. }
                | OutputConfig::Tracks { .. }
                | OutputConfig::Whep { .. } => true,
            }
    }

    /// Error text with any secret of this output removed, and what to do about a refused certificate or SRT
    /// handshake (`was_live`: the attempt had taken the stream before it failed).
    fn scrub(&self, text: &str, was_live: bool) -> String {
        match &self.config {
            OutputConfig::Rtmp { url, .. } if text.contains("Unacceptable TLS certificate") => format!(
                "{}: the server's certificate is not trusted (unknown CA, wrong host name or expired); \
                 a private CA goes in rtmp_ca_file",
                url.scrub(text)
            ),
            OutputConfig::Rtmp { url, .. } => url.scrub(text),
            OutputConfig::Srt { url, .. } => match super::srt::explain(text, was_live) {
                Some(hint) => format!("{}: {hint}", url.scrub(text)),
                None => url.scrub(text),
            },
            OutputConfig::Hls { .. }
            | OutputConfig::Record { .. }
            | OutputConfig::Tracks { .. }
            | OutputConfig::Whep { .. } => text.to_string(),
        }
    }

    /// Runs until the hub drains (broadcast stopping) or `stop` fires.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (backoff_start, backoff_max) = match &self.config {
            OutputConfig::Rtmp {
                reconnect_initial,
                reconnect_max_interval,
                ..
            }
            | OutputConfig::Srt {
                reconnect_initial,
                reconnect_max_interval,
                ..
            } => (*reconnect_initial, *reconnect_max_interval),
            OutputConfig::Hls { .. }
            | OutputConfig::Record { .. }
            | OutputConfig::Tracks { .. }
            | OutputConfig::Whep { .. } => LOCAL_BACKOFF,
        };
        let mut backoff = backoff_start;
        // Since when this output has been failing without going live in between.
        let mut failing_since: Option<std::time::Instant> = None;
        let give_up_after = match &self.config {
            OutputConfig::Rtmp { max_reconnect, .. } | OutputConfig::Srt { max_reconnect, .. } => *max_reconnect,
            OutputConfig::Hls { .. }
            | OutputConfig::Record { .. }
            | OutputConfig::Tracks { .. }
            | OutputConfig::Whep { .. } => None,
        };
        loop {
            let outcome = match self.build() {
                Ok(output) => self.run_once(output, &mut stop).await,
                Err(err) => Outcome::Failed {
                    error: format!("{err:#}"),
                    was_live: false,
                },
            };
            match outcome {
                Outcome::Finished => {
                    self.end();
                    return;
                }
                Outcome::Failed { error, was_live } => {
                    let error = self.scrub(&error, was_live);
                    if was_live {
                        // It worked for a while: a new outage starts from a short wait again.
                        backoff = backoff_start;
                        failing_since = None;
                    }
                    let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                    if give_up_after.is_some_and(|max| since.elapsed() >= max) {
                        tracing::warn!("output gave up after {:?}: {error}", since.elapsed());
                        self.reporter.send(OutputEvent::Failed { error });
                        return;
                    }
                    tracing::warn!("output failed, retrying in {backoff:?}: {error}");
                    let retry_at_ms = crate::wall_clock::now_ms() + backoff.as_millis() as u64;
                    self.reporter.send(OutputEvent::Reconnecting { error, retry_at_ms });
                    let stopped = tokio::time::timeout(backoff, stopped(&mut stop)).await.is_ok();
                    let drained = *self.hub.drained().borrow();
                    if stopped || drained {
                        self.end();
                        return;
                    }
                    backoff = (backoff * 2).min(backoff_max);
                }
            }
        }
    }

    async fn run_once(&self, output: OutputPipeline, stop: &mut watch::Receiver<bool>) -> Outcome {
        let sink = output.sink.clone();
        let data_seen = Arc::new(AtomicBool::new(false));
        self.count_bytes(&sink, data_seen.clone());
        if let OutputConfig::Hls { upload: true, .. } = &self.config {
            super::hls_cuts::report_cuts(&output.sink, self.reporter.clone());
        }
        let mut cur = Current::new(output);
        // Off the async threads: a state change may block (rtmp2sink connects at the first packet, not here, but
        // nothing else on these threads may wait for a pipeline).
        let starting = cur.pipeline.clone();
        let started = tokio::task::spawn_blocking(move || starting.set_state(gst::State::Playing).map(|_| ()))
            .await
            .unwrap_or(Err(gst::StateChangeError));
        if let Err(err) = started {
            let _ = cur.pipeline.set_state(gst::State::Null);
            return Outcome::Failed {
                error: self.first_error(&mut cur.bus).await.unwrap_or_else(|| err.to_string()),
                was_live: false,
            };
        }
        let mut feed = Some(self.hub.add_feed(cur.video.clone(), cur.audio.clone()));
        let poll = Duration::from_millis(100);
        let mut live_poll = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        // Live once the destination took the stream (`accepted`), checked every poll interval and reported as
        // `OutputEvent::Live`: an attempt that fails before that was never live, and does not reset the backoff.
        let mut reported_live = false;
        if let Some(recording) = &cur.recording {
            self.report_recording(recording);
        }
        let mut recording_tick = tokio::time::interval(Duration::from_secs(1));
        // A recording's next file, once the current one is about to reach its length or size.
        let mut next_part: Option<NextPart> = None;
        // Whether EOS went through every element: only then is a recording finalised.
        let mut finished_cleanly = false;
        let failed = |error: String, was_live: bool| Outcome::Failed { error, was_live };
        let outcome = loop {
            tokio::select! {
                msg = cur.bus.next() => match msg.as_ref().map(|m| m.view()) {
                    Some(gst::MessageView::Eos(_)) if next_part.as_ref().is_some_and(NextPart::took_over) => {
                        // The file ended where the next one took over: it is complete, the recording goes on.
                        self.take_over(&mut cur, next_part.take().expect("checked above"), true);
                    }
                    Some(gst::MessageView::Eos(_)) => {
                        finished_cleanly = true;
                        break Outcome::Finished;
                    }
                    Some(gst::MessageView::Error(err)) if next_part.as_ref().is_some_and(NextPart::took_over) => {
                        // The part before the hand-over failed to finish (its index may be short of its end); the
                        // recording goes on in the next part, which already has the media since.
                        tracing::warn!("a recording's part did not finish: {}", crate::gst_util::describe_error(err));
                        self.take_over(&mut cur, next_part.take().expect("checked above"), false);
                    }
                    Some(gst::MessageView::Error(err)) => {
                        break failed(crate::gst_util::describe_error(err), reported_live)
                    }
                    None => break failed("bus closed".into(), reported_live),
                    _ => {}
                },
                _ = recording_tick.tick(), if cur.recording.is_some() => {
                    if let Some(recording) = &cur.recording {
                        self.report_recording(recording);
                    }
                    if let (None, Some(feed), Some(from_pts)) = (&next_part, &feed, self.part_due(&cur.recording)) {
                        match self.build() {
                            Ok(output) => match NextPart::start(output, feed, from_pts).await {
                                Ok(part) => next_part = Some(part),
                                Err(e) => tracing::warn!("cannot open a recording's next file: {e:#}"),
                            },
                            Err(e) => tracing::warn!("cannot open a recording's next file: {e:#}"),
                        }
                    }
                }
                _ = live_poll.tick(), if !reported_live => {
                    if self.accepted(&sink, &data_seen) {
                        reported_live = true;
                        self.reporter.send(OutputEvent::Live);
                    }
                }
                _ = stopped(stop) => {
                    drop(feed.take());
                    if let Some(next) = next_part.take_if(|p| p.took_over()) {
                        // The next file took over a moment ago and the current one is ending on its own: it is
                        // finished first, then the next one is ended below like any other.
                        let clean = finish(&mut cur.bus).await;
                        self.take_over(&mut cur, next, clean);
                    }
                    if !self.accepted(&sink, &data_seen) {
                        // Not connected (waiting for a keyframe, connecting, or never answered): nothing was sent,
                        // so there is nothing to finish. Waiting for an EOS here is what held a stop for 5 s: a
                        // pipeline that never saw a buffer does not always bring EOS through.
                        break Outcome::Finished;
                    }
                    // Removed alone (the broadcast goes on) or the hub drained: either way this output ends after
                    // what it already has, and gets a bounded time to finish.
                    if let Some(video) = &cur.video {
                        let _ = video.end_of_stream();
                    }
                    let _ = cur.audio.end_of_stream();
                    finished_cleanly = finish(&mut cur.bus).await;
                    break Outcome::Finished;
                }
            }
        };
        let _ = cur.pipeline.set_state(gst::State::Null);
        if let Some(part) = next_part.take() {
            part.discard();
        }
        if matches!(outcome, Outcome::Finished) {
            // After NULL: the last segment's file is closed. A failed attempt leaves its playlist open for the
            // next one to go on with.
            self.finish_hls_playlist(finished_cleanly);
        }
        if let (Some(recording), true) = (&cur.recording, finished_cleanly) {
            // After NULL: the file is closed, so its size is final.
            self.report_ready(recording);
        }
        outcome
    }

    /// Ends an HLS output's playlist (once: later calls find nothing to end); see `HlsPlaylist::finish`.
    fn finish_hls_playlist(&self, last_complete: bool) {
        let playlists = std::mem::take(&mut *self.hls_playlists.lock().unwrap_or_else(|e| e.into_inner()));
        for playlist in playlists {
            playlist.finish(last_complete);
        }
        for writer in std::mem::take(&mut *self.ll_hls.lock().unwrap_or_else(|e| e.into_inner())) {
            writer.finish(last_complete);
        }
    }

    /// A recording's next part took over: the current file is closed (and reported finalised if its EOS went
    /// through), and the next one becomes the current.
    fn take_over(&self, cur: &mut Current, next: NextPart, clean: bool) {
        let _ = cur.pipeline.set_state(gst::State::Null);
        if let (Some(done), true) = (cur.recording.take(), clean) {
            self.report_ready(&done);
        }
        let NextPart { output, bus, .. } = next;
        *cur = Current::with_bus(output, bus);
        if let Some(recording) = &cur.recording {
            self.report_recording(recording);
        }
    }

    /// Whether a recording's file should get its successor now (see `record_parts::due`).
    fn part_due(&self, recording: &Option<Recording>) -> Option<Option<gst::ClockTime>> {
        match (&self.config, recording) {
            (OutputConfig::Record { split, .. }, Some(recording)) => super::record_parts::due(split, recording),
            _ => None,
        }
    }

    fn report_recording(&self, recording: &Recording) {
        self.reporter.send(OutputEvent::Recording {
            path: recording.path.to_string_lossy().into_owned(),
            bytes: recording.bytes_on_disk(),
            duration_ms: recording.duration_ms(),
        })
    }

    /// A file finalised (call once its pipeline is in NULL: the file is closed, its size final).
    fn report_ready(&self, recording: &Recording) {
        self.reporter.send(OutputEvent::RecordingReady {
            path: recording.path.to_string_lossy().into_owned(),
            bytes: recording.bytes_on_disk(),
            duration_ms: recording.duration_ms(),
        });
    }

    async fn first_error(&self, bus: &mut gst::bus::BusStream) -> Option<String> {
        let wait = async {
            while let Some(msg) = bus.next().await {
                if let gst::MessageView::Error(err) = msg.view() {
                    return Some(crate::gst_util::describe_error(err));
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_millis(200), wait)
            .await
            .ok()
            .flatten()
    }

    /// Counts bytes reaching the sink (cheap: one atomic add per buffer or list) and flags that data came.
    /// Muxers push buffer lists as well as buffers (mpegtsmux does): both count.
    fn count_bytes(&self, sink: &gst::Element, data_seen: Arc<AtomicBool>) {
        let reported_ms = Arc::new(AtomicU64::new(0));
        for pad in sink.sink_pads() {
            let (bytes, data_seen, reporter) = (self.bytes.clone(), data_seen.clone(), self.reporter.clone());
            let reported_ms = reported_ms.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, info| {
                    let size = match &info.data {
                        Some(gst::PadProbeData::Buffer(buffer)) => buffer.size(),
                        Some(gst::PadProbeData::BufferList(list)) => list.calculate_size(),
                        _ => return gst::PadProbeReturn::Ok,
                    } as u64;
                    let total = bytes.fetch_add(size, Ordering::Relaxed) + size;
                    data_seen.store(true, Ordering::Relaxed);
                    // Reported about once a second: the owner needs no per-packet traffic.
                    let now = crate::wall_clock::now_ms();
                    if now.saturating_sub(reported_ms.load(Ordering::Relaxed)) >= 1000 {
                        reported_ms.store(now, Ordering::Relaxed);
                        reporter.send(OutputEvent::Bytes(total));
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        }
    }
}

/// What an attempt writes to now: its pipeline, or a recording's latest part.
struct Current {
    pipeline: gst::Pipeline,
    video: Option<gst_app::AppSrc>,
    audio: gst_app::AppSrc,
    recording: Option<Recording>,
    bus: gst::bus::BusStream,
}

impl Current {
    fn new(output: OutputPipeline) -> Self {
        let bus = output.pipeline.bus().expect("pipeline has a bus").stream();
        Self::with_bus(output, bus)
    }

    /// With the bus stream already made for it: a bus has one stream at a time (a second one takes its
    /// messages, and dropping either leaves the bus with none).
    fn with_bus(output: OutputPipeline, bus: gst::bus::BusStream) -> Self {
        Self {
            pipeline: output.pipeline,
            video: output.video,
            audio: output.audio,
            recording: output.recording,
            bus,
        }
    }
}

/// Waits (a bounded time) for an ending pipeline's EOS; true if it came, false on an error or the timeout.
async fn finish(bus: &mut gst::bus::BusStream) -> bool {
    let eos = tokio::time::timeout(FINALIZE_TIMEOUT, async {
        while let Some(msg) = bus.next().await {
            match msg.view() {
                gst::MessageView::Eos(_) => return true,
                gst::MessageView::Error(_) => return false,
                _ => {}
            }
        }
        false
    })
    .await;
    eos.unwrap_or_else(|_| {
        tracing::warn!("output did not finish in time");
        false
    })
}

/// Resolves once the stop flag is set (returns no borrow guard, so callers stay `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
