//! A recording's next file: opened a moment before the current one is due to end, fed from the same hub feed
//! from the keyframe where the current one ends (`FeedHandle::hand_over`), so the parts follow one another with
//! no frame or audio buffer lost or written twice.

use super::hub::FeedHandle;
use super::record::{Recording, Split};
use super::OutputPipeline;
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The next file is opened this long before the current one is due to end (its runner looks once a second).
const OPEN_AHEAD: Duration = Duration::from_secs(2);

/// The next file, playing, waiting for its keyframe.
pub struct NextPart {
    pub output: OutputPipeline,
    pub bus: gst::bus::BusStream,
    pub took_over: Arc<AtomicBool>,
}

/// Whether the file being written should get a successor now, and from which timestamp it takes over
/// (None: the next keyframe). Length counts from the file's first frame; size is the media written into it.
pub fn due(split: &Split, recording: &Recording) -> Option<Option<gst::ClockTime>> {
    let first = recording.first_pts()?;
    if split.bytes.is_some_and(|max| recording.media_bytes() >= max) {
        return Some(None);
    }
    let length = split.part_length();
    let written = Duration::from_millis(recording.duration_ms());
    (written + OPEN_AHEAD >= length).then(|| Some(first + gst::ClockTime::from_nseconds(length.as_nanos() as u64)))
}

impl NextPart {
    /// Starts `output` (off the async threads: a state change may block) and hands the feed over to it.
    pub async fn start(
        output: OutputPipeline,
        feed: &FeedHandle,
        from_pts: Option<gst::ClockTime>,
    ) -> anyhow::Result<Self> {
        let bus = output.pipeline.bus().expect("pipeline has a bus").stream();
        let pipeline = output.pipeline.clone();
        let started = tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Playing))
            .await
            .unwrap_or(Err(gst::StateChangeError));
        if let Err(err) = started {
            discard(&output);
            anyhow::bail!("starting the next file: {err}");
        }
        let took_over = feed.hand_over(
            super::feed::FeedSources {
                video: output.video.clone(),
                audio: output.audio.clone(),
            },
            from_pts,
        );
        Ok(Self { output, bus, took_over })
    }

    /// True once the hub feeds this part (the one before it then got end-of-stream).
    pub fn took_over(&self) -> bool {
        self.took_over.load(Ordering::Acquire)
    }

    /// Stops a part that never took over, and removes its file (it has nothing in it).
    pub fn discard(self) {
        discard(&self.output);
    }
}

fn discard(output: &OutputPipeline) {
    let _ = output.pipeline.set_state(gst::State::Null);
    if let Some(recording) = &output.recording {
        if recording.first_pts().is_none() {
            let _ = std::fs::remove_file(&recording.path);
        }
    }
}
