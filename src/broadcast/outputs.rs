//! A broadcast's running outputs: each its own task with its own stop flag, so one can be added or removed
//! while the others keep streaming.

use super::spec::OutputSpec;
use super::status::{OutputState, OutputStatus, SharedStatus};
use crate::output::hub::EncodedHub;
use crate::output::runner::OutputRunner;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// How long a removed or stopping output may take to finalise.
const FINISH_TIMEOUT: Duration = Duration::from_secs(6);

struct Running {
    id: String,
    is_hls: bool,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

pub struct Outputs {
    hub: EncodedHub,
    hls_dir: PathBuf,
    status: SharedStatus,
    running: Vec<Running>,
}

/// Why an output cannot be added now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("this broadcast already has an hls output")]
    SecondHls,
    #[error("at most {0} outputs at once")]
    TooMany(usize),
}

impl Outputs {
    /// Starts the broadcast's first outputs, with the ids its status already lists.
    pub fn start(hub: &EncodedHub, hls_dir: PathBuf, status: SharedStatus, specs: &[OutputSpec]) -> Self {
        let mut outputs = Self {
            hub: hub.clone(),
            hls_dir,
            status: status.clone(),
            running: Vec::new(),
        };
        let ids: Vec<String> = status.snapshot().outputs.into_iter().map(|o| o.id).collect();
        for (spec, id) in specs.iter().zip(ids) {
            outputs.spawn(id, spec.clone());
        }
        outputs
    }

    fn spawn(&mut self, id: String, spec: OutputSpec) {
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("output", output_id = %id, kind = spec.kind());
        let is_hls = matches!(spec, OutputSpec::Hls { .. });
        let runner = OutputRunner {
            id: id.clone(),
            spec,
            hls_dir: self.hls_dir.clone(),
            hub: self.hub.clone(),
            status: self.status.clone(),
        };
        let task = tokio::spawn(runner.run(stop_rx).instrument(span));
        self.running.push(Running { id, is_hls, stop, task });
    }

    /// Adds an output to the live broadcast; it starts at the next keyframe. Returns its status.
    pub fn add(&mut self, spec: OutputSpec, max: usize) -> Result<OutputStatus, AddError> {
        self.running.retain(|r| !r.task.is_finished());
        if self.running.len() >= max {
            return Err(AddError::TooMany(max));
        }
        if matches!(spec, OutputSpec::Hls { .. }) && self.running.iter().any(|r| r.is_hls) {
            return Err(AddError::SecondHls);
        }
        let n = self.status.snapshot().outputs.len();
        let id = format!("out_{n}");
        let output = super::output_status(&id, &self.status.snapshot().id, &spec);
        self.status.add_output(output.clone());
        self.spawn(id, spec);
        Ok(output)
    }

    /// Stops one output: it finalises (RTMP closed after its last packet, HLS end list) while the others go on.
    /// Resolves when it has; None if there is no such running output.
    pub fn remove(&mut self, id: &str) -> Option<impl std::future::Future<Output = ()> + use<>> {
        let pos = self.running.iter().position(|r| r.id == id && !r.task.is_finished())?;
        let running = self.running.remove(pos);
        let _ = running.stop.send(true);
        let status = self.status.clone();
        let id = id.to_string();
        Some(async move {
            if tokio::time::timeout(FINISH_TIMEOUT, running.task).await.is_err() {
                tracing::warn!(output_id = %id, "removed output did not finish in time");
            }
            status.update_output(&id, |o| o.state = OutputState::Ended);
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
