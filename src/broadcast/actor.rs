//! One task per broadcast owns its mixer, outputs, call and status: the only writer of its state. Commands
//! (from the API), call events, output reports and the mixer's bus come in as typed messages; each is one small
//! step; the status is published as a read-only snapshot after each.

use super::layout_spec::LayoutRequest;
use super::outputs::{AddError, Outputs};
use super::overlays::Overlay;
use super::program::Program;
use super::spec::{BroadcastSpec, SpecError, MAX_OUTPUTS};
use super::state::StatusKeeper;
use super::status::{BroadcastState, BroadcastStatus, Failure, OutputStatus};
use super::uploads::BroadcastUploads;
use crate::call::participant::CallEvent;
use crate::call::room::Rooms;
use crate::call::source::CallHandle;
use crate::layout::template::Templates;
use crate::output::config::OutputConfig;
use crate::output::events::{OutputEvent, OutputReport};
use crate::output::hub::EncodedHub;
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

/// How long stopping may take before the outputs are closed regardless.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often audio levels are read for the active speaker.
const SPEAKER_TICK: Duration = Duration::from_millis(100);
/// How often tiles are re-placed regardless of events (a fill crop needs the picture size, known later).
const RELAYOUT_TICK: Duration = Duration::from_secs(1);
/// How late clock overlays are brought up to date: the runtime's timer and the wall clock may differ by a
/// millisecond or so, and a tick a little early would find nothing due yet.
const CLOCK_TICK_SLACK: Duration = Duration::from_millis(5);
/// End reasons of a broadcast that stopped itself.
pub const LIMIT_REACHED: &str = "limit_reached";
pub const IDLE: &str = "idle";
const STOPPED: &str = "stopped";

pub enum Command {
    Stop,
    /// Merges into the current layout; replies with the status showing it.
    UpdateLayout(LayoutRequest, oneshot::Sender<Result<BroadcastStatus, SpecError>>),
    /// Replaces the overlays (validated, files checked); replies with the status.
    SetOverlays(Vec<Overlay>, oneshot::Sender<Result<BroadcastStatus, SpecError>>),
    AddOutput(OutputConfig, oneshot::Sender<Result<OutputStatus, AddError>>),
    /// Replies once the output has finalised; false if no such output is running.
    RemoveOutput(String, oneshot::Sender<bool>),
}

/// How a broadcast ended.
#[derive(Debug)]
enum Outcome {
    /// Asked to stop.
    Stopped,
    /// It ended by itself (the call ended, idle, the time limit), with this reason.
    Ended(String),
    Failed(Failure, String),
}

/// What a step leads to.
enum Step {
    /// Go on; `true` when who is on the canvas may have changed.
    Continue(bool),
    End(Outcome),
}

/// Everything a broadcast needs to start.
pub struct Actor {
    pub id: String,
    pub spec: BroadcastSpec,
    pub dir: PathBuf,
    pub rooms: Arc<Rooms>,
    pub templates: Arc<Templates>,
    /// The server's font and image files, for overlays.
    pub overlay_assets: Arc<crate::mix::overlay_render::Assets>,
    pub participant_latency_ms: u32,
    pub status: StatusKeeper,
    /// Object storage for outputs with `upload: true` (None: not configured).
    pub uploader: Option<crate::storage::Uploader>,
}

impl Actor {
    pub async fn run(self, commands: mpsc::Receiver<Command>) {
        let span = tracing::info_span!("broadcast", broadcast_id = %self.id);
        async move {
            let mut live = match Live::build(self) {
                Ok(live) => live,
                Err(failed) => {
                    let (mut status, err) = *failed;
                    tracing::error!("broadcast failed: {err:#}");
                    status.fail(Failure::Pipeline, format!("{err:#}"));
                    status.close().await;
                    return;
                }
            };
            let outcome = live.run(commands).await;
            live.shutdown(outcome).await.close().await;
        }
        .instrument(span)
        .await
    }
}

/// A running broadcast.
struct Live {
    spec: BroadcastSpec,
    templates: Arc<Templates>,
    status: StatusKeeper,
    stage: Box<dyn Program>,
    hub: EncodedHub,
    outputs: Outputs,
    uploads: BroadcastUploads,
    call: CallHandle,
    bus: gst::bus::BusStream,
    frames: watch::Receiver<u64>,
    /// Turns true with the first media the outputs can start from: the broadcast is live.
    on_air: watch::Receiver<bool>,
    reports: mpsc::UnboundedReceiver<OutputReport>,
    /// Outputs removed on request that have finalised, with the caller waiting for it.
    removed_tx: mpsc::UnboundedSender<(String, oneshot::Sender<bool>)>,
    removed: mpsc::UnboundedReceiver<(String, oneshot::Sender<bool>)>,
    speaker_tick: tokio::time::Interval,
    relayout_tick: tokio::time::Interval,
    ends_at: tokio::time::Instant,
    /// Since when nobody is in the call (None: someone is).
    empty_since: Option<Instant>,
    /// Frames encoded at the last tick, and when.
    last_count: (u64, Instant),
}

/// What the select loop heard.
enum Heard {
    Command(Option<Command>),
    Call(Option<CallEvent>),
    Output(OutputReport),
    Removed(String, oneshot::Sender<bool>),
    Bus(Option<gst::Message>),
    SpeakerTick,
    RelayoutTick,
    /// A `clock` or `timer` overlay's text may have changed.
    ClockTick,
    TimeLimit,
    FirstFrame,
}

impl Live {
    /// Builds the mixer, hub, outputs and stage, joins the call and starts playing. On failure the status comes
    /// back with the error, so the broadcast can be reported failed.
    fn build(actor: Actor) -> Result<Self, Box<(StatusKeeper, anyhow::Error)>> {
        let Actor {
            id,
            spec,
            dir,
            rooms,
            templates,
            overlay_assets,
            participant_latency_ms,
            status,
            uploader,
        } = actor;
        // Without video the interval is never used: nobody is asked for keyframes.
        let keyframe_interval = spec.video.map_or(1, |v| v.keyframe_interval_s);
        let hub = EncodedHub::new(gst::ClockTime::from_seconds(u64::from(keyframe_interval)));
        let mut stage = match super::program::build(&spec, &hub, &templates, overlay_assets, participant_latency_ms) {
            Ok(stage) => stage,
            Err(err) => return Err(Box::new((status, err))),
        };
        // The outputs first: they start while the mixer prepares its first frame, so each usually has its feed
        // by then and starts with the show (an output that registers later starts at the next keyframe).
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let dirs = crate::output::runner::OutputDirs {
            hls: dir.join("hls"),
            recordings: dir.join(crate::output::record::RECORDINGS_DIR),
            tracks: dir.join(crate::output::tracks::TRACKS_DIR),
            max_duration: spec.max_duration,
        };
        let mut outputs = Outputs::new(&hub, dirs, reports_tx);
        let mut uploads = BroadcastUploads::new(uploader, &id, &dir);
        for (out, config) in status.outputs().iter().zip(&spec.outputs) {
            uploads.add(&out.id, config);
            outputs.spawn(out.id.clone(), config.clone());
        }
        let bus = match stage.play() {
            Ok(bus) => bus,
            Err(err) => {
                hub.finish();
                stage.stop();
                return Err(Box::new((status, err)));
            }
        };
        let call = super::sources::join(&spec.source, &rooms);
        let (removed_tx, removed) = mpsc::unbounded_channel();
        let mut live = Self {
            frames: hub.frames(),
            on_air: hub.on_air(),
            ends_at: tokio::time::Instant::now() + spec.max_duration,
            spec,
            templates,
            status,
            stage,
            hub,
            outputs,
            uploads,
            call,
            bus,
            reports,
            removed_tx,
            removed,
            speaker_tick: tokio::time::interval(SPEAKER_TICK),
            relayout_tick: tokio::time::interval(RELAYOUT_TICK),
            empty_since: Some(Instant::now()),
            last_count: (0, Instant::now()),
        };
        live.rescene();
        Ok(live)
    }

    /// Steps until the broadcast ends; the status is published after every step.
    async fn run(&mut self, mut commands: mpsc::Receiver<Command>) -> Outcome {
        loop {
            let heard = self.listen(&mut commands).await;
            let step = match heard {
                Heard::Command(command) => self.on_command(command),
                Heard::Call(event) => self.on_call(event),
                Heard::Output(report) => self.on_output(report),
                Heard::Removed(id, reply) => self.on_removed(id, reply),
                Heard::Bus(message) => on_bus(message),
                Heard::SpeakerTick => {
                    Step::Continue(self.stage.track_speaker(Instant::now()) || self.stage.passthrough_stalled())
                }
                Heard::RelayoutTick => self.on_tick(),
                Heard::ClockTick => {
                    self.stage.tick_clocks(std::time::SystemTime::now());
                    Step::Continue(false)
                }
                Heard::TimeLimit => Step::End(Outcome::Ended(LIMIT_REACHED.into())),
                Heard::FirstFrame => {
                    self.stage.went_live(std::time::SystemTime::now());
                    self.status.advance(BroadcastState::Live, None);
                    tracing::info!("broadcast live");
                    Step::Continue(false)
                }
            };
            match step {
                Step::Continue(true) => self.rescene(),
                Step::Continue(false) => {}
                Step::End(outcome) => return outcome,
            }
            self.status.publish();
        }
    }

    async fn listen(&mut self, commands: &mut mpsc::Receiver<Command>) -> Heard {
        let starting = self.status.state() == BroadcastState::Starting;
        let clock_due = clock_due(self.stage.as_ref());
        tokio::select! {
            command = commands.recv() => Heard::Command(command),
            event = self.call.events.recv() => Heard::Call(event),
            Some(report) = self.reports.recv() => Heard::Output(report),
            Some((id, reply)) = self.removed.recv() => Heard::Removed(id, reply),
            message = self.bus.next() => Heard::Bus(message),
            _ = self.speaker_tick.tick() => Heard::SpeakerTick,
            _ = self.relayout_tick.tick() => Heard::RelayoutTick,
            _ = tokio::time::sleep_until(clock_due.unwrap_or(self.ends_at)), if clock_due.is_some() => Heard::ClockTick,
            _ = tokio::time::sleep_until(self.ends_at) => Heard::TimeLimit,
            _ = self.on_air.changed(), if starting => Heard::FirstFrame,
        }
    }

    fn on_command(&mut self, command: Option<Command>) -> Step {
        match command {
            Some(Command::Stop) | None => return Step::End(Outcome::Stopped),
            Some(Command::UpdateLayout(mut request, reply)) => {
                let fade_ms = request.transition.take().map_or(Ok(None), |t| t.fade_ms());
                let merged = match self.stage.layout() {
                    Some(current) => fade_ms.and_then(|ms| Ok((current.merged(request, &self.templates)?, ms))),
                    None => Err(SpecError::new("layout", super::spec::NO_PICTURE)),
                };
                let answer = merged.map(|(layout, fade_ms)| {
                    self.stage.set_layout(layout, fade_ms);
                    self.rescene();
                    self.status.publish();
                    self.status.snapshot()
                });
                let _ = reply.send(answer);
            }
            Some(Command::SetOverlays(overlays, reply)) => {
                let answer = self.stage.set_overlays(overlays).map(|()| {
                    // Zero-transcode may have to end (or may start again) with what is drawn over the picture.
                    self.rescene();
                    self.status.publish();
                    self.status.snapshot()
                });
                let _ = reply.send(answer);
            }
            Some(Command::AddOutput(config, reply)) => {
                let _ = reply.send(self.add_output(config));
            }
            Some(Command::RemoveOutput(id, reply)) => match self.outputs.remove(&id) {
                // Finalising takes a moment; the mix goes on meanwhile.
                Some(finished) => {
                    let removed = self.removed_tx.clone();
                    tokio::spawn(async move {
                        finished.await;
                        let _ = removed.send((id, reply));
                    });
                }
                None => {
                    let _ = reply.send(false);
                }
            },
        }
        Step::Continue(false)
    }

    /// Starts one more output, from the next keyframe.
    fn add_output(&mut self, config: OutputConfig) -> Result<OutputStatus, AddError> {
        self.outputs.check_add(&config, MAX_OUTPUTS)?;
        if config.needs_fixed_parameters() && self.stage.passthrough_allowed() {
            return Err(if config.is_record() {
                AddError::RecordWithPassthrough
            } else {
                AddError::LowLatencyWithPassthrough
            });
        }
        if self.spec.is_audio_only() && !config.carries_audio_only() {
            return Err(AddError::NeedsVideo);
        }
        let id = format!("out_{}", self.status.outputs().len());
        let output = super::output_status(&id, &self.status.snapshot().id, &config);
        self.status.add_output(output.clone());
        self.uploads.add(&id, &config);
        self.outputs.spawn(id, config);
        Ok(output)
    }

    fn on_removed(&mut self, id: String, reply: oneshot::Sender<bool>) -> Step {
        self.status.apply_output(OutputReport {
            output_id: id,
            event: OutputEvent::Ended,
        });
        self.status.publish();
        let _ = reply.send(true);
        Step::Continue(false)
    }

    fn on_call(&mut self, event: Option<CallEvent>) -> Step {
        match event {
            Some(CallEvent::Joined(p)) => {
                self.outputs.joined(p.clone());
                self.stage.join(p)
            }
            Some(CallEvent::Left(id)) => {
                self.outputs.left(&id);
                self.stage.leave(&id)
            }
            Some(CallEvent::Ended(reason)) => return Step::End(Outcome::Ended(reason)),
            Some(CallEvent::Failed(reason)) => return Step::End(Outcome::Failed(Failure::Source, reason)),
            Some(CallEvent::Stream { index, state, error }) => {
                self.status.set_source_stream(index, state, error);
                self.status.publish();
                return Step::Continue(false);
            }
            None => return Step::End(Outcome::Failed(Failure::Source, "the call's task stopped".into())),
        }
        Step::Continue(true)
    }

    fn on_output(&mut self, report: OutputReport) -> Step {
        self.uploads.on_report(&report);
        self.status.apply_output(report);
        if self.status.every_output_failed() {
            return Step::End(Outcome::Failed(Failure::Outputs, "every output failed".into()));
        }
        Step::Continue(false)
    }

    /// Once a second: frame counts for the status, the idle limit, and a relayout.
    fn on_tick(&mut self) -> Step {
        let count = *self.frames.borrow();
        let secs = self.last_count.1.elapsed().as_secs_f64().max(0.001);
        let fps = count.saturating_sub(self.last_count.0) as f64 / secs;
        self.last_count = (count, Instant::now());
        if !self.spec.is_audio_only() {
            self.status
                .set_frames(count, self.hub.frames_dropped(), fps, self.hub.timeline());
        }
        if self.empty_since.is_some_and(|t| t.elapsed() >= self.spec.idle_timeout) {
            return Step::End(Outcome::Ended(IDLE.into()));
        }
        Step::Continue(true)
    }

    /// Places the tiles again and shows the result in the status and to the call (simulcast layers).
    fn rescene(&mut self) {
        self.empty_since = match (self.stage.participant_count(), self.empty_since) {
            (0, None) => Some(Instant::now()),
            (0, since) => since,
            _ => None,
        };
        self.stage.relayout();
        self.status.set_scene(self.stage.scene(), self.stage.layout());
        self.call.set_tile_widths(self.stage.tile_widths());
    }

    /// Leaves the call, drains the mix into the outputs (unless it failed), closes them and says how it ended.
    async fn shutdown(mut self, outcome: Outcome) -> StatusKeeper {
        self.call.close().await;
        self.status.advance(BroadcastState::Stopping, None);
        self.status.publish();
        if !matches!(outcome, Outcome::Failed(..)) {
            let sent = tokio::task::spawn_blocking(self.stage.drain(DRAIN_TIMEOUT))
                .await
                .unwrap_or(false);
            let mut drained = self.hub.drained();
            if !sent {
                tracing::warn!("mixer never settled in PLAYING; closing outputs without draining it");
            } else if tokio::time::timeout(DRAIN_TIMEOUT, drained.wait_for(|d| *d))
                .await
                .is_err()
            {
                tracing::warn!("mixer did not drain in time; closing outputs anyway");
            }
        }
        self.hub.finish();
        self.outputs.stop_all().await;
        while let Ok(report) = self.reports.try_recv() {
            self.uploads.on_report(&report);
            self.status.apply_output(report);
        }
        self.stage.stop();
        self.status.end_outputs();
        match outcome {
            Outcome::Failed(what, reason) => {
                tracing::warn!("broadcast failed: {reason}");
                self.status.fail(what, reason);
            }
            Outcome::Ended(reason) => self.status.advance(BroadcastState::Ended, Some(reason)),
            Outcome::Stopped => self.status.advance(BroadcastState::Ended, Some(STOPPED.into())),
        }
        tracing::info!("broadcast ended");
        self.status
    }
}

/// When the stage wants its `clock` and `timer` overlays brought up to date, as the runtime's time (a few ms
/// late: the runtime's timer and the wall clock may differ a little); None when it has none.
fn clock_due(stage: &dyn Program) -> Option<tokio::time::Instant> {
    let now = std::time::SystemTime::now();
    let next = stage.clock_tick_due()?;
    let wait = next.duration_since(now).unwrap_or_default();
    Some(tokio::time::Instant::now() + wait + CLOCK_TICK_SLACK)
}

fn on_bus(message: Option<gst::Message>) -> Step {
    match message.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Error(err)) => {
            Step::End(Outcome::Failed(Failure::Pipeline, crate::gst_util::describe_error(err)))
        }
        None => Step::End(Outcome::Failed(Failure::Pipeline, "mixer bus closed".into())),
        _ => Step::Continue(false),
    }
}
