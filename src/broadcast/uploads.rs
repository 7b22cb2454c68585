//! A broadcast's uploads: what its outputs report becomes jobs in the server's upload queue (`storage`), under
//! `{prefix}/{broadcast id}/recordings/{file}` and `{prefix}/{broadcast id}/hls/{file}`. A finalised recording
//! is queued from `RecordingReady`; an HLS output's new segments are queued at each cut, then the playlist as it
//! is then (so it only ever lists segments queued before it). The queue's owner of an output's jobs is
//! `{broadcast id}/{output id}`.

use super::status::BroadcastStatus;
use crate::output::config::OutputConfig;
use crate::output::events::{OutputEvent, OutputReport};
use crate::output::hls::PLAYLIST;
use crate::storage::{Source, UploadEvent, Uploader};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Names of the HLS segments already queued, one a line (so a restart does not upload them again).
const QUEUED_SEGMENTS: &str = ".uploads-queued";

pub fn owner(broadcast_id: &str, output_id: &str) -> String {
    format!("{broadcast_id}/{output_id}")
}

/// What one output uploads.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Recording { keep: bool },
    Hls,
}

pub struct BroadcastUploads {
    uploader: Option<Uploader>,
    broadcast_id: String,
    hls_dir: PathBuf,
    plans: HashMap<String, Plan>,
    hls: HlsQueued,
}

impl BroadcastUploads {
    pub fn new(uploader: Option<Uploader>, broadcast_id: &str, dir: &Path) -> Self {
        Self {
            uploader,
            broadcast_id: broadcast_id.to_string(),
            hls_dir: dir.join("hls"),
            plans: HashMap::new(),
            hls: HlsQueued::default(),
        }
    }

    /// Output `id` starts; what it uploads, if anything.
    pub fn add(&mut self, id: &str, config: &OutputConfig) {
        let plan = match config {
            OutputConfig::Record { upload: Some(u), .. } => Plan::Recording { keep: u.keep },
            OutputConfig::Hls { upload: true, .. } => Plan::Hls,
            _ => return,
        };
        self.plans.insert(id.to_string(), plan);
    }

    /// Queues what `report` makes ready. Quick (small files, one synced write a job): called on the actor.
    pub fn on_report(&mut self, report: &OutputReport) {
        let (Some(uploader), Some(plan)) = (&self.uploader, self.plans.get(&report.output_id)) else {
            return;
        };
        let owner = owner(&self.broadcast_id, &report.output_id);
        let queued = match (plan, &report.event) {
            (Plan::Recording { keep }, OutputEvent::RecordingReady { path, .. }) => {
                queue_recording(uploader, &owner, &self.broadcast_id, Path::new(path), *keep)
            }
            (Plan::Hls, OutputEvent::PlaylistWritten | OutputEvent::Ended) => {
                self.hls.sync(uploader, &owner, &self.broadcast_id, &self.hls_dir)
            }
            _ => Ok(()),
        };
        if let Err(e) = queued {
            tracing::error!(output_id = %report.output_id, "cannot queue an upload: {e}");
        }
    }
}

fn queue_recording(
    uploader: &Uploader,
    owner: &str,
    broadcast_id: &str,
    path: &Path,
    keep: bool,
) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("recording");
    let key = uploader.store().url().key(&[broadcast_id, "recordings", name]);
    let source = Source::File {
        path: path.to_path_buf(),
        remove_after: !keep,
    };
    uploader.enqueue(owner, &key, source)
}

/// The HLS files of one broadcast already queued.
#[derive(Default)]
struct HlsQueued {
    segments: HashSet<String>,
    playlist: Option<String>,
    loaded: bool,
}

impl HlsQueued {
    /// Queues every segment the served playlist lists that is not queued yet, then the playlist itself if it
    /// changed.
    fn sync(&mut self, uploader: &Uploader, owner: &str, broadcast_id: &str, dir: &Path) -> std::io::Result<()> {
        if !std::mem::replace(&mut self.loaded, true) {
            self.segments = read_queued(dir);
        }
        let Ok(playlist) = std::fs::read_to_string(dir.join(PLAYLIST)) else {
            return Ok(());
        };
        if self.playlist.as_deref() == Some(playlist.as_str()) {
            return Ok(());
        }
        let key = |name: &str| uploader.store().url().key(&[broadcast_id, "hls", name]);
        for segment in segments(&playlist) {
            if self.segments.contains(segment) {
                continue;
            }
            uploader.enqueue(owner, &key(segment), Source::CopyOf(dir.join(segment)))?;
            self.segments.insert(segment.to_string());
            let mut list = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(QUEUED_SEGMENTS))?;
            writeln!(list, "{segment}")?;
        }
        let snapshot = Source::Snapshot {
            bytes: playlist.clone().into_bytes(),
            replaceable: true,
        };
        uploader.enqueue(owner, &key(PLAYLIST), snapshot)?;
        self.playlist = Some(playlist);
        Ok(())
    }
}

fn read_queued(dir: &Path) -> HashSet<String> {
    std::fs::read_to_string(dir.join(QUEUED_SEGMENTS))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The segment URIs a playlist lists (every line that is not a tag or blank).
fn segments(playlist: &str) -> impl Iterator<Item = &str> {
    playlist
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        // Only our own flat names: never a path out of the directory.
        .filter(|l| crate::output::hls::is_servable(l))
}

/// A broadcast the previous server was running when it died (its record just closed): its recording in
/// progress (playable up to the last index update) and its closed playlist are queued now.
pub fn recover(uploader: &Uploader, status: &BroadcastStatus, dir: &Path) {
    for out in &status.outputs {
        let Some(upload) = &out.upload else { continue };
        let owner = owner(&status.id, &out.id);
        let queued = match (out.kind.as_str(), &out.path) {
            ("record", Some(path)) if Path::new(path).is_file() && !uploader.is_queued(Path::new(path)) => {
                queue_recording(uploader, &owner, &status.id, Path::new(path), upload.keep)
            }
            ("hls", _) => HlsQueued::default().sync(uploader, &owner, &status.id, &dir.join("hls")),
            _ => Ok(()),
        };
        match queued {
            Ok(()) => tracing::info!(broadcast_id = %status.id, output_id = %out.id, "uploads queued after restart"),
            Err(e) => tracing::error!(broadcast_id = %status.id, output_id = %out.id, "cannot queue uploads: {e}"),
        }
    }
}

/// Publishes the uploader's events on the event bus as `upload.done` / `upload.failed`, for the broadcast whose
/// output owns the file.
pub fn forward_events(uploader: &Uploader, bus: crate::events::EventBus) {
    let mut events = uploader.subscribe();
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("{n} upload events not published (too many at once)");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let (kind, owner, data) = match event {
                UploadEvent::Done { owner, key, bytes } => {
                    ("upload.done", owner, serde_json::json!({"key": key, "bytes": bytes}))
                }
                UploadEvent::Failed {
                    owner,
                    key,
                    error,
                    retry_in_ms,
                } => (
                    "upload.failed",
                    owner,
                    serde_json::json!({"key": key, "error": error, "retry_in_ms": retry_in_ms}),
                ),
            };
            let (broadcast_id, output_id) = owner.split_once('/').unwrap_or((owner.as_str(), ""));
            let mut data = data;
            data["output_id"] = output_id.into();
            bus.publish(kind, broadcast_id, data);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn a_playlists_segments_are_its_uri_lines_and_only_ours() {
        let playlist = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.000,\nsegment00000.ts\n\n#EXTINF:2.0,\n\
                        segment00001.ts\n#EXTINF:2.0,\n../../etc/passwd\n#EXT-X-ENDLIST\n";
        assert_eq!(
            segments(playlist).collect::<Vec<_>>(),
            ["segment00000.ts", "segment00001.ts"]
        );
    }
}
