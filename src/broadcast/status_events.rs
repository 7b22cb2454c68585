//! Which events a status change makes: participants who joined or left, a new speaker, an output's new state.

use super::status::{BroadcastStatus, OutputState, OutputStatus, ParticipantStatus};
use serde_json::{json, Value};

pub fn scene_changes(
    before: &BroadcastStatus,
    participants: &[ParticipantStatus],
    speaker: Option<&str>,
) -> Vec<(String, Value)> {
    let mut changes = Vec::new();
    for p in participants {
        if !before.participants.iter().any(|b| b.id == p.id) {
            changes.push((
                "participant.joined".into(),
                json!({"participant_id": p.id, "name": p.name}),
            ));
        }
    }
    for b in &before.participants {
        if !participants.iter().any(|p| p.id == b.id) {
            changes.push((
                "participant.left".into(),
                json!({"participant_id": b.id, "name": b.name}),
            ));
        }
    }
    if let Some(speaker) = speaker {
        if before.speaker.as_deref() != Some(speaker) {
            changes.push(("speaker.changed".into(), json!({"participant_id": speaker})));
        }
    }
    changes
}

pub fn output_change(before: OutputState, output: &OutputStatus) -> Option<(String, Value)> {
    if before == output.state {
        return None;
    }
    let kind = match output.state {
        OutputState::Live => "output.live",
        OutputState::Reconnecting => "output.reconnecting",
        OutputState::Failed => "output.failed",
        OutputState::Ended => "output.ended",
        OutputState::Starting => return None,
    };
    Some((
        kind.into(),
        json!({"output_id": output.id, "kind": output.kind, "error": output.error, "reconnects": output.reconnects}),
    ))
}
