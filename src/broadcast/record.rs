//! Each broadcast's status on disk (`broadcasts/{id}/broadcast.json`, rewritten on every state change), and
//! what a server does with them at start: a broadcast that was running when the server died is closed
//! (its playlists end, its tracks manifests are completed from the files) and reported `failed` with reason
//! `server_restart`.

use super::status::{BroadcastState, BroadcastStatus, OutputState};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const RECORD_FILE: &str = "broadcast.json";
pub const SERVER_RESTART: &str = "server_restart";

/// Writes `status` atomically (temporary file, then rename): a crash never leaves half a record.
pub fn write(path: &Path, status: &BroadcastStatus) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?)?;
        file.sync_data()?;
    }
    std::fs::rename(tmp, path)
}

/// Ends an HLS playlist a dead process left open, so players stop waiting for more (a keep-every-segment
/// one becomes VOD).
fn close_playlist(hls_dir: &Path) {
    crate::output::hls_writer::end_left_open(hls_dir);
    // An output with renditions: each rendition's media playlist, in its folder.
    let folders = std::fs::read_dir(hls_dir).into_iter().flatten().flatten();
    for entry in folders.filter(|e| e.file_name().to_str().is_some_and(crate::output::hls_ladder::is_folder)) {
        crate::output::hls_writer::end_left_open(&entry.path());
    }
}

/// Every recorded broadcast under `broadcasts_dir`; the ones that were running are closed, marked failed and
/// handed to `interrupted` (their unfinished uploads are queued from there).
pub fn restore(broadcasts_dir: &Path, mut interrupted: impl FnMut(&BroadcastStatus)) -> Vec<BroadcastStatus> {
    let Ok(entries) = std::fs::read_dir(broadcasts_dir) else {
        return Vec::new();
    };
    let dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    let mut restored = Vec::new();
    for dir in dirs {
        let path = dir.join(RECORD_FILE);
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let mut status: BroadcastStatus = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("ignoring unreadable record {}: {e}", path.display());
                continue;
            }
        };
        if !status.state.is_final() {
            close_playlist(&dir.join("hls"));
            crate::output::tracks::recovery::complete_left_open(&dir.join(crate::output::tracks::TRACKS_DIR));
            status.state = BroadcastState::Failed;
            status.reason = Some(SERVER_RESTART.into());
            status.ended_at_ms = Some(crate::wall_clock::now_ms());
            for output in &mut status.outputs {
                if output.state != OutputState::Ended {
                    output.state = OutputState::Failed;
                }
            }
            if let Err(e) = write(&path, &status) {
                tracing::warn!("cannot update {}: {e}", path.display());
            }
            tracing::warn!(broadcast_id = %status.id, "broadcast was running when the server stopped: failed");
            interrupted(&status);
        }
        restored.push(status);
    }
    restored
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dead_ladder_has_every_rendition_playlist_ended() {
        let dir = tempfile::tempdir().unwrap();
        let open = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n\
                    #EXTINF:1.000,\nsegment00000.ts\n";
        for folder in ["720p", "360p"] {
            std::fs::create_dir(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join("index.m3u8"), open).unwrap();
        }
        // Not a rendition's folder: left alone.
        std::fs::create_dir(dir.path().join("other")).unwrap();
        std::fs::write(dir.path().join("other").join("index.m3u8"), open).unwrap();
        super::close_playlist(dir.path());
        let read = |folder: &str| std::fs::read_to_string(dir.path().join(folder).join("index.m3u8")).unwrap();
        assert!(read("720p").ends_with("#EXT-X-ENDLIST\n"), "{}", read("720p"));
        assert!(read("360p").ends_with("#EXT-X-ENDLIST\n"), "{}", read("360p"));
        assert_eq!(read("other"), open);
    }
}
