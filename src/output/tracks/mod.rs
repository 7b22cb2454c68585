//! Tracks output: every participant's video and sound as received (no decode, no encode), one set of files per
//! appearance (joining to leaving; leaving and joining again starts a new set), listed with their place on the
//! broadcast's timeline in `manifest.json`. Files and manifest go in `broadcasts/{id}/tracks/{output id}/`.
//!
//! Unlike the other outputs it is not fed from the hub: it follows the participants (a `watch` of who is in the
//! call, from the broadcast) and subscribes to each one's encoded taps. The hub only gives it the mixer's base
//! time, which puts each participant's media on the outputs' timeline (`timeline::participant_track_to_output`).

pub mod codec;
pub mod manifest;
pub mod recovery;
pub mod track_file;

use super::events::{OutputEvent, Reporter};
use super::hub::EncodedHub;
use crate::call::encoded_tap::EncodedSubscription;
use crate::call::participant::Participant;
use manifest::{Manifest, TrackFile};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use track_file::TrackWriter;

/// A broadcast's track outputs write under this folder of its directory, one folder per output.
pub const TRACKS_DIR: &str = "tracks";

/// How often the manifest and the status are brought up to date while files are written.
const REFRESH: Duration = Duration::from_secs(1);

/// Who is in the call now; a new `Arc` for the same id is a new appearance.
pub type Participants = watch::Receiver<Vec<Arc<Participant>>>;

/// One participant's appearance: a writer per track, fed while subscribed.
struct Appearance {
    participant: Arc<Participant>,
    number: u32,
    writers: Vec<(&'static str, TrackWriter)>,
    subscriptions: Vec<EncodedSubscription>,
}

pub struct TracksOutput {
    /// This output's own folder.
    pub dir: PathBuf,
    pub hub: EncodedHub,
    pub reporter: Reporter,
    pub participants: Participants,
}

struct Running {
    out: TracksOutput,
    manifest: Manifest,
    appearances: Vec<Appearance>,
    /// Appearances so far per participant id.
    counts: HashMap<String, u32>,
    /// A file opened or failed: the manifest and status are brought up to date at once.
    changed: Arc<tokio::sync::Notify>,
    /// Files whose failure was reported (once each).
    failed: HashSet<String>,
}

impl TracksOutput {
    /// Writes until `stop` turns true, then closes every file and writes the final manifest.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            let error = format!("creating {}: {e}", self.dir.display());
            tracing::warn!("tracks output failed: {error}");
            self.reporter.send(OutputEvent::Failed { error });
            return;
        }
        let manifest = Manifest::new(self.reporter.output_id());
        let mut running = Running {
            out: self,
            manifest,
            appearances: Vec::new(),
            counts: HashMap::new(),
            changed: Arc::default(),
            failed: HashSet::new(),
        };
        let changed = running.changed.clone();
        running.out.reporter.send(OutputEvent::Live);
        running.refresh();
        let mut tick = tokio::time::interval(REFRESH);
        // False once the broadcast let go of the call: nobody is left to record.
        let mut following = true;
        loop {
            if following {
                let present = running.out.participants.borrow_and_update().clone();
                running.follow(&present).await;
            }
            let woke = tokio::select! {
                changed = running.out.participants.changed(), if following => Wake::Participants(changed.is_ok()),
                _ = tick.tick() => Wake::Tick,
                _ = changed.notified() => Wake::Tick,
                _ = stop.wait_for(|s| *s) => Wake::Stop,
            };
            match woke {
                Wake::Participants(true) => {}
                Wake::Participants(false) => {
                    following = false;
                    running.follow(&[]).await;
                }
                Wake::Tick => running.refresh(),
                Wake::Stop => break,
            }
        }
        running.follow(&[]).await;
        running.manifest.complete = true;
        running.refresh();
        running.out.reporter.send(OutputEvent::Ended);
    }
}

enum Wake {
    /// Who is in the call changed (false: nobody will tell any more).
    Participants(bool),
    Tick,
    Stop,
}

impl Running {
    /// Opens a set for each new appearance and closes those of participants who left.
    async fn follow(&mut self, present: &[Arc<Participant>]) {
        let (stay, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.appearances)
            .into_iter()
            .partition(|a| present.iter().any(|p| Arc::ptr_eq(p, &a.participant)));
        self.appearances = stay;
        for participant in present {
            if !self
                .appearances
                .iter()
                .any(|a| Arc::ptr_eq(&a.participant, participant))
            {
                let appearance = self.open(participant.clone());
                self.appearances.push(appearance);
            }
        }
        for appearance in gone {
            self.close(appearance).await;
        }
    }

    fn open(&mut self, participant: Arc<Participant>) -> Appearance {
        let number = self.counts.entry(participant.id.clone()).or_default();
        *number += 1;
        let number = *number;
        tracing::info!(participant_id = %participant.id, appearance = number, "recording tracks");
        let mut writers = Vec::new();
        let mut subscriptions = Vec::new();
        for (kind, tap) in [
            ("video", &participant.encoded_video),
            ("audio", &participant.encoded_audio),
        ] {
            let stem = self
                .out
                .dir
                .join(format!("{}-{number}-{kind}", file_safe(&participant.id)));
            let writer = TrackWriter::new(stem, kind == "video", tap, &self.out.hub, self.changed.clone());
            subscriptions.push(tap.subscribe(writer.receiver()));
            writers.push((kind, writer));
        }
        Appearance {
            participant,
            number,
            writers,
            subscriptions,
        }
    }

    /// Stops feeding the set, finalises its files (off the async threads) and says so.
    async fn close(&mut self, appearance: Appearance) {
        let Appearance {
            participant,
            number,
            writers,
            subscriptions,
        } = appearance;
        drop(subscriptions);
        // A file that failed since the last refresh (up to a second ago) is reported before closing forgets it.
        for (_, writer) in &writers {
            report_failure(&mut self.failed, &self.out.reporter, &participant, writer);
        }
        let closing = writers.clone();
        let clean = tokio::task::spawn_blocking(move || closing.iter().map(|(_, w)| w.close()).collect::<Vec<_>>())
            .await
            .unwrap_or_default();
        let mut files = Vec::new();
        for (i, (kind, writer)) in writers.iter().enumerate() {
            if let Some(entry) = self.entry(&participant, number, kind, writer, clean.get(i) == Some(&true)) {
                files.push(entry.file.clone());
                self.manifest.record(entry);
            }
        }
        self.write_manifest();
        tracing::info!(participant_id = %participant.id, appearance = number, "track files closed");
        self.out.reporter.send(OutputEvent::TracksReady {
            participant_id: participant.id.clone(),
            name: participant.name.clone(),
            appearance: number,
            files,
        });
    }

    /// The manifest entry of one writer's file, if it opened.
    fn entry(
        &self,
        participant: &Participant,
        appearance: u32,
        kind: &str,
        writer: &TrackWriter,
        closed: bool,
    ) -> Option<TrackFile> {
        let info = writer.info()?;
        Some(TrackFile {
            file: info.path.file_name()?.to_string_lossy().into_owned(),
            participant_id: participant.id.clone(),
            name: participant.name.clone(),
            appearance,
            kind: kind.to_string(),
            codec: info.codec.name().to_string(),
            start_ms: info.start.mseconds(),
            end_ms: info.end.mseconds(),
            bytes: std::fs::metadata(&info.path).map_or(0, |m| m.len()),
            closed,
            ended_by_crash: false,
            failed: writer.failure().is_some(),
        })
    }

    /// Brings the manifest up to date with the files being written, writes it and reports the totals.
    fn refresh(&mut self) {
        let mut entries = Vec::new();
        for a in &self.appearances {
            for (kind, writer) in &a.writers {
                report_failure(&mut self.failed, &self.out.reporter, &a.participant, writer);
                entries.extend(self.entry(&a.participant, a.number, kind, writer, false));
            }
        }
        for entry in entries {
            self.manifest.record(entry);
        }
        self.write_manifest();
    }

    fn write_manifest(&mut self) {
        if self.manifest.first_frame_ms.is_none() {
            self.manifest.first_frame_ms = self.out.hub.first_frame().map(|t| t.mseconds());
        }
        if let Err(e) = self.manifest.write(&self.out.dir) {
            tracing::warn!("cannot write the tracks manifest: {e}");
        }
        self.out.reporter.send(OutputEvent::Tracks {
            path: self.out.dir.join(manifest::MANIFEST).to_string_lossy().into_owned(),
            files: self.manifest.files.len() as u64,
            bytes: self.manifest.bytes(),
        });
    }
}

/// A participant id as a file name: letters, digits, `-` and `_` kept, anything else `_` (ids from an SFU are
/// not ours to trust).
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Reports a writer's file that could not be written, once per file (`failed` holds those reported). This file
/// alone stops: the participant's other track, the others' and the other outputs go on. Named by whose and which
/// file (a path under the data dir, no secret).
fn report_failure(failed: &mut HashSet<String>, reporter: &Reporter, participant: &Participant, writer: &TrackWriter) {
    let Some((file, error)) = writer.failure() else {
        return;
    };
    if failed.insert(file.clone()) {
        tracing::warn!(participant_id = %participant.id, file, "track file failed: {error}");
        reporter.send(OutputEvent::TrackFailed {
            participant_id: participant.id.clone(),
            name: participant.name.clone(),
            file,
            error,
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn participant_ids_become_safe_file_names() {
        assert_eq!(super::file_safe("p_00ab-9"), "p_00ab-9");
        assert_eq!(super::file_safe("../x y/é"), "___x_y__");
    }
}
