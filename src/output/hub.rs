//! The encoded stream leaves the mixer through two appsinks (H.264, AAC) and is handed to every output's own
//! pipeline. An output that joins late (or reconnects) starts at the next keyframe; one that stalls drops its own
//! data and never holds back the others. The video is the mixer's encode, or one participant's H.264 forwarded
//! as is (`VideoSwitch` decides which, frame by frame).

use super::feed::{Feed, FeedSources, Track};
use super::video_switch::{Action, Source, VideoSwitch};
use crate::call::encoded_tap::EncodedSubscription;
use crate::call::participant::Participant;
use crate::call::timeline;
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;

/// The mixer's encoded video: where its frames come from and how to steer its encoder.
struct MixerVideo {
    sink: gst_app::AppSink,
    /// Off while a participant's video is forwarded instead: the encoder then gets no frames and costs nothing.
    encoding: Arc<AtomicBool>,
}

struct HubState {
    switch: VideoSwitch,
    mixer_video: Option<MixerVideo>,
    /// Participants whose H.264 the hub listens to (the one forwarded, the one being switched to).
    passthrough: Vec<(Arc<Participant>, EncodedSubscription)>,
    feeds: Vec<Feed>,
    next_id: u64,
    /// The broadcast has no video: the mixer's AAC alone goes out.
    audio_only: bool,
    video_caps: Option<gst::Caps>,
    audio_caps: Option<gst::Caps>,
    video_eos: bool,
    audio_eos: bool,
    /// Running time of the last video frame, to see holes in the output's timeline.
    last_video_pts: Option<gst::ClockTime>,
    /// The outputs' timeline at the broadcast's first video frame (where a recording started with it begins).
    first_video_pts: Option<gst::ClockTime>,
    /// The mixer's base time, kept once known: participants' media are placed on the outputs' timeline with it.
    mixer_base_time: Option<gst::ClockTime>,
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
    /// True once the first media outputs can start from went out (a video frame; AAC when audio-only).
    on_air: Arc<watch::Sender<bool>>,
}

/// The hub as the mixer's appsinks and the participants' H.264 taps hold it: weakly, as the hub holds the video
/// appsink and the subscriptions (strong references both ways would keep every broadcast's hub, appsink and
/// buffered frames alive for good). Upgrading fails once the broadcast let go of its hub.
#[derive(Clone)]
struct WeakHub {
    state: Weak<Mutex<HubState>>,
    frames: Arc<watch::Sender<u64>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    drained: Arc<watch::Sender<bool>>,
    on_air: Arc<watch::Sender<bool>>,
}

impl WeakHub {
    fn upgrade(&self) -> Option<EncodedHub> {
        Some(EncodedHub {
            state: self.state.upgrade()?,
            frames: self.frames.clone(),
            dropped: self.dropped.clone(),
            drained: self.drained.clone(),
            on_air: self.on_air.clone(),
        })
    }
}

/// Removes its feed from the hub when dropped.
pub struct FeedHandle {
    hub: EncodedHub,
    id: u64,
}

impl FeedHandle {
    /// `sources` take over this feed at its first keyframe at or after `from_pts` (the next one: None); the
    /// current sources then get end-of-stream after everything before that keyframe. The flag turns true then.
    /// A later call replaces a successor still waiting.
    pub fn hand_over(&self, sources: FeedSources, from_pts: Option<gst::ClockTime>) -> Arc<AtomicBool> {
        let mut state = self.hub.state.lock().unwrap();
        for (track, caps) in [(Track::Video, &state.video_caps), (Track::Audio, &state.audio_caps)] {
            if let (Some(caps), Some(src)) = (caps, sources.get(track)) {
                src.set_caps(Some(caps));
            }
        }
        match state.feeds.iter_mut().find(|f| f.id == self.id) {
            Some(feed) => feed.hand_over(sources, from_pts),
            None => {
                // The hub already finished: the successor ends at once, having had nothing.
                sources.end();
                Arc::default()
            }
        }
    }
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.hub.state.lock().unwrap().feeds.retain(|f| f.id != self.id);
    }
}

impl HubState {
    fn new(keyframe_interval: gst::ClockTime) -> Self {
        Self {
            switch: VideoSwitch::new(keyframe_interval),
            mixer_video: None,
            passthrough: Vec::new(),
            feeds: Vec::new(),
            next_id: 0,
            audio_only: false,
            video_caps: None,
            audio_caps: None,
            video_eos: false,
            audio_eos: false,
            last_video_pts: None,
            first_video_pts: None,
            mixer_base_time: None,
            last_video_at_ms: 0,
        }
    }
}

impl EncodedHub {
    /// `keyframe_interval`: how often a forwarded participant is asked for a keyframe.
    pub fn new(keyframe_interval: gst::ClockTime) -> Self {
        Self {
            state: Arc::new(Mutex::new(HubState::new(keyframe_interval))),
            frames: Arc::new(watch::channel(0).0),
            dropped: Arc::default(),
            drained: Arc::new(watch::channel(false).0),
            on_air: Arc::new(watch::channel(false).0),
        }
    }

    fn downgrade(&self) -> WeakHub {
        WeakHub {
            state: Arc::downgrade(&self.state),
            frames: self.frames.clone(),
            dropped: self.dropped.clone(),
            drained: self.drained.clone(),
            on_air: self.on_air.clone(),
        }
    }

    pub fn frames(&self) -> watch::Receiver<u64> {
        self.frames.subscribe()
    }

    /// Turns true once the broadcast's first media went out (what makes it `live`).
    pub fn on_air(&self) -> watch::Receiver<bool> {
        self.on_air.subscribe()
    }

    /// True for an audio-only broadcast's hub: its outputs get no video track.
    pub fn is_audio_only(&self) -> bool {
        self.state.lock().unwrap().audio_only
    }

    /// The outputs' timeline (seconds of video timestamps) and the wall-clock ms it reached that point at.
    pub fn timeline(&self) -> Option<(f64, u64)> {
        let state = self.state.lock().unwrap();
        let pts = state.last_video_pts?;
        Some((pts.nseconds() as f64 / 1e9, state.last_video_at_ms))
    }

    /// The outputs' timeline at the broadcast's first video frame; None before it.
    pub fn first_frame(&self) -> Option<gst::ClockTime> {
        self.state.lock().unwrap().first_video_pts
    }

    /// The mixer's base time (the outputs' timeline is its running time); None until it started.
    pub fn mixer_base_time(&self) -> Option<gst::ClockTime> {
        let mut state = self.state.lock().unwrap();
        if state.mixer_base_time.is_none() {
            // Zero until the mixer is PLAYING (a real base time is the monotonic clock's, never zero).
            state.mixer_base_time = state
                .mixer_video
                .as_ref()
                .and_then(|m| m.sink.base_time())
                .filter(|t| !t.is_zero());
        }
        state.mixer_base_time
    }

    pub fn frames_dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True once both tracks reached end-of-stream and every feed was told.
    pub fn drained(&self) -> watch::Receiver<bool> {
        self.drained.subscribe()
    }

    /// Takes the mixer's encoded appsinks as input; `encoding` switches the mixer's video encode on and off.
    pub fn attach(&self, video: &gst_app::AppSink, audio: &gst_app::AppSink, encoding: Arc<AtomicBool>) {
        self.state.lock().unwrap().mixer_video = Some(MixerVideo {
            sink: video.clone(),
            encoding,
        });
        self.listen(video, Track::Video);
        self.listen(audio, Track::Audio);
    }

    /// Takes an audio-only mixer's encoded appsink as the only input: outputs start at once, with no video.
    /// Call before any feed is added.
    pub fn attach_audio_only(&self, audio: &gst_app::AppSink) {
        {
            let mut state = self.state.lock().unwrap();
            state.audio_only = true;
            // No video track will ever end: the audio's end is the end.
            state.video_eos = true;
        }
        self.listen(audio, Track::Audio);
    }

    /// Hands each sample of one of the mixer's appsinks to the outputs, and its end-of-stream to `track_eos`.
    fn listen(&self, sink: &gst_app::AppSink, track: Track) {
        let hub = self.downgrade();
        let hub_eos = hub.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    // No hub: the broadcast is over and its mixer on its way down.
                    let Some(hub) = hub.upgrade() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    match track {
                        Track::Video => hub.push_mixer_video(&sample),
                        Track::Audio => hub.push(Track::Audio, &sample),
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| {
                    if let Some(hub) = hub_eos.upgrade() {
                        hub.track_eos(track);
                    }
                })
                .build(),
        );
    }

    /// Registers an output's appsrcs (no video one for an audio-only broadcast).
    pub fn add_feed(&self, video: Option<gst_app::AppSrc>, audio: gst_app::AppSrc) -> FeedHandle {
        let mut state = self.state.lock().unwrap();
        if let (Some(caps), Some(video)) = (&state.video_caps, &video) {
            video.set_caps(Some(caps));
        }
        if let Some(caps) = &state.audio_caps {
            audio.set_caps(Some(caps));
        }
        let id = state.next_id;
        state.next_id += 1;
        let started = state.audio_only;
        state.feeds.push(Feed::new(id, FeedSources { video, audio }, started));
        FeedHandle { hub: self.clone(), id }
    }

    /// The participant whose video is forwarded as is now, if any.
    pub fn passthrough(&self) -> Option<String> {
        match self.state.lock().unwrap().switch.current() {
            Source::Participant(id) => Some(id.clone()),
            Source::Mixer => None,
        }
    }

    /// Switches the outputs' video to `participant`'s H.264 as is, or back to the mixer's encode (`None`). The
    /// switch happens at a keyframe a moment later; until then the outputs get the current source.
    pub fn set_video_source(&self, participant: Option<Arc<Participant>>) {
        let source = participant
            .as_ref()
            .map_or(Source::Mixer, |p| Source::Participant(p.id.clone()));
        let mut state = self.state.lock().unwrap();
        if let Some(p) = participant {
            if !state.passthrough.iter().any(|(q, _)| q.id == p.id) {
                let hub = self.downgrade();
                let id = p.id.clone();
                let subscription = p.h264.subscribe(Box::new(move |buffer, caps| {
                    if let Some(hub) = hub.upgrade() {
                        hub.push_participant_video(&id, buffer, caps);
                    }
                }));
                state.passthrough.push((p, subscription));
            }
        }
        let actions = state.switch.switch_to(source, crate::wall_clock::now_ms());
        self.settle(state, actions);
    }

    /// The longest the video on air goes between keyframes: the mixer's encoder makes one this often, and a
    /// forwarded participant is asked for one as often.
    pub fn keyframe_interval(&self) -> gst::ClockTime {
        self.state.lock().unwrap().switch.keyframe_interval()
    }

    /// Asks the video on air for a keyframe now (a WHEP viewer joined or lost a picture): the mixer's encoder, or
    /// the forwarded participant. Callers rate-limit.
    pub fn request_keyframe(&self) {
        let state = self.state.lock().unwrap();
        let action = match state.switch.current() {
            Source::Mixer => Action::MixerKeyframe(None),
            Source::Participant(id) => Action::ParticipantKeyframe(id.clone()),
        };
        self.settle(state, vec![action]);
    }

    fn push_mixer_video(&self, sample: &gst::Sample) {
        let (Some(buffer), Some(caps)) = (timeline::mixer_video_to_output(sample), sample.caps()) else {
            return;
        };
        self.offer_video(&Source::Mixer, buffer, &caps.to_owned());
    }

    /// A participant's access unit, stamped in clock time: moved onto the outputs' timeline like the mixer's.
    fn push_participant_video(&self, id: &str, mut buffer: gst::Buffer, caps: &gst::Caps) {
        let base_time = {
            let state = self.state.lock().unwrap();
            state.mixer_video.as_ref().and_then(|m| m.sink.base_time())
        };
        let (Some(base_time), Some(pts)) = (base_time, buffer.pts()) else {
            return;
        };
        let Some(pts) = timeline::participant_video_to_output(pts, base_time) else {
            return;
        };
        {
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_dts(pts);
        }
        self.offer_video(&Source::Participant(id.to_string()), buffer, caps);
    }

    fn offer_video(&self, from: &Source, buffer: gst::Buffer, caps: &gst::Caps) {
        let mut state = self.state.lock().unwrap();
        let changes = state.switch.changes();
        let outcome = state.switch.offer(from, buffer, caps, crate::wall_clock::now_ms());
        let moved = state.switch.changes() != changes;
        if moved && state.switch.next().is_none() {
            match state.switch.current() {
                Source::Mixer => tracing::info!("video on air: the mixer's encode"),
                Source::Participant(id) => {
                    tracing::info!(participant_id = %id, "video on air: the participant's own H.264")
                }
            }
        }
        for (buffer, caps) in outcome.forward {
            self.deliver(&mut state, Track::Video, buffer, Some(&caps));
        }
        // Most frames change nothing: no bookkeeping for them.
        if moved || !outcome.actions.is_empty() {
            self.settle(state, outcome.actions);
        }
    }

    /// After a switch moved: the mixer's encode runs only when needed, participants nobody forwards are let go,
    /// and keyframe requests are sent (outside the lock: they travel up other pipelines).
    fn settle(&self, mut state: std::sync::MutexGuard<'_, HubState>, actions: Vec<Action>) {
        if let Some(mixer) = &state.mixer_video {
            mixer.encoding.store(state.switch.mixer_needed(), Ordering::Relaxed);
        }
        let keep: Vec<String> = [Some(state.switch.current()), state.switch.next()]
            .into_iter()
            .flatten()
            .filter_map(|s| match s {
                Source::Participant(id) => Some(id.clone()),
                Source::Mixer => None,
            })
            .collect();
        let released: Vec<_> = {
            let (kept, released) = std::mem::take(&mut state.passthrough)
                .into_iter()
                .partition(|(p, _)| keep.contains(&p.id));
            state.passthrough = kept;
            released
        };
        let participants: Vec<Arc<Participant>> = state.passthrough.iter().map(|(p, _)| p.clone()).collect();
        let encoder_pad = state.mixer_video.as_ref().and_then(|m| m.sink.static_pad("sink"));
        drop(state);
        // Dropping a subscription takes the participant tap's lock: not under ours.
        drop(released);
        for action in actions {
            match action {
                Action::ParticipantKeyframe(id) => {
                    if let Some(p) = participants.iter().find(|p| p.id == id) {
                        p.h264.request_keyframe();
                    }
                }
                Action::MixerKeyframe(at) => {
                    let mut request = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true);
                    if let Some(at) = at {
                        request = request.running_time(timeline::output_video_to_mixer(at));
                    }
                    if let Some(pad) = &encoder_pad {
                        pad.push_event(request.build());
                    }
                }
            }
        }
    }

    /// The mixer's encoded audio (video goes through the switch, `push_mixer_video`).
    fn push(&self, track: Track, sample: &gst::Sample) {
        let Some(buffer) = timeline::mixer_audio_to_output(sample) else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        self.deliver(&mut state, track, buffer, sample.caps());
    }

    /// Hands one buffer of `track` to every feed.
    fn deliver(&self, state: &mut HubState, track: Track, buffer: gst::Buffer, caps: Option<&gst::CapsRef>) {
        if let Some(caps) = caps {
            let known = match track {
                Track::Video => &state.video_caps,
                Track::Audio => &state.audio_caps,
            };
            // The same caps object frame after frame (the pad's): a pointer check spares the field-by-field
            // comparison on every frame.
            let same = known
                .as_ref()
                .is_some_and(|k| k.as_ptr() == caps.as_ptr() || k.as_ref() == caps);
            if !same {
                let caps = caps.to_owned();
                for feed in &state.feeds {
                    feed.set_caps(track, &caps);
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
            if state.first_video_pts.is_none() {
                state.first_video_pts = buffer.pts();
            }
            state.last_video_at_ms = crate::wall_clock::now_ms();
        }
        for feed in state.feeds.iter_mut() {
            feed.deliver(track, &buffer);
        }
        if track == Track::Video {
            self.frames.send_modify(|n| *n += 1);
        }
        if track == Track::Video || state.audio_only {
            self.on_air.send_if_modified(|on| !std::mem::replace(on, true));
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

    /// Ends every feed: each output finalises (HLS end list, RTMP close) after what it already has. The hub then
    /// lets go of everything it was handed (the mixer's appsink, the participants, the outputs' appsrcs): nothing
    /// more comes through it.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap();
        let released = std::mem::take(&mut state.passthrough);
        let feeds = std::mem::take(&mut state.feeds);
        for feed in &feeds {
            feed.end();
        }
        let mixer_video = state.mixer_video.take();
        drop(state);
        // Dropping a subscription takes the participant tap's lock: not under ours.
        drop((released, feeds, mixer_video));
        self.drained.send_replace(true);
    }
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

#[cfg(test)]
mod tests {
    use super::{missing_frames, EncodedHub};
    use gst::prelude::*;

    fn frame(pts_ms: u64) -> gst::Buffer {
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().expect("new buffer");
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        b.set_duration(gst::ClockTime::from_nseconds(33_333_333));
        buffer
    }

    #[test]
    fn holes_in_the_timeline_count_as_dropped_frames() {
        let _glib = crate::glib_watch::watch();
        let ms = gst::ClockTime::from_mseconds;
        assert_eq!(missing_frames(None, &frame(0)), 0);
        assert_eq!(missing_frames(Some(ms(0)), &frame(33)), 0, "next frame, a little early");
        assert_eq!(missing_frames(Some(ms(0)), &frame(34)), 0, "next frame, a little late");
        assert_eq!(missing_frames(Some(ms(0)), &frame(67)), 1);
        assert_eq!(missing_frames(Some(ms(100)), &frame(200)), 2);
        assert_eq!(missing_frames(Some(ms(100)), &frame(100)), 0, "same time");
    }

    /// The appsinks' callbacks do not keep the hub alive (it holds the video appsink): once the broadcast drops
    /// its hub, the hub and what it holds are freed.
    #[test]
    fn the_mixer_appsinks_do_not_keep_the_hub() {
        let _glib = crate::glib_watch::watch();
        let video = gst_app::AppSink::builder().build();
        let audio = gst_app::AppSink::builder().build();
        let hub = EncodedHub::new(gst::ClockTime::from_seconds(1));
        hub.attach(&video, &audio, std::sync::Arc::default());
        let state = std::sync::Arc::downgrade(&hub.state);
        drop(hub);
        assert!(state.upgrade().is_none(), "the hub outlived the broadcast");
        assert_eq!(video.ref_count(), 1, "the hub still holds the mixer's appsink");
    }
}
