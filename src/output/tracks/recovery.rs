//! A tracks output its server died writing (SIGKILL, power cut): at the next start its manifest is completed
//! from what is on disk. The manifest was last rewritten up to a second before the crash, so the files still
//! being written have their end as it was then (or none past their start). Each such file's end is read from
//! the file itself (the end of its last frame, by demuxing it: no decode), its size taken again, and it is
//! marked `ended_by_crash` so an editor knows it was not finalised (no duration or index in it). The manifest
//! is then `complete` (nothing will be written to it again) and is uploaded last, as after a clean end.

use super::manifest::{Manifest, MANIFEST};
use anyhow::{anyhow, Context, Result};
use gst::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How long reading one file's end may take (a demux of the whole file, far quicker than playing it).
const READ_TIMEOUT: gst::ClockTime = gst::ClockTime::from_seconds(60);

/// Completes the manifest of every tracks output under `tracks_dir` (a broadcast's `tracks/` folder) that was
/// left incomplete. Never fails: what it cannot read it leaves as it was, and says so in the log.
pub fn complete_left_open(tracks_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(tracks_dir) else {
        return;
    };
    for dir in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        match complete(&dir) {
            Ok(0) => {}
            Ok(n) => tracing::info!(dir = %dir.display(), "tracks manifest completed after a crash: {n} files"),
            Err(e) => tracing::warn!(dir = %dir.display(), "cannot complete the tracks manifest: {e:#}"),
        }
    }
}

/// Completes `dir`'s manifest if it is not complete; how many files it completed.
fn complete(dir: &Path) -> Result<usize> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut manifest: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))?;
    if manifest.complete {
        return Ok(0);
    }
    let mut completed = 0;
    // A file that failed while the server ran stopped then, not at the crash: it is left as the manifest has it.
    for file in manifest.files.iter_mut().filter(|f| !f.closed && !f.failed) {
        let on_disk = dir.join(&file.file);
        match media_end(&on_disk) {
            Ok(Some(end)) => file.end_ms = file.start_ms + end.mseconds(),
            // Nothing readable in it: its end stays where the manifest last put it.
            Ok(None) => tracing::warn!(path = %on_disk.display(), "no frame readable in a track file left by a crash"),
            Err(e) => tracing::warn!(path = %on_disk.display(), "cannot read a track file left by a crash: {e:#}"),
        }
        if let Ok(meta) = std::fs::metadata(&on_disk) {
            file.bytes = meta.len();
        }
        file.ended_by_crash = true;
        completed += 1;
    }
    manifest.complete = true;
    manifest
        .write(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(completed)
}

/// The end of the last frame in the Matroska/WebM file `path`, in the file's own time (its first frame is at 0):
/// the latest timestamp plus duration its demuxer gives. None when no frame can be read.
pub fn media_end(path: &Path) -> Result<Option<gst::ClockTime>> {
    let pipeline = gst::Pipeline::with_name("track-recovery");
    let src = crate::gst_util::make("filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let demux = crate::gst_util::make("matroskademux")?;
    let sink = crate::gst_util::make("fakesink")?;
    sink.set_property("sync", false);
    pipeline.add_many([&src, &demux, &sink])?;
    src.link(&demux)?;
    let sink_pad = sink
        .static_pad("sink")
        .ok_or_else(|| anyhow!("fakesink without a sink pad"))?;
    // The file has one track: its stream goes to the sink.
    demux.connect_pad_added(move |_, pad| {
        if !sink_pad.is_linked() {
            let _ = pad.link(&sink_pad);
        }
    });
    let end: Arc<Mutex<Option<gst::ClockTime>>> = Arc::default();
    let seen = end.clone();
    sink.static_pad("sink")
        .expect("checked above")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                if let Some(pts) = buffer.pts() {
                    let frame_end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                    let mut end = seen.lock().unwrap();
                    *end = Some(end.map_or(frame_end, |e| e.max(frame_end)));
                }
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing)?;
    // A file cut off mid-cluster ends in an error after its last whole frame: what came before counts.
    let _ = pipeline
        .bus()
        .and_then(|bus| bus.timed_pop_filtered(READ_TIMEOUT, &[gst::MessageType::Eos, gst::MessageType::Error]));
    let _ = pipeline.set_state(gst::State::Null);
    let end = *end.lock().unwrap();
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::super::manifest::{Manifest, TrackFile, MANIFEST};
    use gst::prelude::*;

    /// `seconds` of a VP8 test picture at 10 fps in WebM, cut off after `keep` bytes (a file a crash left).
    fn webm(path: &std::path::Path, seconds: u32, keep: Option<u64>) {
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc num-buffers={} ! video/x-raw,width=64,height=48,framerate=10/1 ! vp8enc ! webmmux ! \
             filesink name=out",
            seconds * 10
        ))
        .unwrap();
        pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("out")
            .unwrap()
            .set_property("location", path.to_str().unwrap());
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(20),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .unwrap();
        assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
        pipeline.set_state(gst::State::Null).unwrap();
        if let Some(keep) = keep {
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..keep as usize]).unwrap();
        }
    }

    fn entry(file: &str, closed: bool) -> TrackFile {
        TrackFile {
            file: file.into(),
            participant_id: "p_1".into(),
            name: "Ann".into(),
            appearance: 1,
            kind: "video".into(),
            codec: "vp8".into(),
            start_ms: 5000,
            end_ms: 5000,
            bytes: 1,
            closed,
            ended_by_crash: false,
            failed: false,
        }
    }

    /// The file being written gets its end from its own frames and is marked; a closed one, and one that failed
    /// while the server ran, are left as they were; the manifest is complete. A complete manifest is not touched
    /// again.
    #[test]
    fn a_manifest_left_by_a_crash_is_completed_from_the_files() {
        let _glib = crate::glib_watch::watch();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out_0");
        std::fs::create_dir(&dir).unwrap();
        webm(&dir.join("open.webm"), 3, None);
        let mut manifest = Manifest::new("out_0");
        manifest.record(entry("open.webm", false));
        manifest.record(entry("closed.webm", true));
        let failed = TrackFile {
            failed: true,
            ..entry("failed.webm", false)
        };
        webm(&dir.join("failed.webm"), 3, None);
        manifest.record(failed.clone());
        manifest.write(&dir).unwrap();
        super::complete_left_open(root.path());
        let read = |dir: &std::path::Path| -> Manifest {
            serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap()
        };
        let done = read(&dir);
        assert!(done.complete);
        // 30 frames of 100 ms: the last ends at 3 s.
        let open = &done.files[0];
        assert_eq!((open.end_ms, open.ended_by_crash), (8000, true), "{open:?}");
        assert_eq!(open.bytes, std::fs::metadata(dir.join("open.webm")).unwrap().len());
        assert_eq!(done.files[1], entry("closed.webm", true));
        assert_eq!(done.files[2], failed);
        // Completed once: a later start leaves it.
        let mut again = done.clone();
        again.files[0].end_ms = 1;
        again.write(&dir).unwrap();
        super::complete_left_open(root.path());
        assert_eq!(read(&dir), again);
    }

    /// A file cut off mid-cluster (never finalised) still gives the end of its last whole frame.
    #[test]
    fn a_cut_off_file_ends_at_its_last_whole_frame() {
        let _glib = crate::glib_watch::watch();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.webm");
        webm(&path, 4, None);
        let whole = std::fs::metadata(&path).unwrap().len();
        webm(&path, 4, Some(whole / 2));
        let end = super::media_end(&path).unwrap().expect("frames before the cut");
        assert!(
            end > gst::ClockTime::from_mseconds(500) && end < gst::ClockTime::from_mseconds(3900),
            "{end}"
        );
    }
}
