//! A broadcast's running outputs: each its own task with its own stop flag, so one can be added or removed
//! while the others keep streaming. They report on the actor's channel; nothing here writes status.

use crate::call::participant::Participant;
use crate::output::config::OutputConfig;
use crate::output::events::{OutputEvent, OutputReport, Reporter};
use crate::output::hub::EncodedHub;
use crate::output::runner::{OutputDirs, OutputRunner};
use crate::output::tracks::TracksOutput;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// How long a removed or stopping output may take to finalise.
const FINISH_TIMEOUT: Duration = Duration::from_secs(6);

struct Running {
    id: String,
    is_hls: bool,
    is_whep: bool,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

pub struct Outputs {
    hub: EncodedHub,
    dirs: OutputDirs,
    reports: mpsc::UnboundedSender<OutputReport>,
    running: Vec<Running>,
    /// Who is in the call: tracks outputs follow it.
    participants: watch::Sender<Vec<Arc<Participant>>>,
}

/// Why an output cannot be added now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("this broadcast already has an hls output")]
    SecondHls,
    #[error("this broadcast already has a whep output")]
    SecondWhep,
    #[error("at most {0} outputs at once")]
    TooMany(usize),
    #[error("{}", super::spec::RECORD_NEEDS_COMPOSITING)]
    RecordWithPassthrough,
    #[error("{}", super::spec::LOW_LATENCY_NEEDS_COMPOSITING)]
    LowLatencyWithPassthrough,
    #[error("{}", super::spec::RTMP_NEEDS_VIDEO)]
    NeedsVideo,
}

impl AddError {
    /// The request field the refusal is about.
    pub fn field(&self) -> &'static str {
        match self {
            AddError::SecondHls | AddError::SecondWhep | AddError::TooMany(_) | AddError::NeedsVideo => "kind",
            AddError::RecordWithPassthrough | AddError::LowLatencyWithPassthrough => "video.passthrough",
        }
    }
}

impl Outputs {
    pub fn new(hub: &EncodedHub, dirs: OutputDirs, reports: mpsc::UnboundedSender<OutputReport>) -> Self {
        Self {
            hub: hub.clone(),
            dirs,
            reports,
            running: Vec::new(),
            participants: watch::channel(Vec::new()).0,
        }
    }

    /// A participant joined the call (a new appearance, even with an id seen before).
    pub fn joined(&mut self, participant: Arc<Participant>) {
        self.participants.send_modify(|all| {
            all.retain(|p| p.id != participant.id);
            all.push(participant);
        });
    }

    /// A participant left the call.
    pub fn left(&mut self, id: &str) {
        self.participants.send_if_modified(|all| {
            let before = all.len();
            all.retain(|p| p.id != id);
            all.len() != before
        });
    }

    /// Starts output `id`; it reports on the broadcast's channel from now on.
    pub fn spawn(&mut self, id: String, config: OutputConfig) {
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("output", output_id = %id, kind = config.kind());
        let is_hls = matches!(config, OutputConfig::Hls { .. });
        let is_whep = matches!(config, OutputConfig::Whep { .. });
        let reporter = Reporter::new(id.clone(), self.reports.clone());
        let task = match config {
            OutputConfig::Tracks { .. } => {
                let tracks = TracksOutput {
                    dir: self.dirs.tracks.join(&id),
                    hub: self.hub.clone(),
                    reporter,
                    participants: self.participants.subscribe(),
                };
                tokio::spawn(tracks.run(stop_rx).instrument(span))
            }
            config => {
                let runner = OutputRunner::new(config, self.dirs.clone(), self.hub.clone(), reporter);
                tokio::spawn(runner.run(stop_rx).instrument(span))
            }
        };
        self.running.push(Running {
            id,
            is_hls,
            is_whep,
            stop,
            task,
        });
    }

    /// Whether `config` may be added to what runs now.
    pub fn check_add(&mut self, config: &OutputConfig, max: usize) -> Result<(), AddError> {
        self.running.retain(|r| !r.task.is_finished());
        if self.running.len() >= max {
            return Err(AddError::TooMany(max));
        }
        if matches!(config, OutputConfig::Hls { .. }) && self.running.iter().any(|r| r.is_hls) {
            return Err(AddError::SecondHls);
        }
        if matches!(config, OutputConfig::Whep { .. }) && self.running.iter().any(|r| r.is_whep) {
            return Err(AddError::SecondWhep);
        }
        Ok(())
    }

    /// Stops one output: it finalises (RTMP closed after its last packet, HLS end list) while the others go on.
    /// Resolves when it has (an output too slow to finish is reported ended all the same); None if there is no
    /// such running output.
    pub fn remove(&mut self, id: &str) -> Option<impl std::future::Future<Output = ()> + use<>> {
        let pos = self.running.iter().position(|r| r.id == id && !r.task.is_finished())?;
        let running = self.running.remove(pos);
        let _ = running.stop.send(true);
        let reporter = Reporter::new(id.to_string(), self.reports.clone());
        Some(async move {
            if tokio::time::timeout(FINISH_TIMEOUT, running.task).await.is_err() {
                tracing::warn!(output_id = %reporter.output_id(), "removed output did not finish in time");
                reporter.send(OutputEvent::Ended);
            }
        })
    }

    /// Stops every output and waits (bounded) until they finished.
    pub async fn stop_all(self) {
        for r in &self.running {
            let _ = r.stop.send(true);
        }
        let tasks = self.running.into_iter().map(|r| r.task);
        if tokio::time::timeout(FINISH_TIMEOUT, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!("outputs did not finish in time");
        }
    }
}
