//! Uploads what is queued: one lane per owner (an output), its jobs strictly in order (a playlist after the
//! segments it lists), lanes side by side (one output's broken upload never holds up another's). A failed
//! attempt is retried after `backoff::delay`, for ever: the file waits safely on disk.

pub use super::queue::Source;
use super::queue::{Job, Queue};
use super::store::{PutError, Store};
use super::ObjectHeaders;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Events kept for subscribers that are momentarily behind.
const EVENT_BACKLOG: usize = 256;

/// One owner's uploads, for its status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OwnerStats {
    /// Bytes stored since this server started.
    pub uploaded_bytes: u64,
    /// Files stored since this server started.
    pub uploaded_files: u64,
    /// Files waiting to be stored (the one being uploaded included).
    pub pending: usize,
    /// Failed attempts since this server started.
    pub failures: u64,
    /// Why the last attempt failed, while the uploads are failing (cleared by the next success).
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadEvent {
    Done {
        owner: String,
        key: String,
        bytes: u64,
    },
    /// An attempt failed; the next starts after `retry_in_ms` (None: given up, the local file is gone).
    Failed {
        owner: String,
        key: String,
        error: String,
        retry_in_ms: Option<u64>,
    },
}

#[derive(Clone)]
pub struct Uploader {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    queue: Queue,
    state: Mutex<State>,
    events: broadcast::Sender<UploadEvent>,
    /// True once what a previous run left unfinished in storage is cleaned up: no lane uploads before.
    ready: tokio::sync::watch::Sender<bool>,
}

/// The longest the start-up clean-up may hold the uploads back (storage slow or unreachable).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct State {
    lanes: HashMap<String, Lane>,
    stats: HashMap<String, OwnerStats>,
}

#[derive(Default)]
struct Lane {
    jobs: VecDeque<Job>,
    running: bool,
}

impl Uploader {
    /// Opens the queue in `dir` and starts uploading what a previous run left in it, once the multipart uploads
    /// left unfinished under the key prefixes `ours` (this server's own objects) are aborted. Needs a tokio
    /// runtime.
    pub fn start(store: Store, dir: &Path, ours: Vec<String>) -> std::io::Result<Self> {
        let (queue, left) = Queue::open(dir)?;
        if !left.is_empty() {
            tracing::info!("{} uploads left from before: resuming", left.len());
        }
        let uploader = Self {
            inner: Arc::new(Inner {
                store,
                queue,
                state: Mutex::default(),
                events: broadcast::channel(EVENT_BACKLOG).0,
                ready: tokio::sync::watch::channel(false).0,
            }),
        };
        let inner = uploader.inner.clone();
        tokio::spawn(async move {
            let cleanup = super::leftovers::abort_unfinished(&inner.store, &ours);
            match tokio::time::timeout(CLEANUP_TIMEOUT, cleanup).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!("{n} multipart uploads left unfinished by a previous run aborted"),
                Ok(Err(e)) => tracing::warn!("cannot clean up unfinished multipart uploads: {e}"),
                Err(_) => tracing::warn!("cleaning up unfinished multipart uploads took too long: left for later"),
            }
            inner.ready.send_replace(true);
        });
        for job in left {
            uploader.push(job);
        }
        Ok(uploader)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Queues `source` for `key` (durably: it is on disk when this returns) behind `owner`'s earlier jobs.
    pub fn enqueue(&self, owner: &str, key: &str, source: Source, headers: ObjectHeaders) -> std::io::Result<()> {
        let job = self.inner.queue.add(owner, key, source, headers)?;
        self.push(job);
        Ok(())
    }

    /// True if a job uploads the file at `path` (a restart must not queue a recording twice).
    pub fn is_queued(&self, path: &Path) -> bool {
        let state = self.inner.state.lock().unwrap();
        state.lanes.values().any(|l| l.jobs.iter().any(|j| j.path == path))
    }

    pub fn stats(&self, owner: &str) -> OwnerStats {
        self.inner
            .state
            .lock()
            .unwrap()
            .stats
            .get(owner)
            .cloned()
            .unwrap_or_default()
    }

    /// Every owner's stats (for `/metrics`).
    pub fn all_stats(&self) -> Vec<(String, OwnerStats)> {
        let state = self.inner.state.lock().unwrap();
        state.stats.iter().map(|(o, s)| (o.clone(), s.clone())).collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<UploadEvent> {
        self.inner.events.subscribe()
    }

    fn push(&self, job: Job) {
        let owner = job.owner.clone();
        let mut state = self.inner.state.lock().unwrap();
        state.stats.entry(owner.clone()).or_default().pending += 1;
        let lane = state.lanes.entry(owner.clone()).or_default();
        lane.jobs.push_back(job);
        if !std::mem::replace(&mut lane.running, true) {
            tokio::spawn(run_lane(self.inner.clone(), owner));
        }
    }
}

/// Uploads `owner`'s jobs in order until none is left.
async fn run_lane(inner: Arc<Inner>, owner: String) {
    let _ = inner.ready.subscribe().wait_for(|ready| *ready).await;
    loop {
        let (job, superseded) = {
            let mut state = inner.state.lock().unwrap();
            let Some(lane) = state.lanes.get_mut(&owner) else {
                return;
            };
            let Some(job) = lane.jobs.front().cloned() else {
                lane.running = false;
                return;
            };
            let superseded = job.replaceable && lane.jobs.iter().skip(1).any(|later| later.key == job.key);
            (job, superseded)
        };
        let stored = if superseded {
            None
        } else {
            Some(upload(&inner, &job).await)
        };
        if let Err(e) = inner.queue.remove(&job) {
            tracing::warn!("cannot remove upload job {}: {e}", job.seq);
        }
        let mut state = inner.state.lock().unwrap();
        if let Some(lane) = state.lanes.get_mut(&owner) {
            lane.jobs.pop_front();
        }
        let stats = state.stats.entry(owner.clone()).or_default();
        stats.pending = stats.pending.saturating_sub(1);
        if let Some(Some(bytes)) = stored {
            stats.uploaded_bytes += bytes;
            stats.uploaded_files += 1;
            stats.last_error = None;
        }
    }
}

/// One job's attempts until storage confirms it; None if its file is gone (nothing left to upload).
async fn upload(inner: &Inner, job: &Job) -> Option<u64> {
    let mut failures = 0u32;
    loop {
        let error = match inner.store.put_file(&job.key, &job.path, &job.headers).await {
            Ok(bytes) => {
                tracing::debug!(key = %job.key, bytes, "uploaded");
                let _ = inner.events.send(UploadEvent::Done {
                    owner: job.owner.clone(),
                    key: job.key.clone(),
                    bytes,
                });
                return Some(bytes);
            }
            Err(error) => error,
        };
        failures += 1;
        let retry = match &error {
            PutError::Missing(_) => None,
            PutError::Storage(_) => Some(super::backoff::delay(failures)),
        };
        let message = error.to_string();
        tracing::warn!(key = %job.key, "upload failed (attempt {failures}): {message}");
        {
            let mut state = inner.state.lock().unwrap();
            let stats = state.stats.entry(job.owner.clone()).or_default();
            stats.failures += 1;
            stats.last_error = Some(message.clone());
        }
        let _ = inner.events.send(UploadEvent::Failed {
            owner: job.owner.clone(),
            key: job.key.clone(),
            error: message,
            retry_in_ms: retry.map(|r| r.as_millis() as u64),
        });
        tokio::time::sleep(retry?).await;
    }
}

/// Where the queue lives under the server's data dir.
pub fn queue_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}
