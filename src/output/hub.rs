//! The encoded stream leaves the mixer through two appsinks (H.264, AAC) and is handed to every output's own
//! pipeline. An output that joins late (or reconnects) starts at the next keyframe; one that stalls drops its own
//! data and never holds back the others.

use std::sync::{Arc, Mutex};
use tokio::sync::watch;

struct Feed {
    id: u64,
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
    /// Audio and video flow only from the first keyframe on, so every output starts decodable.
    started: bool,
}

#[derive(Default)]
struct HubState {
    feeds: Vec<Feed>,
    next_id: u64,
    video_caps: Option<gst::Caps>,
    audio_caps: Option<gst::Caps>,
    video_eos: bool,
    audio_eos: bool,
    /// Running time of the last video frame, to see holes in the output's timeline.
    last_video_pts: Option<gst::ClockTime>,
    /// The last video frame's timestamp and the wall-clock ms it was handed out at: how the outputs' timeline
    /// keeps to the wall clock.
    last_video_at_ms: u64,
}

/// Hands encoded media to outputs.
#[derive(Clone)]
pub struct EncodedHub {
    state: Arc<Mutex<HubState>>,
    /// Number of video frames encoded so far; watchers learn when the broadcast is on air and when it drained.
    frames: Arc<watch::Sender<u64>>,
    /// Frames missing from the output's timeline (a hole of N frame durations between two frames is N-1).
    dropped: Arc<std::sync::atomic::AtomicU64>,
    drained: Arc<watch::Sender<bool>>,
}

/// Removes its feed from the hub when dropped.
pub struct FeedHandle {
    hub: EncodedHub,
    id: u64,
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.hub.state.lock().unwrap().feeds.retain(|f| f.id != self.id);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Track {
    Video,
    Audio,
}

impl EncodedHub {
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            frames: Arc::new(watch::channel(0).0),
            dropped: Arc::default(),
            drained: Arc::new(watch::channel(false).0),
        }
    }

    pub fn frames(&self) -> watch::Receiver<u64> {
        self.frames.subscribe()
    }

    /// The outputs' timeline (seconds of video timestamps) and the wall-clock ms it reached that point at.
    pub fn timeline(&self) -> Option<(f64, u64)> {
        let state = self.state.lock().unwrap();
        let pts = state.last_video_pts?;
        Some((pts.nseconds() as f64 / 1e9, state.last_video_at_ms))
    }

    pub fn frames_dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True once both tracks reached end-of-stream and every feed was told.
    pub fn drained(&self) -> watch::Receiver<bool> {
        self.drained.subscribe()
    }

    /// Takes the mixer's encoded appsinks as input.
    pub fn attach(&self, video: &gst_app::AppSink, audio: &gst_app::AppSink) {
        for (sink, track) in [(video, Track::Video), (audio, Track::Audio)] {
            let hub = self.clone();
            let hub_eos = self.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        hub.push(track, &sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .eos(move |_| hub_eos.track_eos(track))
                    .build(),
            );
        }
    }

    /// Registers an output's two appsrcs.
    pub fn add_feed(&self, video: gst_app::AppSrc, audio: gst_app::AppSrc) -> FeedHandle {
        let mut state = self.state.lock().unwrap();
        if let Some(caps) = &state.video_caps {
            video.set_caps(Some(caps));
        }
        if let Some(caps) = &state.audio_caps {
            audio.set_caps(Some(caps));
        }
        let id = state.next_id;
        state.next_id += 1;
        state.feeds.push(Feed {
            id,
            video,
            audio,
            started: false,
        });
        FeedHandle { hub: self.clone(), id }
    }

    fn push(&self, track: Track, sample: &gst::Sample) {
        let delay = match track {
            Track::Video => AAC_ENCODER_DELAY,
            Track::Audio => gst::ClockTime::ZERO,
        };
        let Some(buffer) = running_time_buffer(sample, delay) else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        if let Some(caps) = sample.caps() {
            let known = match track {
                Track::Video => &state.video_caps,
                Track::Audio => &state.audio_caps,
            };
            if known.as_ref().map(|c| c.as_ref()) != Some(caps) {
                let caps = caps.to_owned();
                for feed in &state.feeds {
                    let src = if track == Track::Video {
                        &feed.video
                    } else {
                        &feed.audio
                    };
                    src.set_caps(Some(&caps));
                }
                *match track {
                    Track::Video => &mut state.video_caps,
                    Track::Audio => &mut state.audio_caps,
                } = Some(caps);
            }
        }
        if track == Track::Video {
            let missing = missing_frames(state.last_video_pts, &buffer);
            if missing > 0 {
                self.dropped.fetch_add(missing, std::sync::atomic::Ordering::Relaxed);
            }
            state.last_video_pts = buffer.pts();
            state.last_video_at_ms = crate::call::tap::now_ms();
        }
        let keyframe = track == Track::Video && !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        for feed in &mut state.feeds {
            if keyframe {
                feed.started = true;
            }
            if !feed.started {
                continue;
            }
            let src = if track == Track::Video {
                &feed.video
            } else {
                &feed.audio
            };
            // A full or stopped output drops its own data; the error is its runner's business.
            let _ = src.push_buffer(buffer.clone());
        }
        drop(state);
        if track == Track::Video {
            self.frames.send_modify(|n| *n += 1);
        }
    }

    fn track_eos(&self, track: Track) {
        // Expected when the broadcast stops; at any other time this is why its outputs went quiet.
        tracing::info!(video = (track == Track::Video), "the mixer's encoded track ended");
        let mut state = self.state.lock().unwrap();
        match track {
            Track::Video => state.video_eos = true,
            Track::Audio => state.audio_eos = true,
        }
        if state.video_eos && state.audio_eos {
            drop(state);
            self.finish();
        }
    }

    /// Ends every feed: each output finalises (HLS end list, RTMP close) after what it already has.
    pub fn finish(&self) {
        let state = self.state.lock().unwrap();
        for feed in &state.feeds {
            let _ = feed.video.end_of_stream();
            let _ = feed.audio.end_of_stream();
        }
        drop(state);
        self.drained.send_replace(true);
    }
}

/// The AAC encoder (avenc_aac) starts its output with 1024 samples of priming that decoders play, and stamps
/// its frames as if there were none: every sound comes out 1024 samples (21.3 ms at 48 kHz) after its timestamp.
/// Video is stamped that much later to match (audio cannot move earlier than the start of the timeline).
const AAC_ENCODER_DELAY: gst::ClockTime = gst::ClockTime::from_nseconds(1024 * 1_000_000_000 / 48_000);

/// The sample's buffer with timestamps in running time plus `delay`: every output's timeline starts where the
/// mixer's does, whatever segment the encoder used (x264enc starts at 1000 h).
fn running_time_buffer(sample: &gst::Sample, delay: gst::ClockTime) -> Option<gst::Buffer> {
    let buffer = sample.buffer_owned()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let pts = segment.to_running_time(buffer.pts()?)? + delay;
    let dts = buffer
        .dts()
        .and_then(|dts| segment.to_running_time(dts))
        .map_or(pts, |dts| dts + delay);
    let mut buffer = buffer;
    {
        let b = buffer.make_mut();
        b.set_pts(pts);
        b.set_dts(dts);
    }
    Some(buffer)
}

/// Frames that should have come between the previous frame (at `last`) and `buffer`, by its duration.
fn missing_frames(last: Option<gst::ClockTime>, buffer: &gst::BufferRef) -> u64 {
    let (Some(last), Some(pts), Some(duration)) = (last, buffer.pts(), buffer.duration()) else {
        return 0;
    };
    if duration.is_zero() || pts <= last {
        return 0;
    }
    // Rounded: timestamps jitter by a nanosecond or so around the frame grid.
    let frames = (pts - last).nseconds().saturating_add(duration.nseconds() / 2) / duration.nseconds();
    frames.saturating_sub(1)
}

impl Default for EncodedHub {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::missing_frames;

    fn frame(pts_ms: u64) -> gst::Buffer {
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().expect("new buffer");
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        b.set_duration(gst::ClockTime::from_nseconds(33_333_333));
        buffer
    }

    #[test]
    fn holes_in_the_timeline_count_as_dropped_frames() {
        gst::init().expect("gst");
        let ms = gst::ClockTime::from_mseconds;
        assert_eq!(missing_frames(None, &frame(0)), 0);
        assert_eq!(missing_frames(Some(ms(0)), &frame(33)), 0, "next frame, a little early");
        assert_eq!(missing_frames(Some(ms(0)), &frame(34)), 0, "next frame, a little late");
        assert_eq!(missing_frames(Some(ms(0)), &frame(67)), 1);
        assert_eq!(missing_frames(Some(ms(100)), &frame(200)), 2);
        assert_eq!(missing_frames(Some(ms(100)), &frame(100)), 0, "same time");
    }
}
