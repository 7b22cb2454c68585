//! Runs one output: builds its pipeline, feeds it from the hub, and on failure retries with backoff without
//! touching any other output.

use super::hub::EncodedHub;
use super::OutputPipeline;
use crate::broadcast::spec::OutputSpec;
use crate::broadcast::status::{OutputState, SharedStatus};
use futures::StreamExt;
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// HLS writes to a local disk: a failure there is retried on this fixed backoff.
const HLS_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(10));
/// How long a stopping output may take to flush and close.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct OutputRunner {
    pub id: String,
    pub spec: OutputSpec,
    pub hls_dir: PathBuf,
    pub hub: EncodedHub,
    pub status: SharedStatus,
}

enum Outcome {
    /// EOS went through: the output is complete.
    Finished,
    Failed(String),
}

impl OutputRunner {
    fn build(&self) -> anyhow::Result<OutputPipeline> {
        match &self.spec {
            OutputSpec::Rtmp { url, tls_verify, .. } => super::rtmp::build(url, *tls_verify),
            OutputSpec::Hls {
                segment_seconds,
                window,
            } => super::hls::build(&self.hls_dir, *segment_seconds, *window),
        }
    }

    /// Error text with any secret of this output removed, and what to do about a refused certificate.
    fn scrub(&self, text: &str) -> String {
        match &self.spec {
            OutputSpec::Rtmp { url, .. } if text.contains("Unacceptable TLS certificate") => format!(
                "{}: the server's certificate is not trusted (unknown CA, wrong host name or expired); \
                 a private CA goes in rtmp_ca_file",
                url.scrub(text)
            ),
            OutputSpec::Rtmp { url, .. } => url.scrub(text),
            OutputSpec::Hls { .. } => text.to_string(),
        }
    }

    fn set(&self, state: OutputState, error: Option<String>) {
        self.status.update_output(&self.id, |o| {
            o.state = state;
            o.error = error;
            o.next_retry_at_ms = None;
            if state == OutputState::Reconnecting {
                o.reconnects += 1;
            }
        });
    }

    fn state_now(&self) -> Option<OutputState> {
        self.status
            .snapshot()
            .outputs
            .iter()
            .find(|o| o.id == self.id)
            .map(|o| o.state)
    }

    /// Runs until the hub drains (broadcast stopping) or `stop` fires.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (backoff_start, backoff_max) = match &self.spec {
            OutputSpec::Rtmp {
                reconnect_initial,
                reconnect_max_interval,
                ..
            } => (*reconnect_initial, *reconnect_max_interval),
            OutputSpec::Hls { .. } => HLS_BACKOFF,
        };
        let mut backoff = backoff_start;
        // Since when this output has been failing without going live in between.
        let mut failing_since: Option<std::time::Instant> = None;
        let give_up_after = match &self.spec {
            OutputSpec::Rtmp { max_reconnect, .. } => *max_reconnect,
            OutputSpec::Hls { .. } => None,
        };
        loop {
            let outcome = match self.build() {
                Ok(output) => self.run_once(output, &mut stop).await,
                Err(err) => Outcome::Failed(format!("{err:#}")),
            };
            match outcome {
                Outcome::Finished => {
                    self.set(OutputState::Ended, None);
                    return;
                }
                Outcome::Failed(error) => {
                    let error = self.scrub(&error);
                    if self.state_now() == Some(OutputState::Live) {
                        // It worked for a while: a new outage starts from a short wait again.
                        backoff = backoff_start;
                        failing_since = None;
                    }
                    let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                    if give_up_after.is_some_and(|max| since.elapsed() >= max) {
                        tracing::warn!(output_id = %self.id, "output gave up after {:?}: {error}", since.elapsed());
                        self.set(OutputState::Failed, Some(error));
                        return;
                    }
                    tracing::warn!(output_id = %self.id, "output failed, retrying in {backoff:?}: {error}");
                    self.set(OutputState::Reconnecting, Some(error));
                    let retry_at = crate::wall_clock::now_ms() + backoff.as_millis() as u64;
                    self.status
                        .update_output(&self.id, |o| o.next_retry_at_ms = Some(retry_at));
                    let stopped = tokio::time::timeout(backoff, stopped(&mut stop)).await.is_ok();
                    let drained = *self.hub.drained().borrow();
                    if stopped || drained {
                        self.set(OutputState::Ended, None);
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
        } = output;
        let live = Arc::new(AtomicBool::new(false));
        self.count_bytes(&sink, live.clone());
        let mut bus = pipeline.bus().expect("pipeline has a bus").stream();
        // Starting an RTMP output connects and shakes hands inside the state change: off the async threads, so
        // a slow or unreachable server never holds up the broadcast's other tasks.
        let starting = pipeline.clone();
        let started = tokio::task::spawn_blocking(move || starting.set_state(gst::State::Playing).map(|_| ()))
            .await
            .unwrap_or(Err(gst::StateChangeError));
        if let Err(err) = started {
            let _ = pipeline.set_state(gst::State::Null);
            return Outcome::Failed(self.first_error(&mut bus).await.unwrap_or_else(|| err.to_string()));
        }
        let mut feed = Some(self.hub.add_feed(video.clone(), audio.clone()));
        let mut live_poll = tokio::time::interval(Duration::from_millis(100));
        let outcome = loop {
            tokio::select! {
                msg = bus.next() => match msg.as_ref().map(|m| m.view()) {
                    Some(gst::MessageView::Eos(_)) => break Outcome::Finished,
                    Some(gst::MessageView::Error(err)) => break Outcome::Failed(crate::gst_util::describe_error(err)),
                    None => break Outcome::Failed("bus closed".into()),
                    _ => {}
                },
                _ = live_poll.tick() => {
                    if live.load(Ordering::Relaxed) {
                        self.status.update_output(&self.id, |o| if o.state != OutputState::Live {
                            o.state = OutputState::Live;
                            o.error = None;
                        });
                    }
                }
                _ = stopped(stop) => {
                    // Removed alone (the broadcast goes on) or the hub drained: either way this output ends after
                    // what it already has, and gets a bounded time to finish.
                    drop(feed.take());
                    let _ = video.end_of_stream();
                    let _ = audio.end_of_stream();
                    let eos = tokio::time::timeout(FINALIZE_TIMEOUT, async {
                        while let Some(msg) = bus.next().await {
                            if matches!(msg.view(), gst::MessageView::Eos(_) | gst::MessageView::Error(_)) { break; }
                        }
                    }).await;
                    if eos.is_err() { tracing::warn!(output_id = %self.id, "output did not finish in time"); }
                    break Outcome::Finished;
                }
            }
        };
        let _ = pipeline.set_state(gst::State::Null);
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

    /// Counts bytes reaching the sink (cheap: one atomic add per buffer) and flags the output live.
    fn count_bytes(&self, sink: &gst::Element, live: Arc<AtomicBool>) {
        let bytes = Arc::new(AtomicU64::new(0));
        let status = self.status.clone();
        let id = self.id.clone();
        let reported_ms = Arc::new(AtomicU64::new(0));
        for pad in sink.sink_pads() {
            let (bytes, live, status, id) = (bytes.clone(), live.clone(), status.clone(), id.clone());
            let reported_ms = reported_ms.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    let total = bytes.fetch_add(buffer.size() as u64, Ordering::Relaxed) + buffer.size() as u64;
                    live.store(true, Ordering::Relaxed);
                    // Status is updated about once a second, to keep its lock off the hot path.
                    let now = crate::wall_clock::now_ms();
                    if now.saturating_sub(reported_ms.load(Ordering::Relaxed)) >= 1000 {
                        reported_ms.store(now, Ordering::Relaxed);
                        status.update_output(&id, |o| o.bytes = total);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
    }
}

/// Resolves once the stop flag is set (returns no borrow guard, so callers stay `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
