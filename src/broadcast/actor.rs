//! One task per broadcast owns its mixer and outputs. The API talks to it over a channel; the pipeline talks
//! back through its bus.

use super::layout_spec::LayoutSpec;
use super::outputs::{AddError, Outputs};
use super::spec::{BroadcastSpec, OutputSpec, Source, MAX_OUTPUTS};
use super::stage::Stage;
use super::status::{BroadcastState, Failure, OutputStatus, SharedStatus};
use crate::call::janus::JanusSource;
use crate::call::participant::CallEvent;
use crate::call::room::Rooms;
use crate::call::room_source::RoomSource;
use crate::call::source::{CallHandle, CallSource};
use crate::layout::template::Templates;
use crate::layout::Canvas;
use crate::mix::Mixer;
use crate::output::hub::EncodedHub;
use anyhow::Result;
use futures::StreamExt;
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// How long stopping may take before the outputs are closed regardless.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often audio levels are read for the active speaker.
const SPEAKER_TICK: Duration = Duration::from_millis(100);
/// How often tiles are re-placed regardless of events (a fill crop needs the picture size, known later).
const RELAYOUT_TICK: Duration = Duration::from_secs(1);
/// End reasons of a broadcast that stopped itself.
pub const LIMIT_REACHED: &str = "limit_reached";
pub const IDLE: &str = "idle";

pub enum Command {
    Stop,
    SetLayout(LayoutSpec),
    AddOutput(OutputSpec, oneshot::Sender<Result<OutputStatus, AddError>>),
    /// Replies once the output has finalised; false if no such output is running.
    RemoveOutput(String, oneshot::Sender<bool>),
}

pub struct Actor {
    pub id: String,
    pub spec: BroadcastSpec,
    pub dir: PathBuf,
    pub rooms: Arc<Rooms>,
    pub templates: Arc<Templates>,
    pub status: SharedStatus,
    pub participant_latency_ms: u32,
}

impl Actor {
    pub async fn run(self, commands: mpsc::Receiver<Command>) {
        let span = tracing::info_span!("broadcast", broadcast_id = %self.id);
        async move {
            if let Err(err) = self.run_inner(commands).await {
                tracing::error!("broadcast failed: {err:#}");
                self.status.advance(BroadcastState::Failed, Some(format!("{err:#}")));
            }
        }
        .instrument(span)
        .await
    }

    async fn run_inner(&self, mut commands: mpsc::Receiver<Command>) -> Result<()> {
        let mixer = Mixer::new(&self.spec.video, &self.spec.audio, self.participant_latency_ms)?
            .with_video_timeout(self.spec.video_timeout);
        let hub = EncodedHub::new(gst::ClockTime::from_seconds(u64::from(
            self.spec.video.keyframe_interval_s,
        )));
        hub.attach(&mixer.video_out, &mixer.audio_out, mixer.video_encoding.clone());
        let mut bus = mixer.pipeline.bus().expect("pipeline has a bus").stream();
        let mut outputs = Outputs::start(&hub, self.dir.join("hls"), self.status.clone(), &self.spec.outputs);
        let mut call = self.join_call();
        let canvas = Canvas {
            width: self.spec.video.width as i32,
            height: self.spec.video.height as i32,
        };
        let mut stage = Stage::new(
            mixer,
            hub.clone(),
            canvas,
            self.spec.layout.clone(),
            self.templates.clone(),
        )
        .with_passthrough(self.spec.video.passthrough);
        stage.mixer.play()?;
        stage.report(&self.status);
        let mut frames = hub.frames();
        let mut speaker_tick = tokio::time::interval(SPEAKER_TICK);
        let mut relayout_tick = tokio::time::interval(RELAYOUT_TICK);
        let ends_at = tokio::time::Instant::now() + self.spec.max_duration;
        // Since when nobody is in the call (None: someone is).
        let mut empty_since = Some(Instant::now());
        let mut last_count = (0u64, Instant::now());

        // Some(Ok(reason)): the call ended; Some(Err((what, reason))): the broadcast failed; None: stopped.
        let outcome: Option<Result<String, (Failure, String)>> = loop {
            let changed = tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Stop) | None => break None,
                    Some(Command::SetLayout(layout)) => {
                        stage.set_layout(layout);
                        true
                    }
                    Some(Command::AddOutput(spec, reply)) => {
                        let _ = reply.send(outputs.add(spec, MAX_OUTPUTS));
                        false
                    }
                    Some(Command::RemoveOutput(id, reply)) => {
                        match outputs.remove(&id) {
                            // Finalising takes a moment; the mix goes on meanwhile.
                            Some(finished) => {
                                tokio::spawn(async move {
                                    finished.await;
                                    let _ = reply.send(true);
                                });
                            }
                            None => {
                                let _ = reply.send(false);
                            }
                        }
                        false
                    }
                },
                event = call.events.recv() => match event {
                    Some(CallEvent::Joined(p)) => {
                        stage.join(p);
                        true
                    }
                    Some(CallEvent::Left(id)) => {
                        stage.leave(&id);
                        true
                    }
                    Some(CallEvent::Ended(reason)) => break Some(Ok(reason)),
                    Some(CallEvent::Failed(reason)) => break Some(Err((Failure::Source, reason))),
                    None => break Some(Err((Failure::Source, "the call's task stopped".into()))),
                },
                msg = bus.next() => match msg.as_ref().map(|m| m.view()) {
                    Some(gst::MessageView::Error(err)) => {
                        break Some(Err((Failure::Pipeline, crate::gst_util::describe_error(err))))
                    }
                    None => break Some(Err((Failure::Pipeline, "mixer bus closed".into()))),
                    _ => false,
                },
                _ = speaker_tick.tick() => stage.track_speaker(Instant::now()) || stage.passthrough_stalled(),
                _ = relayout_tick.tick() => {
                    let count = *frames.borrow();
                    let secs = last_count.1.elapsed().as_secs_f64().max(0.001);
                    let fps = count.saturating_sub(last_count.0) as f64 / secs;
                    last_count = (count, Instant::now());
                    self.status.set_frames(count, hub.frames_dropped(), fps, hub.timeline());
                    if self.status.every_output_failed() {
                        break Some(Err((Failure::Outputs, "every output failed".into())));
                    }
                    if empty_since.is_some_and(|t| t.elapsed() >= self.spec.idle_timeout) {
                        break Some(Ok(IDLE.into()));
                    }
                    true
                }
                _ = tokio::time::sleep_until(ends_at) => break Some(Ok(LIMIT_REACHED.into())),
                _ = frames.changed(), if self.status.state() == BroadcastState::Starting => {
                    self.status.advance(BroadcastState::Live, None);
                    tracing::info!("broadcast live");
                    false
                }
            };
            if changed {
                empty_since = match (stage.participant_count(), empty_since) {
                    (0, None) => Some(Instant::now()),
                    (0, since) => since,
                    _ => None,
                };
                stage.relayout();
                stage.report(&self.status);
                call.set_tile_widths(stage.tile_widths());
            }
        };
        call.close().await;
        let failure = match &outcome {
            Some(Err((_, reason))) => Some(reason.clone()),
            _ => None,
        };

        self.status.advance(BroadcastState::Stopping, None);
        if failure.is_none() {
            // EOS through the mixer drains the encoders; the hub then ends every output.
            stage.mixer.pipeline.send_event(gst::event::Eos::new());
            let mut drained = hub.drained();
            if tokio::time::timeout(DRAIN_TIMEOUT, drained.wait_for(|d| *d))
                .await
                .is_err()
            {
                tracing::warn!("mixer did not drain in time; closing outputs anyway");
            }
        }
        hub.finish();
        outputs.stop_all().await;
        stage.detach_all();
        let _ = stage.mixer.pipeline.set_state(gst::State::Null);
        match outcome {
            Some(Err((what, reason))) => self.status.fail(what, reason),
            Some(Ok(reason)) => self.status.advance(BroadcastState::Ended, Some(reason)),
            None => self.status.advance(BroadcastState::Ended, Some("stopped".into())),
        }
        tracing::info!("broadcast ended");
        Ok(())
    }

    fn join_call(&self) -> CallHandle {
        let settings = self.rooms.settings();
        let source: Box<dyn CallSource> = match &self.spec.source {
            Source::Room(room) => Box::new(RoomSource {
                rooms: self.rooms.clone(),
                room: room.clone(),
            }),
            Source::Janus(target) => Box::new(JanusSource {
                target: target.clone(),
                ice: settings.ice.clone(),
                latency_ms: settings.latency_ms,
            }),
        };
        CallHandle::join(source)
    }
}
