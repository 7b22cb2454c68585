//! The upload queue on disk, so a restart loses nothing: one small JSON file per job under `jobs/` (written to a
//! temporary name, synced, then renamed: a job file is whole or absent), and under `files/` the queue's own copies
//! of files that may change or vanish before they are uploaded (HLS segments the output deletes, playlists it
//! rewrites). A job's file is removed once its upload is confirmed, then its source if the job owns it.

use super::ObjectHeaders;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const JOBS: &str = "jobs";
const FILES: &str = "files";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Order of arrival: jobs of one owner are uploaded in this order.
    pub seq: u64,
    pub owner: String,
    pub key: String,
    /// The file to upload.
    pub path: PathBuf,
    /// Delete `path` once the upload is confirmed.
    pub remove_after: bool,
    /// A later job of the same owner and key makes this one unnecessary (a playlist rewritten since).
    pub replaceable: bool,
    /// Stored with the object (absent in jobs queued by a version before headers: none then).
    #[serde(default)]
    pub headers: ObjectHeaders,
}

/// What to upload.
#[derive(Debug, Clone)]
pub enum Source {
    /// This file as it is then; deleted after the upload if `remove_after`.
    File { path: PathBuf, remove_after: bool },
    /// This file as it is now: the queue keeps its own copy (a hard link where it can).
    CopyOf(PathBuf),
    /// These bytes (a playlist as it is now); `replaceable` by a later snapshot of the same key.
    Snapshot { bytes: Vec<u8>, replaceable: bool },
}

pub struct Queue {
    dir: PathBuf,
    next_seq: AtomicU64,
}

impl Queue {
    /// Opens (creating) the queue in `dir`; returns it with the jobs left from before, oldest first.
    pub fn open(dir: &Path) -> std::io::Result<(Self, Vec<Job>)> {
        std::fs::create_dir_all(dir.join(JOBS))?;
        std::fs::create_dir_all(dir.join(FILES))?;
        let mut jobs = Vec::new();
        for entry in std::fs::read_dir(dir.join(JOBS))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                match std::fs::read(&path).map(|b| serde_json::from_slice::<Job>(&b)) {
                    Ok(Ok(job)) => jobs.push(job),
                    _ => tracing::warn!("ignoring unreadable upload job {}", path.display()),
                }
            } else {
                // A job whose write was cut off before its rename: it was never acknowledged.
                let _ = std::fs::remove_file(&path);
            }
        }
        jobs.sort_by_key(|j| j.seq);
        let next = jobs.last().map_or(1, |j| j.seq + 1);
        let queue = Self {
            dir: dir.to_path_buf(),
            next_seq: AtomicU64::new(next),
        };
        Ok((queue, jobs))
    }

    /// Records a job durably; returns it once it is on disk.
    pub fn add(&self, owner: &str, key: &str, source: Source, headers: ObjectHeaders) -> std::io::Result<Job> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let own_file = |name: &str| self.dir.join(FILES).join(format!("{seq:012}-{name}"));
        let file_name = key.rsplit('/').next().unwrap_or("file");
        let (path, remove_after, replaceable) = match source {
            Source::File { path, remove_after } => (path, remove_after, false),
            Source::CopyOf(original) => {
                let copy = own_file(file_name);
                if std::fs::hard_link(&original, &copy).is_err() {
                    std::fs::copy(&original, &copy)?;
                }
                (copy, true, false)
            }
            Source::Snapshot { bytes, replaceable } => {
                let copy = own_file(file_name);
                write_synced(&copy, &bytes)?;
                (copy, true, replaceable)
            }
        };
        let job = Job {
            seq,
            owner: owner.to_string(),
            key: key.to_string(),
            path,
            remove_after,
            replaceable,
            headers,
        };
        let file = self.job_file(seq);
        let tmp = file.with_extension("tmp");
        write_synced(&tmp, &serde_json::to_vec(&job).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, file)?;
        Ok(job)
    }

    /// Forgets a job whose upload was confirmed (or is no longer needed), and its file if the job owns it.
    pub fn remove(&self, job: &Job) -> std::io::Result<()> {
        std::fs::remove_file(self.job_file(job.seq))?;
        if job.remove_after {
            match std::fs::remove_file(&job.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn job_file(&self, seq: u64) -> PathBuf {
        self.dir.join(JOBS).join(format!("{seq:012}.json"))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_survive_a_reopen_in_their_order_and_leave_once_removed() {
        let dir = tempfile::tempdir().unwrap();
        let recording = dir.path().join("rec.mp4");
        std::fs::write(&recording, b"moov").unwrap();
        let segment = dir.path().join("segment00000.ts");
        std::fs::write(&segment, b"ts").unwrap();
        let (queue, left) = Queue::open(&dir.path().join("q")).unwrap();
        assert!(left.is_empty());
        let rec = File {
            path: recording.clone(),
            remove_after: true,
        };
        let mp4 = ObjectHeaders::new("video/mp4", "max-age=31536000, immutable");
        queue
            .add("bc_1/out_0", "p/bc_1/recordings/rec.mp4", rec, mp4.clone())
            .unwrap();
        queue
            .add(
                "bc_1/out_1",
                "p/bc_1/hls/segment00000.ts",
                Source::CopyOf(segment.clone()),
                ObjectHeaders::default(),
            )
            .unwrap();
        let playlist = Source::Snapshot {
            bytes: b"#EXTM3U\n".to_vec(),
            replaceable: true,
        };
        queue
            .add(
                "bc_1/out_1",
                "p/bc_1/hls/index.m3u8",
                playlist,
                ObjectHeaders::default(),
            )
            .unwrap();
        // The original segment goes (the HLS output deletes old ones): the queue's copy stays.
        std::fs::remove_file(&segment).unwrap();
        drop(queue);

        let (queue, jobs) = Queue::open(&dir.path().join("q")).unwrap();
        let keys: Vec<_> = jobs.iter().map(|j| (j.seq, j.owner.as_str(), j.key.as_str())).collect();
        assert_eq!(
            keys,
            [
                (1, "bc_1/out_0", "p/bc_1/recordings/rec.mp4"),
                (2, "bc_1/out_1", "p/bc_1/hls/segment00000.ts"),
                (3, "bc_1/out_1", "p/bc_1/hls/index.m3u8"),
            ]
        );
        assert_eq!(std::fs::read(&jobs[1].path).unwrap(), b"ts");
        assert_eq!(std::fs::read(&jobs[2].path).unwrap(), b"#EXTM3U\n");
        assert_eq!((jobs[0].replaceable, jobs[2].replaceable), (false, true));
        assert_eq!(jobs[0].headers, mp4, "headers survive the reopen");
        assert_eq!(
            jobs[0].path, recording,
            "a recording is uploaded from where it is, not copied"
        );

        queue.remove(&jobs[0]).unwrap();
        assert!(!recording.exists(), "removed after its upload");
        let next = queue
            .add(
                "o",
                "k/x",
                Source::Snapshot {
                    bytes: vec![1],
                    replaceable: false,
                },
                ObjectHeaders::default(),
            )
            .unwrap();
        assert_eq!(next.seq, 4, "numbers go on after the ones left from before");
        drop(queue);
        let (_, jobs) = Queue::open(&dir.path().join("q")).unwrap();
        assert_eq!(jobs.iter().map(|j| j.seq).collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn a_job_cut_off_before_its_rename_is_dropped_and_a_kept_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(dir.path()).unwrap();
        let kept = dir.path().join("keep.mp4");
        std::fs::write(&kept, b"x").unwrap();
        let job = queue
            .add(
                "o",
                "k",
                Source::File {
                    path: kept.clone(),
                    remove_after: false,
                },
                ObjectHeaders::default(),
            )
            .unwrap();
        std::fs::write(dir.path().join(JOBS).join("000000000009.tmp"), b"{\"seq\":").unwrap();
        drop(queue);
        let (queue, jobs) = Queue::open(dir.path()).unwrap();
        assert_eq!(jobs, std::slice::from_ref(&job));
        assert!(!dir.path().join(JOBS).join("000000000009.tmp").exists());
        queue.remove(&job).unwrap();
        assert!(kept.exists(), "keep: the local file stays after the upload");
    }

    #[test]
    fn a_job_queued_before_headers_existed_is_read_with_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(JOBS)).unwrap();
        let old = r#"{"seq":7,"owner":"o","key":"k","path":"/x","remove_after":true,"replaceable":false}"#;
        std::fs::write(dir.path().join(JOBS).join("000000000007.json"), old).unwrap();
        let (_, jobs) = Queue::open(dir.path()).unwrap();
        assert_eq!(jobs.len(), 1, "the old job is read, not ignored");
        assert_eq!(jobs[0].headers, ObjectHeaders::default());
    }

    use Source::File;
}
