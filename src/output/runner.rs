//! Runs one output: builds its pipeline, feeds it from the hub, and on failure retries with backoff without
//! touching any other output.

use super::config::OutputConfig;
use super::events::{OutputEvent, Reporter};
use super::hub::EncodedHub;
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
}

/// Where a broadcast's outputs write, and how long it may last (a recording reserves index room for that).
#[derive(Debug, Clone)]
pub struct OutputDirs {
    pub hls: PathBuf,
    pub recordings: PathBuf,
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
        }
    }

    /// The last byte count, then the end.
    fn end(&self) {
        self.reporter
            .send(OutputEvent::Bytes(self.bytes.load(Ordering::Relaxed)));
        self.reporter.send(OutputEvent::Ended);
    }

    fn build(&self) -> anyhow::Result<OutputPipeline> {
        match &self.config {
            OutputConfig::Rtmp { url, tls_verify, .. } => super::rtmp::build(url, *tls_verify),
            OutputConfig::Hls {
                segment_seconds,
                window,
                ..
            } => super::hls::build(&self.dirs.hls, *segment_seconds, *window),
            OutputConfig::Record { format, .. } => {
                // Each attempt its own file, named by when it started: a retry never writes over a finished file.
                let name = super::record::file_name(self.reporter.output_id(), crate::wall_clock::now_ms(), *format);
                let reserve = self.dirs.max_duration.min(super::record::MAX_RESERVE);
                super::record::build(&self.dirs.recordings.join(name), *format, reserve)
            }
        }
    }

    /// Whether the destination has taken the stream, so the output is `live` and has something to drain at the
    /// end. HLS: data reached the sink (it writes files). RTMP: the sink's connection is up, which rtmp2sink has
    /// only once the handshake, `connect` and `publish` went through; the FLV header alone reaches the sink of a
    /// server that never answers.
    fn accepted(&self, sink: &gst::Element, data_seen: &AtomicBool) -> bool {
        data_seen.load(Ordering::Relaxed)
            && match &self.config {
                OutputConfig::Rtmp { .. } => super::rtmp::published(sink),
                OutputConfig::Hls { .. } | OutputConfig::Record { .. } => true,
            }
    }

    /// Error text with any secret of this output removed, and what to do about a refused certificate.
    fn scrub(&self, text: &str) -> String {
        match &self.config {
            OutputConfig::Rtmp { url, .. } if text.contains("Unacceptable TLS certificate") => format!(
                "{}: the server's certificate is not trusted (unknown CA, wrong host name or expired); \
                 a private CA goes in rtmp_ca_file",
                url.scrub(text)
            ),
            OutputConfig::Rtmp { url, .. } => url.scrub(text),
            OutputConfig::Hls { .. } | OutputConfig::Record { .. } => text.to_string(),
        }
    }

    /// Runs until the hub drains (broadcast stopping) or `stop` fires.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (backoff_start, backoff_max) = match &self.config {
            OutputConfig::Rtmp {
                reconnect_initial,
                reconnect_max_interval,
                ..
            } => (*reconnect_initial, *reconnect_max_interval),
            OutputConfig::Hls { .. } | OutputConfig::Record { .. } => LOCAL_BACKOFF,
        };
        let mut backoff = backoff_start;
        // Since when this output has been failing without going live in between.
        let mut failing_since: Option<std::time::Instant> = None;
        let give_up_after = match &self.config {
            OutputConfig::Rtmp { max_reconnect, .. } => *max_reconnect,
            OutputConfig::Hls { .. } | OutputConfig::Record { .. } => None,
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
                    let error = self.scrub(&error);
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
        let OutputPipeline {
            pipeline,
            video,
            audio,
            sink,
            recording,
        } = output;
        let data_seen = Arc::new(AtomicBool::new(false));
        self.count_bytes(&sink, data_seen.clone());
        if let OutputConfig::Hls { upload: true, .. } = &self.config {
            super::hls_cuts::report_cuts(&sink, self.reporter.clone());
        }
        let mut bus = pipeline.bus().expect("pipeline has a bus").stream();
        // Off the async threads: a state change may block (rtmp2sink connects at the first packet, not here, but
        // nothing else on these threads may wait for a pipeline).
        let starting = pipeline.clone();
        let started = tokio::task::spawn_blocking(move || starting.set_state(gst::State::Playing).map(|_| ()))
            .await
            .unwrap_or(Err(gst::StateChangeError));
        if let Err(err) = started {
            let _ = pipeline.set_state(gst::State::Null);
            return Outcome::Failed {
                error: self.first_error(&mut bus).await.unwrap_or_else(|| err.to_string()),
                was_live: false,
            };
        }
        let mut feed = Some(self.hub.add_feed(video.clone(), audio.clone()));
        let poll = Duration::from_millis(100);
        let mut live_poll = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        // Live once the destination took the stream (`accepted`), checked every poll interval and reported as
        // `OutputEvent::Live`: an attempt that fails before that was never live, and does not reset the backoff.
        let mut reported_live = false;
        let report_recording = |recording: &super::record::Recording| {
            self.reporter.send(OutputEvent::Recording {
                path: recording.path.to_string_lossy().into_owned(),
                bytes: recording.bytes_on_disk(),
                duration_ms: recording.duration_ms(),
            })
        };
        if let Some(recording) = &recording {
            report_recording(recording);
        }
        let mut recording_tick = tokio::time::interval(Duration::from_secs(1));
        // Whether EOS went through every element: only then is a recording finalised.
        let mut finished_cleanly = false;
        let failed = |error: String, was_live: bool| Outcome::Failed { error, was_live };
        let outcome = loop {
            tokio::select! {
                msg = bus.next() => match msg.as_ref().map(|m| m.view()) {
                    Some(gst::MessageView::Eos(_)) => {
                        finished_cleanly = true;
                        break Outcome::Finished;
                    }
                    Some(gst::MessageView::Error(err)) => {
                        break failed(crate::gst_util::describe_error(err), reported_live)
                    }
                    None => break failed("bus closed".into(), reported_live),
                    _ => {}
                },
                _ = recording_tick.tick(), if recording.is_some() => {
                    if let Some(recording) = &recording {
                        report_recording(recording);
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
                    if !self.accepted(&sink, &data_seen) {
                        // Not connected (waiting for a keyframe, connecting, or never answered): nothing was sent,
                        // so there is nothing to finish. Waiting for an EOS here is what held a stop for 5 s: a
                        // pipeline that never saw a buffer does not always bring EOS through.
                        break Outcome::Finished;
                    }
                    // Removed alone (the broadcast goes on) or the hub drained: either way this output ends after
                    // what it already has, and gets a bounded time to finish.
                    let _ = video.end_of_stream();
                    let _ = audio.end_of_stream();
                    let eos = tokio::time::timeout(FINALIZE_TIMEOUT, async {
                        while let Some(msg) = bus.next().await {
                            match msg.view() {
                                gst::MessageView::Eos(_) => return true,
                                gst::MessageView::Error(_) => return false,
                                _ => {}
                            }
                        }
                        false
                    }).await;
                    match eos {
                        Ok(clean) => finished_cleanly = clean,
                        Err(_) => tracing::warn!("output did not finish in time"),
                    }
                    break Outcome::Finished;
                }
            }
        };
        let _ = pipeline.set_state(gst::State::Null);
        if let (OutputConfig::Hls { window: 0, .. }, true) = (&self.config, finished_cleanly) {
            // hlssink wrote its end list at EOS: the served playlist becomes VOD.
            if let Err(e) = super::hls_vod::publish(&self.dirs.hls) {
                tracing::warn!("cannot publish the final HLS playlist: {e}");
            }
        }
        if let (Some(recording), true) = (&recording, finished_cleanly) {
            // After NULL: the file is closed, so its size is final.
            self.reporter.send(OutputEvent::RecordingReady {
                path: recording.path.to_string_lossy().into_owned(),
                bytes: recording.bytes_on_disk(),
                duration_ms: recording.duration_ms(),
            });
        }
        outcome
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

/// Resolves once the stop flag is set (returns no borrow guard, so callers stay `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
