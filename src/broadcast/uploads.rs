//! A broadcast's uploads: what its outputs report becomes jobs in the server's upload queue (`storage`), under
//! `{prefix}/{broadcast id}/recordings/{file}`, `{prefix}/{broadcast id}/hls/{file}` and
//! `{prefix}/{broadcast id}/tracks/{output id}/{file}`. A finalised recording is queued from `RecordingReady`;
//! an HLS output's new segments are queued at each cut, then the playlist as it is then (so it only ever lists
//! segments queued before it); a tracks output's files as each appearance closes (`TracksReady`), its manifest
//! when it ends, after every file it lists. The queue's owner of an output's jobs is `{broadcast id}/{output id}`:
//! one lane, uploaded in the order queued. Each object's `Content-Type` and `Cache-Control`: `upload_headers`.

use super::status::BroadcastStatus;
use super::upload_headers;
use crate::output::config::OutputConfig;
use crate::output::events::{OutputEvent, OutputReport};
use crate::output::hls::PLAYLIST;
use crate::output::tracks::manifest::{Manifest, MANIFEST};
use crate::output::tracks::TRACKS_DIR;
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
    Recording {
        keep: bool,
    },
    Hls,
    /// `manifest_queued`: the manifest went into the queue (a file closed after it sends it again).
    Tracks {
        keep: bool,
        manifest_queued: bool,
    },
}

pub struct BroadcastUploads {
    uploader: Option<Uploader>,
    broadcast_id: String,
    hls_dir: PathBuf,
    tracks_dir: PathBuf,
    plans: HashMap<String, Plan>,
    hls: HlsQueued,
}

impl BroadcastUploads {
    pub fn new(uploader: Option<Uploader>, broadcast_id: &str, dir: &Path) -> Self {
        Self {
            uploader,
            broadcast_id: broadcast_id.to_string(),
            hls_dir: dir.join("hls"),
            tracks_dir: dir.join(TRACKS_DIR),
            plans: HashMap::new(),
            hls: HlsQueued::default(),
        }
    }

    /// Output `id` starts; what it uploads, if anything.
    pub fn add(&mut self, id: &str, config: &OutputConfig) {
        let plan = match config {
            OutputConfig::Record { upload: Some(u), .. } => Plan::Recording { keep: u.keep },
            OutputConfig::Hls { upload: true, .. } => Plan::Hls,
            OutputConfig::Tracks { upload: Some(u) } => Plan::Tracks {
                keep: u.keep,
                manifest_queued: false,
            },
            _ => return,
        };
        self.plans.insert(id.to_string(), plan);
    }

    /// Queues what `report` makes ready. Quick (small files, one synced write a job): called on the actor.
    pub fn on_report(&mut self, report: &OutputReport) {
        let (Some(uploader), Some(plan)) = (&self.uploader, self.plans.get_mut(&report.output_id)) else {
            return;
        };
        let owner = owner(&self.broadcast_id, &report.output_id);
        let tracks = || TracksUpload {
            uploader,
            owner: &owner,
            broadcast_id: &self.broadcast_id,
            output_id: &report.output_id,
            dir: self.tracks_dir.join(&report.output_id),
        };
        let queued = match (plan, &report.event) {
            (Plan::Recording { keep }, OutputEvent::RecordingReady { path, .. }) => {
                queue_recording(uploader, &owner, &self.broadcast_id, Path::new(path), *keep)
            }
            (Plan::Hls, OutputEvent::PlaylistWritten | OutputEvent::Ended) => {
                self.hls.sync(uploader, &owner, &self.broadcast_id, &self.hls_dir)
            }
            (Plan::Tracks { keep, manifest_queued }, OutputEvent::TracksReady { files, .. }) => {
                let tracks = tracks();
                let queued = files.iter().try_for_each(|file| tracks.file(file, *keep));
                // Only a report out of order (an output that finished late) closes a file after the end.
                match queued {
                    Ok(()) if *manifest_queued => tracks.manifest(),
                    queued => queued,
                }
            }
            (Plan::Tracks { manifest_queued, .. }, OutputEvent::Ended) => {
                *manifest_queued = true;
                tracks().manifest()
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
    uploader.enqueue(owner, &key, source, upload_headers::media(name))
}

/// One tracks output's uploads: its files under `{broadcast id}/tracks/{output id}/`, as in its folder.
struct TracksUpload<'a> {
    uploader: &'a Uploader,
    owner: &'a str,
    broadcast_id: &'a str,
    output_id: &'a str,
    /// The output's folder.
    dir: PathBuf,
}

impl TracksUpload<'_> {
    fn key(&self, name: &str) -> String {
        let url = self.uploader.store().url();
        url.key(&[self.broadcast_id, TRACKS_DIR, self.output_id, name])
    }

    /// Queues the closed track file `name` (a name the manifest lists, in the output's folder).
    fn file(&self, name: &str, keep: bool) -> std::io::Result<()> {
        // The tracks output names its files; anything else is not ours to upload.
        if name.contains('/') || name.starts_with('.') || name == MANIFEST {
            return Ok(());
        }
        let source = Source::File {
            path: self.dir.join(name),
            remove_after: !keep,
        };
        let headers = upload_headers::media(name);
        self.uploader.enqueue(self.owner, &self.key(name), source, headers)
    }

    /// Queues the manifest as it is now, behind every file queued before.
    fn manifest(&self) -> std::io::Result<()> {
        let bytes = match std::fs::read(self.dir.join(MANIFEST)) {
            Ok(bytes) => bytes,
            // The output failed before writing one: it lists nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let snapshot = Source::Snapshot {
            bytes,
            replaceable: true,
        };
        self.uploader
            .enqueue(self.owner, &self.key(MANIFEST), snapshot, upload_headers::manifest())
    }

    /// After a crash: every file the manifest lists that is still here and not queued, then the manifest.
    fn recover(&self, keep: bool) -> std::io::Result<()> {
        let Ok(text) = std::fs::read(self.dir.join(MANIFEST)) else {
            return Ok(());
        };
        let manifest: Manifest = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
        for file in &manifest.files {
            let path = self.dir.join(&file.file);
            if path.is_file() && !self.uploader.is_queued(&path) {
                self.file(&file.file, keep)?;
            }
        }
        self.manifest()
    }
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
            let headers = upload_headers::media(segment);
            uploader.enqueue(owner, &key(segment), Source::CopyOf(dir.join(segment)), headers)?;
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
        uploader.enqueue(owner, &key(PLAYLIST), snapshot, upload_headers::playlist(&playlist))?;
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
/// progress (playable up to the last index update), its closed playlist and its track files (readable up to
/// their last second or two) with their manifest are queued now.
pub fn recover(uploader: &Uploader, status: &BroadcastStatus, dir: &Path) {
    for out in &status.outputs {
        let Some(upload) = &out.upload else { continue };
        let owner = owner(&status.id, &out.id);
        let queued = match (out.kind.as_str(), &out.path) {
            ("record", Some(path)) if Path::new(path).is_file() && !uploader.is_queued(Path::new(path)) => {
                queue_recording(uploader, &owner, &status.id, Path::new(path), upload.keep)
            }
            ("hls", _) => HlsQueued::default().sync(uploader, &owner, &status.id, &dir.join("hls")),
            ("tracks", _) => TracksUpload {
                uploader,
                owner: &owner,
                broadcast_id: &status.id,
                output_id: &out.id,
                dir: dir.join(TRACKS_DIR).join(&out.id),
            }
            .recover(upload.keep),
            _ => Ok(()),
        };
        match queued {
            Ok(()) => tracing::info!(broadcast_id = %status.id, output_id = %out.id, "uploads queued after restart"),
            Err(e) => tracing::error!(broadcast_id = %status.id, output_id = %out.id, "cannot queue uploads: {e}"),
        }
    }
}

/// The key prefixes of this server's objects: one per broadcast in its data dir (`{prefix}/{broadcast id}/`;
/// ids are random, so no other server writes under them). Multipart uploads left unfinished there are aborted
/// at start (`storage::leftovers`).
pub fn key_prefixes(store: &crate::storage::Store, data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("broadcasts")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|id| store.url().key(&[&id, ""]))
        .collect()
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
