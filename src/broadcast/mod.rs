//! Broadcasts: validated specs, their status, and the actors that run them.

pub mod actor;
pub mod admission;
mod audio_stage;
pub mod ladder_spec;
pub mod layout_spec;
mod name_labels;
mod outputs;
pub mod overlays;
mod program;
pub mod record;
mod recorder;
pub mod request;
mod sources;
mod speaker;
pub mod spec;
mod stage;
mod state;
pub mod status;
mod status_events;
pub mod template_overlays;
pub mod template_preview;
pub mod templates;
mod ticking;
mod upload_headers;
mod uploads;

pub use uploads::key_prefixes as upload_key_prefixes;

use crate::call::room::Rooms;
use crate::layout::template::Templates;
use crate::output::config::OutputConfig;
use crate::wall_clock::now_ms;
use actor::{Actor, Command};
use spec::BroadcastSpec;
use status::{BroadcastState, BroadcastStatus, OutputState, OutputStatus};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

struct Handle {
    /// The snapshots its actor publishes: read here, written only there.
    status: watch::Receiver<BroadcastStatus>,
    commands: mpsc::Sender<Command>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Estimated cores, counted against the budget while the broadcast runs.
    cost: f64,
    /// Its latest whep output, through which viewers join.
    whep: Option<crate::output::whep::WhepStation>,
    /// Its latest low-latency hls output's board, which blocking playlist reloads wait on.
    ll_hls: Option<crate::output::ll_hls_board::LlHlsBoard>,
}

impl Handle {
    /// A broadcast a previous server ran: status only, nothing to command.
    fn finished(status: BroadcastStatus) -> Self {
        Self {
            status: watch::channel(status).1,
            commands: mpsc::channel(1).0,
            task: None,
            cost: 0.0,
            whep: None,
            ll_hls: None,
        }
    }
}

/// Every broadcast of this server.
pub struct Broadcasts {
    rooms: Arc<Rooms>,
    templates: Arc<Templates>,
    /// The server's assets dir for overlays: the font, image `file`s.
    overlay_assets: Arc<crate::mix::overlay_render::Assets>,
    data_dir: PathBuf,
    participant_latency_ms: u32,
    limits: admission::Limits,
    events: crate::events::EventBus,
    /// Signs the webhooks broadcasts name in their request.
    webhook_secret: Option<secrecy::SecretString>,
    handles: Mutex<HashMap<String, Handle>>,
    /// Object storage for outputs with `upload: true`.
    uploader: Option<crate::storage::Uploader>,
    /// Broadcasts the previous server was running when it died (closed at start): their uploads are queued
    /// once storage is known (`with_uploader`).
    interrupted: Vec<String>,
}

impl Broadcasts {
    /// Also takes over what a previous server left in `data_dir`: broadcasts it was running are closed and
    /// reported failed (`server_restart`); finished ones stay listed.
    pub fn new(rooms: Arc<Rooms>, templates: Arc<Templates>, data_dir: PathBuf, participant_latency_ms: u32) -> Self {
        let mut interrupted = Vec::new();
        let handles = record::restore(&data_dir.join("broadcasts"), |status| {
            interrupted.push(status.id.clone())
        })
        .into_iter()
        .map(|status| (status.id.clone(), Handle::finished(status)))
        .collect();
        Self {
            rooms,
            templates,
            overlay_assets: Arc::new(crate::mix::overlay_render::Assets::new(
                crate::config::DEFAULT_ASSETS_DIR.into(),
            )),
            data_dir,
            participant_latency_ms,
            limits: admission::Limits::default(),
            events: crate::events::EventBus::default(),
            webhook_secret: None,
            handles: Mutex::new(handles),
            uploader: None,
            interrupted,
        }
    }

    /// Uploads go to this storage (call after `with_events`): what a previous server left unfinished is queued
    /// now, and upload events are published on the bus.
    pub fn with_uploader(mut self, uploader: crate::storage::Uploader) -> Self {
        for id in std::mem::take(&mut self.interrupted) {
            if let Some(status) = self.get(&id) {
                uploads::recover(&uploader, &status, &self.data_dir.join("broadcasts").join(&id));
            }
        }
        uploads::forward_events(&uploader, self.events.clone());
        self.uploader = Some(uploader);
        self
    }

    /// Upload figures of every output that uploads, by `{broadcast id}/{output id}` (for `/metrics`).
    pub fn upload_stats(&self) -> Vec<(String, crate::storage::OwnerStats)> {
        self.uploader.as_ref().map(|u| u.all_stats()).unwrap_or_default()
    }

    /// The outputs' upload figures as they are now: the uploader owns them, and they change after the
    /// broadcast ended.
    fn with_uploads(&self, mut status: BroadcastStatus) -> BroadcastStatus {
        let Some(uploader) = &self.uploader else {
            return status;
        };
        for out in &mut status.outputs {
            if let Some(upload) = &mut out.upload {
                let stats = uploader.stats(&uploads::owner(&status.id, &out.id));
                upload.uploaded_bytes = stats.uploaded_bytes;
                upload.uploaded_files = stats.uploaded_files;
                upload.pending = stats.pending;
                upload.last_error = stats.last_error;
            }
        }
        status
    }

    /// Where overlays find the font and image files (default: the source's `assets/`).
    pub fn with_assets_dir(mut self, dir: PathBuf) -> Self {
        self.overlay_assets = Arc::new(crate::mix::overlay_render::Assets::new(dir));
        self
    }

    pub fn with_limits(mut self, limits: admission::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Every broadcast's changes are published here.
    pub fn with_events(mut self, events: crate::events::EventBus) -> Self {
        self.events = events;
        self
    }

    pub fn with_webhook_secret(mut self, secret: Option<secrecy::SecretString>) -> Self {
        self.webhook_secret = secret;
        self
    }

    /// What only this server can tell about a valid request: a webhook needs the server's key to be signed.
    pub fn check(&self, spec: &BroadcastSpec) -> Result<(), spec::SpecError> {
        if spec.webhook_url.is_some() && self.webhook_secret.is_none() {
            return Err(spec::SpecError::new(
                "webhook_url",
                "this server has no webhook_secret to sign events with",
            ));
        }
        for (i, output) in spec.outputs.iter().enumerate() {
            self.check_upload(&format!("outputs[{i}]."), output)?;
        }
        overlays::check_files(&spec.overlays, &self.overlay_assets)
    }

    /// `upload: true` needs object storage configured on this server.
    fn check_upload(&self, prefix: &str, output: &OutputConfig) -> Result<(), spec::SpecError> {
        if output.uploads() && self.uploader.is_none() {
            return Err(spec::SpecError::new(
                format!("{prefix}upload"),
                "this server has no object storage (set storage_url)",
            ));
        }
        Ok(())
    }

    pub fn events(&self) -> &crate::events::EventBus {
        &self.events
    }

    /// Would a broadcast with every default (video, layout) into a call of unknown size be admitted now
    /// (readiness)? Costed by the same `estimate` as `start`, so both name the same figure for it.
    pub fn would_admit_default(&self) -> Result<(), admission::Refusal> {
        let cost = self.estimate(
            &spec::VideoSpec::defaults(),
            None,
            layout_spec::LayoutSpec::default().max_tiles,
        );
        self.limits.admit(&running_costs(&self.handles.lock().unwrap()), cost)
    }

    /// The one estimate of a broadcast's cores: its video, and the participants its `call` has now (None: no
    /// call in particular), counted by `admission::participants_for`.
    fn estimate(&self, video: &spec::VideoSpec, call: Option<&spec::Source>, max_tiles: usize) -> f64 {
        let now = match call {
            Some(spec::Source::Room(room)) => Some(self.rooms.participants(room).len()),
            Some(spec::Source::Whep { streams, room }) => {
                Some(streams.len() + room.as_ref().map_or(0, |room| self.rooms.participants(room).len()))
            }
            Some(spec::Source::Janus(_)) | None => None,
        };
        admission::estimate_cores(video, admission::participants_for(now, max_tiles))
    }

    pub fn hls_dir(&self, id: &str) -> PathBuf {
        self.data_dir.join("broadcasts").join(id).join("hls")
    }

    /// Starts a broadcast if there is room for it; returns its first status.
    pub fn start(&self, spec: BroadcastSpec) -> Result<BroadcastStatus, admission::Refusal> {
        let cost = match &spec.video {
            Some(video) => self.estimate(video, Some(&spec.source), spec.layout.max_tiles),
            None => admission::AUDIO_ONLY_CORES,
        };
        // Held from the check to the insert, so two requests cannot both take the last free capacity.
        let mut handles = self.handles.lock().unwrap();
        self.limits.admit(&running_costs(&handles), cost)?;
        let id = crate::ids::new_id("bc");
        if let (Some(url), Some(secret)) = (&spec.webhook_url, &self.webhook_secret) {
            // Subscribed before the first event; ends after the broadcast's last.
            let hook = crate::webhooks::Webhook {
                url: url.clone(),
                secret: secret.clone(),
            };
            crate::webhooks::spawn_for_broadcast(&self.events, hook, id.clone());
        }
        let dir = self.data_dir.join("broadcasts").join(&id);
        let record = match std::fs::create_dir_all(&dir) {
            Ok(()) => Some(dir.join(record::RECORD_FILE)),
            Err(e) => {
                tracing::warn!("cannot create {}: {e}; the broadcast is not recorded", dir.display());
                None
            }
        };
        let mut first = initial_status(&id, &spec);
        // The template's overlays too, as the stage will draw them (the POST's answer lists them).
        if let Some(template) = spec.video.as_ref().and(self.templates.get(&spec.layout.template)) {
            let from_template = template_overlays::of(template).unwrap_or_default();
            first.overlays = template_overlays::merged(from_template, &spec.overlays)
                .iter()
                .map(overlays::Overlay::shown)
                .collect();
        }
        let whep = spec.outputs.iter().find_map(whep_station);
        let ll_hls = spec.outputs.iter().find_map(ll_hls_board);
        let (snapshots, status) = watch::channel(first.clone());
        let recorder = {
            let _span = tracing::info_span!("broadcast", broadcast_id = %id).entered();
            recorder::Recorder::spawn(record, self.events.clone())
        };
        let keeper = state::StatusKeeper::new(first.clone(), snapshots, recorder);
        let (tx, rx) = mpsc::channel(8);
        let actor = Actor {
            templates: self.templates.clone(),
            overlay_assets: self.overlay_assets.clone(),
            id: id.clone(),
            spec,
            dir,
            rooms: self.rooms.clone(),
            status: keeper,
            participant_latency_ms: self.participant_latency_ms,
            uploader: self.uploader.clone(),
        };
        let task = tokio::spawn(actor.run(rx));
        handles.insert(
            id,
            Handle {
                status,
                commands: tx,
                task: Some(task),
                cost,
                whep,
                ll_hls,
            },
        );
        Ok(first)
    }

    pub fn get(&self, id: &str) -> Option<BroadcastStatus> {
        let status = self
            .handles
            .lock()
            .unwrap()
            .get(id)
            .map(|h| with_viewers(h.status.borrow().clone(), h.whep.as_ref()))?;
        Some(self.with_uploads(status))
    }

    /// The running whep output of broadcast `id`, through which viewers join.
    pub fn whep(&self, id: &str) -> Option<crate::output::whep::WhepStation> {
        let handles = self.handles.lock().unwrap();
        handles.get(id)?.whep.clone().filter(|s| s.is_open())
    }

    /// The low-latency hls output of broadcast `id` (its latest), if it has one.
    pub fn ll_hls(&self, id: &str) -> Option<crate::output::ll_hls_board::LlHlsBoard> {
        self.handles.lock().unwrap().get(id)?.ll_hls.clone()
    }

    /// True for a broadcast anyone may watch without a token.
    pub fn is_public(&self, id: &str) -> bool {
        self.get(id).is_some_and(|s| s.public)
    }

    pub fn list(&self) -> Vec<BroadcastStatus> {
        let mut all: Vec<_> = self
            .handles
            .lock()
            .unwrap()
            .values()
            .map(|h| with_viewers(h.status.borrow().clone(), h.whep.as_ref()))
            .collect();
        all.sort_by_key(|s| s.created_at_ms);
        all.into_iter().map(|s| self.with_uploads(s)).collect()
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Changes a live broadcast's layout. Unknown id: `Ok(None)`; invalid request: the field at fault.
    pub async fn update_layout(
        &self,
        id: &str,
        request: layout_spec::LayoutRequest,
    ) -> Result<Option<BroadcastStatus>, spec::SpecError> {
        let Some(commands) = self.live_commands(id)? else {
            return Ok(None);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let _ = commands.send(Command::UpdateLayout(request, reply)).await;
        match answer.await {
            Ok(result) => result.map(Some),
            Err(_) => Err(spec::SpecError::new("id", "the broadcast has ended")),
        }
    }

    /// Where overlays find the font and their image files (the template previews draw with them too).
    pub fn overlay_assets(&self) -> Arc<crate::mix::overlay_render::Assets> {
        self.overlay_assets.clone()
    }

    /// What only this server can tell about overlays: their image files are under its assets dir.
    pub fn check_overlays(&self, list: &[overlays::Overlay]) -> Result<(), spec::SpecError> {
        overlays::check_files(list, &self.overlay_assets)
    }

    /// Replaces a live broadcast's overlays (checked with `check_overlays`). Unknown id: `Ok(None)`.
    pub async fn update_overlays(
        &self,
        id: &str,
        list: Vec<overlays::Overlay>,
    ) -> Result<Option<BroadcastStatus>, spec::SpecError> {
        let Some(commands) = self.live_commands(id)? else {
            return Ok(None);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let _ = commands.send(Command::SetOverlays(list, reply)).await;
        match answer.await {
            Ok(result) => result.map(Some),
            Err(_) => Err(spec::SpecError::new("id", "the broadcast has ended")),
        }
    }

    fn live_commands(&self, id: &str) -> Result<Option<mpsc::Sender<Command>>, spec::SpecError> {
        let handles = self.handles.lock().unwrap();
        let Some(handle) = handles.get(id) else {
            return Ok(None);
        };
        if handle.status.borrow().state.is_final() {
            return Err(spec::SpecError::new("id", "the broadcast has ended"));
        }
        Ok(Some(handle.commands.clone()))
    }

    /// Adds an output to a running broadcast. Unknown id: `Ok(None)`.
    pub async fn add_output(
        &self,
        id: &str,
        request: request::OutputRequest,
    ) -> Result<Option<OutputStatus>, spec::SpecError> {
        // Renditions are checked against the broadcast's picture (unknown id: checked against none, then Ok(None)).
        let (video, audio) = match self.handles.lock().unwrap().get(id) {
            Some(handle) => {
                let status = handle.status.borrow();
                (status.video, status.audio.bitrate_kbps)
            }
            None => (None, 0),
        };
        let media = ladder_spec::BroadcastMedia {
            video: video.as_ref(),
            audio_kbps: audio,
        };
        let output = spec::validate_output("", request, media)?;
        self.check_upload("", &output)?;
        let Some(commands) = self.live_commands(id)? else {
            return Ok(None);
        };
        let station = whep_station(&output);
        let board = ll_hls_board(&output);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let _ = commands.send(Command::AddOutput(output, reply)).await;
        match answer.await {
            Ok(Ok(status)) => {
                if let Some(handle) = self.handles.lock().unwrap().get_mut(id) {
                    if let Some(station) = station {
                        handle.whep = Some(station);
                    }
                    if let Some(board) = board {
                        handle.ll_hls = Some(board);
                    }
                }
                Ok(Some(status))
            }
            Ok(Err(e)) => Err(spec::SpecError::new(e.field(), e.to_string())),
            Err(_) => Err(spec::SpecError::new("id", "the broadcast has ended")),
        }
    }

    /// Stops one output of a running broadcast once it has finalised; `Ok(false)` if it is not running.
    pub async fn remove_output(&self, id: &str, output_id: &str) -> Result<Option<bool>, spec::SpecError> {
        let Some(commands) = self.live_commands(id)? else {
            return Ok(None);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let _ = commands.send(Command::RemoveOutput(output_id.to_string(), reply)).await;
        Ok(Some(answer.await.unwrap_or(false)))
    }

    /// Asks a broadcast to stop and waits until it has finalised its outputs. None if unknown.
    pub async fn stop(&self, id: &str) -> Option<BroadcastStatus> {
        let (commands, task, status) = {
            let mut handles = self.handles.lock().unwrap();
            let handle = handles.get_mut(id)?;
            (handle.commands.clone(), handle.task.take(), handle.status.clone())
        };
        let _ = commands.send(Command::Stop).await;
        if let Some(task) = task {
            let _ = task.await;
        }
        let last = status.borrow().clone();
        Some(last)
    }

    /// Stops every broadcast (server shutdown).
    pub async fn stop_all(&self) {
        let ids: Vec<String> = self.handles.lock().unwrap().keys().cloned().collect();
        futures::future::join_all(ids.iter().map(|id| self.stop(id))).await;
    }

    pub fn running_count(&self) -> usize {
        self.handles
            .lock()
            .unwrap()
            .values()
            .filter(|h| !h.status.borrow().state.is_final())
            .count()
    }
}

/// Estimated cores of every broadcast still running.
fn running_costs(handles: &HashMap<String, Handle>) -> Vec<f64> {
    handles
        .values()
        .filter(|h| !h.status.borrow().state.is_final())
        .map(|h| h.cost)
        .collect()
}

fn whep_station(config: &OutputConfig) -> Option<crate::output::whep::WhepStation> {
    match config {
        OutputConfig::Whep { station } => Some(station.clone()),
        _ => None,
    }
}

fn ll_hls_board(config: &OutputConfig) -> Option<crate::output::ll_hls_board::LlHlsBoard> {
    match config {
        OutputConfig::Hls { low_latency, .. } => low_latency.clone(),
        _ => None,
    }
}

/// Viewers of the whep output as they are now (the station counts them; the actor never hears of them).
fn with_viewers(mut status: BroadcastStatus, station: Option<&crate::output::whep::WhepStation>) -> BroadcastStatus {
    for output in status.outputs.iter_mut().filter(|o| o.viewers.is_some()) {
        let live = !matches!(output.state, OutputState::Ended | OutputState::Failed);
        let count = station.filter(|_| live).map_or(0, |s| s.viewers());
        output.viewers = Some(count as u32);
    }
    status
}

/// The first status of an output.
fn output_status(id: &str, broadcast_id: &str, spec: &OutputConfig) -> OutputStatus {
    OutputStatus {
        id: id.to_string(),
        kind: spec.kind().to_string(),
        url: match spec {
            OutputConfig::Rtmp { url, .. } => Some(url.redacted().to_string()),
            OutputConfig::Srt { url, .. } => Some(url.redacted().to_string()),
            OutputConfig::Hls { .. }
            | OutputConfig::Record { .. }
            | OutputConfig::Tracks { .. }
            | OutputConfig::Whep { .. } => None,
        },
        playlist: match spec {
            OutputConfig::Hls { .. } => Some(format!(
                "/v1/broadcasts/{broadcast_id}/hls/{}",
                crate::output::hls::PLAYLIST
            )),
            OutputConfig::Rtmp { .. }
            | OutputConfig::Srt { .. }
            | OutputConfig::Record { .. }
            | OutputConfig::Tracks { .. }
            | OutputConfig::Whep { .. } => None,
        },
        path: None,
        duration_s: None,
        ready: matches!(spec, OutputConfig::Record { .. }).then_some(false),
        parts: matches!(spec, OutputConfig::Record { .. }).then_some(0),
        files: matches!(spec, OutputConfig::Tracks { .. }).then_some(0),
        whep: matches!(spec, OutputConfig::Whep { .. }).then(|| format!("/v1/broadcasts/{broadcast_id}/whep")),
        viewers: matches!(spec, OutputConfig::Whep { .. }).then_some(0),
        state: OutputState::Starting,
        error: None,
        reconnects: 0,
        next_retry_at_ms: None,
        bytes: 0,
        upload: spec.uploads().then(|| status::UploadStatus {
            keep: spec.keeps_uploaded(),
            ..Default::default()
        }),
    }
}

fn initial_status(id: &str, spec: &BroadcastSpec) -> BroadcastStatus {
    let outputs = spec
        .outputs
        .iter()
        .enumerate()
        .map(|(i, out)| output_status(&format!("out_{i}"), id, out))
        .collect();
    BroadcastStatus {
        id: id.to_string(),
        state: BroadcastState::Starting,
        reason: None,
        failure: None,
        source: spec.source.public_json(),
        layout: match spec.video {
            Some(_) => serde_json::to_value(&spec.layout).unwrap_or_default(),
            None => serde_json::Value::Null,
        },
        video: spec.video,
        audio: spec.audio,
        public: spec.public,
        participants: Vec::new(),
        speaker: None,
        overlays: spec.overlays.iter().map(overlays::Overlay::shown).collect(),
        outputs,
        // No picture, no frames: absent for an audio-only broadcast.
        frames_out: spec.video.map(|_| 0),
        frames_dropped: spec.video.map(|_| 0),
        fps_out: spec.video.map(|_| 0.0),
        passthrough: None,
        timeline: None,
        created_at_ms: now_ms(),
        live_at_ms: None,
        ended_at_ms: None,
    }
}
