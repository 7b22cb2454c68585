//! One output's place in the hub: the two appsrcs it is fed through, and the pair that takes over from them at
//! a keyframe (a recording starting its next file with nothing lost or repeated between the two).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Track {
    Video,
    Audio,
}

/// An output's appsrcs (no video one in an audio-only broadcast).
pub struct FeedSources {
    pub video: Option<gst_app::AppSrc>,
    pub audio: gst_app::AppSrc,
}

impl FeedSources {
    pub(super) fn get(&self, track: Track) -> Option<&gst_app::AppSrc> {
        match track {
            Track::Video => self.video.as_ref(),
            Track::Audio => Some(&self.audio),
        }
    }

    pub(super) fn end(&self) {
        if let Some(video) = &self.video {
            let _ = video.end_of_stream();
        }
        let _ = self.audio.end_of_stream();
    }
}

/// Sources waiting to take over a feed at its first keyframe at or after `from_pts` (any keyframe: None). Without
/// video every AAC frame stands alone: the first audio buffer due is where they take over.
struct Successor {
    sources: FeedSources,
    from_pts: Option<gst::ClockTime>,
    /// Set once they took over (the old sources then got end-of-stream).
    took_over: Arc<AtomicBool>,
}

pub(super) struct Feed {
    pub id: u64,
    sources: FeedSources,
    /// Audio and video flow only from the first keyframe on, so every output starts decodable (at once when
    /// there is no video).
    started: bool,
    successor: Option<Successor>,
}

impl Feed {
    pub fn new(id: u64, sources: FeedSources, started: bool) -> Self {
        Self {
            id,
            sources,
            started,
            successor: None,
        }
    }

    /// Every appsrc of the feed, the waiting successor's too.
    fn all_sources(&self) -> impl Iterator<Item = &FeedSources> {
        std::iter::once(&self.sources).chain(self.successor.as_ref().map(|s| &s.sources))
    }

    pub fn set_caps(&self, track: Track, caps: &gst::Caps) {
        for src in self.all_sources().filter_map(|s| s.get(track)) {
            src.set_caps(Some(caps));
        }
    }

    /// Replaces a waiting successor, if any (its sources get end-of-stream: they never had anything).
    pub fn hand_over(&mut self, sources: FeedSources, from_pts: Option<gst::ClockTime>) -> Arc<AtomicBool> {
        let took_over = Arc::new(AtomicBool::new(false));
        if let Some(old) = self.successor.replace(Successor {
            sources,
            from_pts,
            took_over: took_over.clone(),
        }) {
            old.sources.end();
        }
        took_over
    }

    /// Pushes one buffer. At a video keyframe the successor, if due, takes over: the buffer and everything
    /// after it go to the successor, and the old sources end after what they had. Audio goes wherever video
    /// went last, so each audio buffer reaches exactly one of the two.
    pub fn deliver(&mut self, track: Track, buffer: &gst::Buffer) {
        let keyframe = match (track, &self.sources.video) {
            (Track::Video, _) => !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            (Track::Audio, video) => video.is_none(),
        };
        if keyframe {
            self.started = true;
            let due = self.successor.as_ref().is_some_and(|s| {
                s.from_pts
                    .is_none_or(|from| buffer.pts().is_some_and(|pts| pts >= from))
            });
            if due {
                let next = self.successor.take().expect("checked above");
                // Flagged first: whoever sees the old sources' end-of-stream can tell it from the feed's end.
                next.took_over.store(true, Ordering::Release);
                let old = std::mem::replace(&mut self.sources, next.sources);
                old.end();
            }
        }
        if !self.started {
            return;
        }
        // A full or stopped output drops its own data; the error is its runner's business.
        if let Some(src) = self.sources.get(track) {
            let _ = src.push_buffer(buffer.clone());
        }
    }

    /// End-of-stream to every appsrc (the broadcast drained).
    pub fn end(&self) {
        for sources in self.all_sources() {
            sources.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    /// `appsrc ! appsink` playing; the appsink is where a test counts what went through.
    fn sources() -> (FeedSources, [(gst::Pipeline, gst_app::AppSink); 2]) {
        let pair = || {
            let pipeline = gst::Pipeline::new();
            let src = gst_app::AppSrc::builder().format(gst::Format::Time).build();
            let sink = gst_app::AppSink::builder().sync(false).build();
            pipeline
                .add_many([src.upcast_ref::<gst::Element>(), sink.upcast_ref()])
                .unwrap();
            src.link(&sink).unwrap();
            pipeline.set_state(gst::State::Playing).unwrap();
            (src, (pipeline, sink))
        };
        let (video, v) = pair();
        let (audio, a) = pair();
        (
            FeedSources {
                video: Some(video),
                audio,
            },
            [v, a],
        )
    }

    /// The timestamps (ms) one appsink got before end-of-stream.
    fn received((pipeline, sink): &(gst::Pipeline, gst_app::AppSink)) -> Vec<u64> {
        let mut pts = Vec::new();
        while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
            pts.push(sample.buffer().and_then(|b| b.pts()).unwrap().mseconds());
        }
        assert!(sink.is_eos(), "no end-of-stream");
        pipeline.set_state(gst::State::Null).unwrap();
        pts
    }

    fn frame(pts_ms: u64, keyframe: bool) -> gst::Buffer {
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        if !keyframe {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        buffer
    }

    #[test]
    fn a_successor_takes_over_at_the_first_keyframe_due_and_nothing_is_lost_or_doubled() {
        gst::init().unwrap();
        let (first, [first_video, first_audio]) = sources();
        let mut feed = Feed::new(0, first, false);
        feed.deliver(Track::Video, &frame(0, false)); // Before any keyframe: not sent.
        feed.deliver(Track::Audio, &frame(0, true));
        feed.deliver(Track::Video, &frame(40, true));
        feed.deliver(Track::Audio, &frame(40, true));
        let (next, [next_video, next_audio]) = sources();
        let took_over = feed.hand_over(next, Some(gst::ClockTime::from_mseconds(1000)));
        feed.deliver(Track::Video, &frame(80, false));
        feed.deliver(Track::Video, &frame(500, true)); // A keyframe before `from_pts`: not yet.
        feed.deliver(Track::Audio, &frame(500, true));
        assert!(!took_over.load(Ordering::Acquire));
        feed.deliver(Track::Video, &frame(1000, true));
        assert!(took_over.load(Ordering::Acquire));
        feed.deliver(Track::Audio, &frame(1000, true));
        feed.deliver(Track::Video, &frame(1040, false));
        feed.end();
        assert_eq!(received(&first_video), [40, 80, 500]);
        assert_eq!(received(&first_audio), [40, 500]);
        assert_eq!(received(&next_video), [1000, 1040]);
        assert_eq!(received(&next_audio), [1000]);
    }

    #[test]
    fn without_video_a_successor_takes_over_at_the_first_audio_buffer_due() {
        gst::init().unwrap();
        let (first, [_, first_audio]) = sources();
        let audio_only = |s: FeedSources| FeedSources { video: None, ..s };
        let mut feed = Feed::new(0, audio_only(first), true);
        feed.deliver(Track::Audio, &frame(0, true));
        let (next, [_, next_audio]) = sources();
        let took_over = feed.hand_over(audio_only(next), Some(gst::ClockTime::from_mseconds(40)));
        feed.deliver(Track::Audio, &frame(21, true));
        feed.deliver(Track::Audio, &frame(42, true));
        feed.deliver(Track::Audio, &frame(64, true));
        feed.end();
        assert!(took_over.load(Ordering::Acquire));
        assert_eq!(received(&first_audio), [0, 21]);
        assert_eq!(received(&next_audio), [42, 64]);
    }

    #[test]
    fn a_successor_that_never_took_over_ends_with_the_feed() {
        gst::init().unwrap();
        let (first, [first_video, _first_audio]) = sources();
        let mut feed = Feed::new(0, first, false);
        feed.deliver(Track::Video, &frame(0, true));
        let (next, [next_video, next_audio]) = sources();
        let took_over = feed.hand_over(next, Some(gst::ClockTime::from_seconds(10)));
        feed.deliver(Track::Video, &frame(40, true));
        feed.end();
        assert!(!took_over.load(Ordering::Acquire));
        assert_eq!(received(&first_video), [0, 40]);
        assert_eq!(received(&next_video), Vec::<u64>::new());
        assert_eq!(received(&next_audio), Vec::<u64>::new());
    }
}
