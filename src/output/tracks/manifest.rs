//! `manifest.json` of a tracks output: every file it wrote or is writing, whose it is, what is in it and where
//! it lies on the broadcast's timeline. Rewritten whole (to a temporary file, then renamed over the old one), so
//! a reader or a crash never sees half of one.

use serde::{Deserialize, Serialize};
use std::path::Path;

pub const MANIFEST: &str = "manifest.json";

/// What `start_ms`/`end_ms` count: milliseconds of the outputs' timeline (the running time every output of the
/// broadcast, the composite recording and HLS included, is stamped with), at the instant the composite shows the
/// same media.
pub const TIMELINE: &str = "outputs";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub output_id: String,
    /// Always `TIMELINE`: says how to read the offsets.
    pub timeline: String,
    /// The outputs' timeline at the broadcast's first video frame (ms): a composite recording that started with
    /// the broadcast has its time 0 there, so a track lies at `start_ms - first_frame_ms` in it.
    pub first_frame_ms: Option<u64>,
    /// True once nothing more will be written: the output stopped and closed every file, or, after a crash, the
    /// next start completed the manifest from the files (those `ended_by_crash`); false while writing.
    pub complete: bool,
    pub files: Vec<TrackFile>,
}

/// One file: one track (video or audio) of one participant's appearance (from joining to leaving).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackFile {
    /// The file's name, in the manifest's folder.
    pub file: String,
    pub participant_id: String,
    pub name: String,
    /// 1 for the participant's first appearance in this output, 2 after they left and joined again, ...
    pub appearance: u32,
    /// `video` or `audio`.
    pub kind: String,
    /// As ffprobe names it: `vp8`, `vp9`, `h264`, `opus`.
    pub codec: String,
    /// The file's first and last media (the end of its last frame) on the outputs' timeline, in ms.
    pub start_ms: u64,
    pub end_ms: u64,
    pub bytes: u64,
    /// Finalised (its index and duration written); false while being written, or left by a crash (still
    /// readable up to its last second or two).
    pub closed: bool,
    /// The server died while writing it: the next start read its end from the file itself (the end of its last
    /// whole frame; the frames of its last second or two may be lost). Never finalised (`closed` false).
    #[serde(default)]
    pub ended_by_crash: bool,
    /// It could not be written (a disk error): it stopped there while the others went on, and was never finalised.
    /// Its media up to the failure may be readable; `end_ms` is the last the manifest saw.
    #[serde(default)]
    pub failed: bool,
}

impl Manifest {
    pub fn new(output_id: &str) -> Self {
        Self {
            output_id: output_id.to_string(),
            timeline: TIMELINE.to_string(),
            first_frame_ms: None,
            complete: false,
            files: Vec::new(),
        }
    }

    /// Adds a file, or brings the entry of the same name up to date.
    pub fn record(&mut self, file: TrackFile) {
        match self.files.iter_mut().find(|f| f.file == file.file) {
            Some(entry) => *entry = file,
            None => self.files.push(file),
        }
    }

    /// Bytes of every file listed.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Writes `dir/manifest.json` in one rename.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let temporary = dir.join(format!(".{MANIFEST}.tmp"));
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, dir.join(MANIFEST))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(name: &str, appearance: u32, kind: &str, end_ms: u64) -> TrackFile {
        TrackFile {
            file: name.to_string(),
            participant_id: "p_1".into(),
            name: "Ann".into(),
            appearance,
            kind: kind.into(),
            codec: if kind == "video" { "vp8" } else { "opus" }.into(),
            start_ms: 1500,
            end_ms,
            bytes: 100,
            closed: false,
            ended_by_crash: false,
            failed: false,
        }
    }

    #[test]
    fn the_manifest_reads_as_documented() {
        let mut manifest = Manifest::new("out_1");
        manifest.first_frame_ms = Some(21);
        manifest.record(file("p_1-1-video.webm", 1, "video", 4000));
        assert_eq!(
            serde_json::to_value(&manifest).unwrap(),
            json!({
                "output_id": "out_1",
                "timeline": "outputs",
                "first_frame_ms": 21,
                "complete": false,
                "files": [{
                    "file": "p_1-1-video.webm", "participant_id": "p_1", "name": "Ann", "appearance": 1,
                    "kind": "video", "codec": "vp8", "start_ms": 1500, "end_ms": 4000, "bytes": 100, "closed": false,
                    "ended_by_crash": false, "failed": false,
                }],
            })
        );
    }

    #[test]
    fn a_file_recorded_again_is_updated_not_listed_twice() {
        let mut manifest = Manifest::new("out_1");
        manifest.record(file("p_1-1-video.webm", 1, "video", 2000));
        manifest.record(file("p_1-1-audio.webm", 1, "audio", 2000));
        let mut closed = file("p_1-1-video.webm", 1, "video", 4000);
        closed.closed = true;
        manifest.record(closed.clone());
        manifest.record(file("p_1-2-video.webm", 2, "video", 9000));
        let names: Vec<&str> = manifest.files.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(names, ["p_1-1-video.webm", "p_1-1-audio.webm", "p_1-2-video.webm"]);
        assert_eq!(manifest.files[0], closed);
        assert_eq!(manifest.bytes(), 300);
    }

    #[test]
    fn writing_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = Manifest::new("out_3");
        manifest.record(file("p_1-1-audio.webm", 1, "audio", 2000));
        manifest.write(dir.path()).unwrap();
        manifest.complete = true;
        manifest.write(dir.path()).unwrap();
        let read: Manifest = serde_json::from_slice(&std::fs::read(dir.path().join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(read, manifest);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [MANIFEST]);
    }
}
