//! The broadcast's status as its actor keeps it: the only copy anyone writes. Each change is collected with
//! the events it makes; `publish` hands the API a read-only snapshot and the recorder the events.

use super::layout_spec::LayoutSpec;
use super::recorder::{Change, Recorder};
use super::status::{BroadcastState, BroadcastStatus, Failure, OutputState, OutputStatus, ParticipantStatus, Timeline};
use super::status_events::{output_change, scene_changes};
use crate::output::events::{OutputEvent, OutputReport};
use serde_json::{json, Value};
use tokio::sync::watch;

pub struct StatusKeeper {
    status: BroadcastStatus,
    /// Events of the changes not published yet.
    events: Vec<(String, Value)>,
    dirty: bool,
    snapshots: watch::Sender<BroadcastStatus>,
    recorder: Recorder,
}

/// Who is on the canvas, as the stage sees it.
pub struct SceneStatus {
    pub participants: Vec<ParticipantStatus>,
    pub speaker: Option<String>,
    pub passthrough: Option<String>,
    pub overlays: Vec<super::status::OverlayShown>,
}

impl StatusKeeper {
    /// Starts with `status` (announced as `broadcast.started`).
    pub fn new(status: BroadcastStatus, snapshots: watch::Sender<BroadcastStatus>, recorder: Recorder) -> Self {
        let mut keeper = Self {
            status,
            events: Vec::new(),
            dirty: true,
            snapshots,
            recorder,
        };
        keeper.events.push(("broadcast.started".into(), json!({})));
        keeper.publish();
        keeper
    }

    pub fn state(&self) -> BroadcastState {
        self.status.state
    }

    pub fn snapshot(&self) -> BroadcastStatus {
        self.status.clone()
    }

    pub fn outputs(&self) -> &[OutputStatus] {
        &self.status.outputs
    }

    /// Moves the state forward; a move backwards (or out of a final state) is ignored.
    pub fn advance(&mut self, state: BroadcastState, reason: Option<String>) {
        let s = &mut self.status;
        if !s.state.may_become(state) {
            return;
        }
        s.state = state;
        if reason.is_some() {
            s.reason = reason;
        }
        let now = crate::wall_clock::now_ms();
        match state {
            BroadcastState::Live => s.live_at_ms = Some(now),
            BroadcastState::Ended | BroadcastState::Failed => s.ended_at_ms = Some(now),
            _ => {}
        }
        self.dirty = true;
        let kind = match state {
            BroadcastState::Live => "broadcast.live",
            BroadcastState::Ended => "broadcast.ended",
            BroadcastState::Failed => "broadcast.failed",
            _ => return,
        };
        let reason = self.status.reason.clone();
        self.events.push((kind.into(), json!({ "reason": reason })));
    }

    /// Fails the broadcast, saying what failed.
    pub fn fail(&mut self, what: Failure, reason: String) {
        if self.status.state.is_final() {
            return;
        }
        self.status.failure = Some(what);
        self.advance(BroadcastState::Failed, Some(reason));
    }

    pub fn add_output(&mut self, output: OutputStatus) {
        self.status.outputs.push(output);
        self.dirty = true;
    }

    /// Applies what an output reported.
    pub fn apply_output(&mut self, report: OutputReport) {
        let Some(out) = self.status.outputs.iter_mut().find(|o| o.id == report.output_id) else {
            return;
        };
        let before = out.state;
        if out.kind == "record" && matches!(report.event, OutputEvent::Bytes(_)) {
            // A recording's size is its file's, sent with `Recording` reports (see `OutputEvent::Recording`).
            return;
        }
        if before == OutputState::Ended || before == OutputState::Failed {
            // Final: a late report (bytes after the end) changes nothing but the count.
            if let OutputEvent::Bytes(bytes) = report.event {
                out.bytes = out.bytes.max(bytes);
            }
            return;
        }
        match report.event {
            OutputEvent::Recording {
                path,
                bytes,
                duration_ms,
            } => {
                out.path = Some(path);
                out.bytes = bytes;
                out.duration_s = Some(duration_ms as f64 / 1000.0);
                out.ready = Some(false);
                self.dirty = true;
                return;
            }
            OutputEvent::RecordingReady {
                path,
                bytes,
                duration_ms,
            } => {
                let duration_s = duration_ms as f64 / 1000.0;
                let part = out.parts.unwrap_or(0) + 1;
                out.parts = Some(part);
                self.events.push((
                    "recording.ready".into(),
                    json!({"output_id": out.id, "path": path, "bytes": bytes, "duration_s": duration_s, "part": part}),
                ));
                out.path = Some(path);
                out.duration_s = Some(duration_s);
                out.ready = Some(true);
                out.bytes = bytes;
                self.dirty = true;
                return;
            }
            OutputEvent::Tracks { path, files, bytes } => {
                out.path = Some(path);
                out.files = Some(files);
                out.bytes = bytes;
                self.dirty = true;
                return;
            }
            OutputEvent::TracksReady {
                participant_id,
                name,
                appearance,
                files,
            } => {
                self.events.push((
                    "tracks.ready".into(),
                    json!({"output_id": out.id, "participant_id": participant_id, "name": name,
                           "appearance": appearance, "files": files}),
                ));
                self.dirty = true;
                return;
            }
            OutputEvent::TrackFailed {
                participant_id,
                name,
                file,
                error,
            } => {
                // The output goes on (its other files do): its state stays, its error says which file stopped.
                out.error = Some(format!(
                    "participant {participant_id} ({name}): track file {file}: {error}"
                ));
                self.events.push((
                    "tracks.failed".into(),
                    json!({"output_id": out.id, "participant_id": participant_id, "name": name, "file": file,
                           "error": error}),
                ));
                self.dirty = true;
                return;
            }
            _ => {}
        }
        match report.event {
            OutputEvent::Live => {
                out.state = OutputState::Live;
                out.error = None;
                out.next_retry_at_ms = None;
            }
            OutputEvent::Reconnecting { error, retry_at_ms } => {
                out.state = OutputState::Reconnecting;
                out.error = Some(error);
                out.reconnects += 1;
                out.next_retry_at_ms = Some(retry_at_ms);
            }
            OutputEvent::Failed { error } => {
                out.state = OutputState::Failed;
                out.error = Some(error);
                out.next_retry_at_ms = None;
            }
            OutputEvent::Bytes(bytes) => out.bytes = out.bytes.max(bytes),
            OutputEvent::Ended => {
                out.state = OutputState::Ended;
                out.next_retry_at_ms = None;
            }
            OutputEvent::Recording { .. }
            | OutputEvent::RecordingReady { .. }
            | OutputEvent::Tracks { .. }
            | OutputEvent::TracksReady { .. }
            | OutputEvent::TrackFailed { .. } => {}
            // For uploads only (`uploads.rs`): nothing in the status changes.
            OutputEvent::PlaylistWritten => return,
        }
        self.events.extend(output_change(before, out));
        self.dirty = true;
    }

    /// True when the broadcast has outputs and every one of them gave up.
    pub fn every_output_failed(&self) -> bool {
        let outputs = &self.status.outputs;
        !outputs.is_empty() && outputs.iter().all(|o| o.state == OutputState::Failed)
    }

    /// Outputs still running when the broadcast ends are ended with it.
    pub fn end_outputs(&mut self) {
        for out in &mut self.status.outputs {
            if !matches!(out.state, OutputState::Ended | OutputState::Failed) {
                let before = out.state;
                out.state = OutputState::Ended;
                out.next_retry_at_ms = None;
                self.events.extend(output_change(before, out));
                self.dirty = true;
            }
        }
    }

    /// `layout`: None without a picture (audio-only), shown as `null`.
    pub fn set_scene(&mut self, scene: SceneStatus, layout: Option<&LayoutSpec>) {
        let layout = layout.map_or(Value::Null, |l| serde_json::to_value(l).unwrap_or_default());
        let s = &self.status;
        if s.participants == scene.participants
            && s.speaker == scene.speaker
            && s.passthrough == scene.passthrough
            && s.overlays == scene.overlays
            && s.layout == layout
        {
            return;
        }
        self.events
            .extend(scene_changes(s, &scene.participants, scene.speaker.as_deref()));
        let s = &mut self.status;
        s.participants = scene.participants;
        s.speaker = scene.speaker;
        s.passthrough = scene.passthrough;
        s.overlays = scene.overlays;
        s.layout = layout;
        self.dirty = true;
    }

    pub fn set_frames(&mut self, frames_out: u64, frames_dropped: u64, fps_out: f64, timeline: Option<(f64, u64)>) {
        let s = &mut self.status;
        s.timeline = timeline.map(|(media_s, at_ms)| Timeline { media_s, at_ms });
        s.frames_out = Some(frames_out);
        s.frames_dropped = Some(frames_dropped);
        s.fps_out = Some((fps_out * 10.0).round() / 10.0);
        self.dirty = true;
    }

    /// The state of stream `index` of the source (`source.streams[index]`): `pulling`, or `retrying` with why.
    pub fn set_source_stream(&mut self, index: usize, state: &str, error: Option<String>) {
        if let Some(stream) = self.status.source.get_mut("streams").and_then(|s| s.get_mut(index)) {
            stream["state"] = json!(state);
            stream["error"] = json!(error);
            self.dirty = true;
        }
    }

    /// Makes the changes so far visible: a snapshot for the API, the events and record for the recorder.
    pub fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.snapshots.send_replace(self.status.clone());
        self.recorder.send(Change {
            snapshot: self.status.clone(),
            events: std::mem::take(&mut self.events),
        });
    }

    /// Publishes what is left and waits until the recorder has written it.
    pub async fn close(mut self) {
        self.publish();
        self.recorder.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventBus;

    fn output(id: &str) -> OutputStatus {
        OutputStatus {
            id: id.into(),
            kind: "rtmp".into(),
            url: None,
            playlist: None,
            path: None,
            duration_s: None,
            ready: None,
            parts: None,
            files: None,
            whep: None,
            viewers: None,
            state: OutputState::Starting,
            error: None,
            reconnects: 0,
            bytes: 0,
            next_retry_at_ms: None,
            upload: None,
        }
    }

    fn status(outputs: &[&str]) -> BroadcastStatus {
        serde_json::from_value(json!({
            "id": "bc_1", "state": "starting", "source": null, "layout": null,
            "video": {"width": 2, "height": 2, "fps": 1, "bitrate_kbps": 1, "keyframe_interval_s": 1,
                      "preset": "superfast"},
            "audio": {"bitrate_kbps": 1}, "public": false, "participants": [], "speaker": null,
            "outputs": [], "created_at_ms": 0
        }))
        .map(|mut s: BroadcastStatus| {
            s.outputs = outputs.iter().map(|id| output(id)).collect();
            s
        })
        .expect("status")
    }

    /// A keeper, what the API would read, and the events it publishes (in order).
    fn keeper(
        outputs: &[&str],
    ) -> (
        StatusKeeper,
        watch::Receiver<BroadcastStatus>,
        tokio::sync::broadcast::Receiver<crate::events::Event>,
    ) {
        let bus = EventBus::default();
        let events = bus.subscribe();
        let (tx, rx) = watch::channel(status(outputs));
        (
            StatusKeeper::new(status(outputs), tx, Recorder::spawn(None, bus)),
            rx,
            events,
        )
    }

    fn report(id: &str, event: OutputEvent) -> OutputReport {
        OutputReport {
            output_id: id.into(),
            event,
        }
    }

    async fn kinds(events: &mut tokio::sync::broadcast::Receiver<crate::events::Event>) -> Vec<String> {
        let mut kinds = Vec::new();
        while let Ok(event) = events.try_recv() {
            kinds.push(event.kind);
        }
        kinds
    }

    #[tokio::test]
    async fn changes_reach_the_api_only_when_published_and_events_keep_their_order() {
        let (mut keeper, api, mut events) = keeper(&["out_0"]);
        keeper.advance(BroadcastState::Live, None);
        assert_eq!(api.borrow().state, BroadcastState::Starting, "not published yet");
        keeper.apply_output(report("out_0", OutputEvent::Live));
        keeper.publish();
        assert_eq!(api.borrow().state, BroadcastState::Live);
        assert_eq!(api.borrow().outputs[0].state, OutputState::Live);
        keeper.advance(BroadcastState::Starting, None);
        keeper.advance(BroadcastState::Ended, Some("stopped".into()));
        keeper.fail(Failure::Outputs, "too late".into());
        keeper.close().await;
        assert_eq!(api.borrow().state, BroadcastState::Ended, "final states stay");
        assert_eq!(api.borrow().reason.as_deref(), Some("stopped"));
        assert_eq!(
            kinds(&mut events).await,
            ["broadcast.started", "broadcast.live", "output.live", "broadcast.ended"]
        );
    }

    #[tokio::test]
    async fn output_reports_move_its_status_and_count_only_up() {
        let (mut keeper, api, mut events) = keeper(&["out_0", "out_1"]);
        let reconnecting = OutputEvent::Reconnecting {
            error: "refused".into(),
            retry_at_ms: 42,
        };
        keeper.apply_output(report("out_0", reconnecting.clone()));
        keeper.apply_output(report("out_0", reconnecting));
        keeper.apply_output(report("out_0", OutputEvent::Bytes(500)));
        keeper.apply_output(report("out_0", OutputEvent::Bytes(300)));
        keeper.publish();
        let out = api.borrow().outputs[0].clone();
        assert_eq!(
            (out.state, out.reconnects, out.next_retry_at_ms),
            (OutputState::Reconnecting, 2, Some(42))
        );
        assert_eq!(out.bytes, 500, "a byte counter never goes down");
        keeper.apply_output(report("out_0", OutputEvent::Live));
        keeper.apply_output(report("nope", OutputEvent::Ended));
        keeper.publish();
        let out = api.borrow().outputs[0].clone();
        assert_eq!(
            (out.state, out.error, out.next_retry_at_ms),
            (OutputState::Live, None, None)
        );
        assert!(!keeper.every_output_failed());
        keeper.apply_output(report("out_0", OutputEvent::Failed { error: "gone".into() }));
        assert!(!keeper.every_output_failed(), "out_1 still runs");
        keeper.apply_output(report("out_1", OutputEvent::Failed { error: "gone".into() }));
        assert!(keeper.every_output_failed());
        keeper.apply_output(report("out_1", OutputEvent::Ended));
        keeper.end_outputs();
        keeper.close().await;
        assert_eq!(api.borrow().outputs[1].state, OutputState::Failed, "failed is final");
        assert_eq!(
            kinds(&mut events).await,
            [
                "broadcast.started",
                "output.reconnecting",
                "output.live",
                "output.failed",
                "output.failed"
            ]
        );
    }

    /// One track file failing leaves its output live, with an error naming the participant and the file.
    #[tokio::test]
    async fn a_track_file_failing_is_the_outputs_error_not_its_end() {
        let (mut keeper, api, mut events) = keeper(&["out_0"]);
        keeper.apply_output(report("out_0", OutputEvent::Live));
        let failed = OutputEvent::TrackFailed {
            participant_id: "p_1".into(),
            name: "Ann".into(),
            file: "p_1-1-video.webm".into(),
            error: "filesink0: Could not open file for writing".into(),
        };
        keeper.apply_output(report("out_0", failed));
        keeper.close().await;
        let out = api.borrow().outputs[0].clone();
        assert_eq!(out.state, OutputState::Live);
        assert_eq!(
            out.error.as_deref(),
            Some("participant p_1 (Ann): track file p_1-1-video.webm: filesink0: Could not open file for writing")
        );
        assert_eq!(
            kinds(&mut events).await,
            ["broadcast.started", "output.live", "tracks.failed"]
        );
    }

    #[tokio::test]
    async fn outputs_still_running_end_with_the_broadcast() {
        let (mut keeper, api, mut events) = keeper(&["out_0", "out_1"]);
        keeper.apply_output(report("out_1", OutputEvent::Ended));
        keeper.end_outputs();
        keeper.close().await;
        let states: Vec<_> = api.borrow().outputs.iter().map(|o| o.state).collect();
        assert_eq!(states, [OutputState::Ended, OutputState::Ended]);
        assert_eq!(
            kinds(&mut events).await,
            ["broadcast.started", "output.ended", "output.ended"]
        );
    }
}
