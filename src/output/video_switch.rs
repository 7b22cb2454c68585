//! Chooses which encoded video the outputs get: the mixer's encode, or one participant's H.264 forwarded as is
//! (zero-transcode). A switch happens at a keyframe of the new source, at a point in the timeline both sources
//! reach, so the outputs see one continuous stream: no gap, no step back in time, decodable throughout.
//!
//! The mixer's frames reach the outputs later than a participant's (the mixer waits for its inputs), so:
//! - to a participant: its first keyframe sets the cut; its frames wait in a queue until the mixer's encode
//!   reaches the cut;
//! - back to the mixer: the participant's next keyframe (the one their decoder restarts on) sets the cut, and the
//!   mixer's encoder is asked for a keyframe at exactly that time.

use gst::ClockTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Mixer,
    Participant(String),
}

/// What the hub does on the switch's behalf, outside its lock.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// A keyframe from the mixer's encoder: at this output time, or as soon as possible.
    MixerKeyframe(Option<ClockTime>),
    /// A keyframe from this participant's sender (PLI).
    ParticipantKeyframe(String),
}

/// A source stalled this long is given up on.
const STALL_MS: u64 = 300;
/// A participant that sends no keyframe this long after the switch was asked for is not switched to.
const GIVE_UP_MS: u64 = 2000;
/// Keyframe requests are repeated this often until one comes (a request can be lost).
const REPEAT_REQUEST_MS: u64 = 500;
/// At most this many frames wait for the switch (3 s at 30 fps): beyond, the switch happens regardless.
const MAX_QUEUE: usize = 90;
/// Keyframes are asked for this much before the interval ends, as one takes a round trip to come.
const REQUEST_AHEAD: ClockTime = ClockTime::from_mseconds(60);
/// Frames handed out are at least this far apart: outputs with millisecond timestamps (RTMP's FLV) would give
/// two frames closer than that the same time, the old source's last frame and the new one's first at a switch.
const MIN_SPACING: ClockTime = ClockTime::from_mseconds(1);
/// A keyframe of the current source this close before the cut is not handed out (the switch happens before it):
/// it would start a GOP, and an HLS segment, only a frame or two long, which ffmpeg cannot even identify the codec
/// of (seen: a segment holding the mixer's keyframe alone, 28 ms before a participant's).
const SHORT_GOP: ClockTime = ClockTime::from_mseconds(150);

struct Pending {
    source: Source,
    /// The first output time that comes from the new source.
    cut: Option<ClockTime>,
    /// The current source delivered up to the cut (or stalled): nothing more is taken from it.
    current_done: bool,
    queue: Vec<(gst::Buffer, gst::Caps)>,
    since_ms: u64,
    asked_ms: u64,
}

pub struct VideoSwitch {
    current: Source,
    next: Option<Pending>,
    /// Output time of the last frame handed out.
    last_pts: Option<ClockTime>,
    current_seen_ms: u64,
    keyframe_interval: ClockTime,
    last_keyframe_pts: Option<ClockTime>,
    keyframe_asked_ms: u64,
    /// Counts changes of the current or next source, so the hub can tell cheaply, per frame, that nothing moved.
    changes: u64,
    /// The current source's frames from a keyframe that came while a switch waits for its cut: held up to
    /// `SHORT_GOP`, in case the cut comes that soon after it (see `settle_held`).
    held: Vec<(gst::Buffer, gst::Caps)>,
}

/// Frames to hand to the outputs and things to do, from one offered frame.
#[derive(Default)]
pub struct Outcome {
    pub forward: Vec<(gst::Buffer, gst::Caps)>,
    pub actions: Vec<Action>,
}

fn is_keyframe(buffer: &gst::BufferRef) -> bool {
    !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
}

impl VideoSwitch {
    pub fn new(keyframe_interval: ClockTime) -> Self {
        Self {
            current: Source::Mixer,
            next: None,
            last_pts: None,
            current_seen_ms: 0,
            keyframe_interval,
            last_keyframe_pts: None,
            keyframe_asked_ms: 0,
            changes: 0,
            held: Vec::new(),
        }
    }

    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn keyframe_interval(&self) -> ClockTime {
        self.keyframe_interval
    }

    pub fn current(&self) -> &Source {
        &self.current
    }

    /// The source being switched to, if a switch is under way.
    pub fn next(&self) -> Option<&Source> {
        self.next.as_ref().map(|p| &p.source)
    }

    /// True while the mixer's encode is (or is about to be) on air: otherwise it need not run.
    pub fn mixer_needed(&self) -> bool {
        self.current == Source::Mixer || self.next() == Some(&Source::Mixer)
    }

    /// Starts switching to `source` (or cancels a switch when it is already the current one).
    pub fn switch_to(&mut self, source: Source, now_ms: u64) -> Vec<Action> {
        if source == self.current {
            if self.next.take().is_some() {
                self.changes += 1;
            }
            return Vec::new();
        }
        if self.next() == Some(&source) {
            return Vec::new();
        }
        // Back to the mixer, the current participant's next keyframe sets the cut: ask for it now.
        let ask = match (&source, &self.current) {
            (Source::Participant(id), _) | (Source::Mixer, Source::Participant(id)) => {
                Action::ParticipantKeyframe(id.clone())
            }
            (Source::Mixer, Source::Mixer) => unreachable!("handled above"),
        };
        self.changes += 1;
        self.next = Some(Pending {
            source,
            cut: None,
            current_done: false,
            queue: Vec::new(),
            since_ms: now_ms,
            asked_ms: now_ms,
        });
        vec![ask]
    }

    /// Takes a frame from `from` (timestamps on the outputs' timeline).
    pub fn offer(&mut self, from: &Source, buffer: gst::Buffer, caps: &gst::Caps, now_ms: u64) -> Outcome {
        let mut outcome = Outcome::default();
        if *from == self.current {
            self.current_seen_ms = now_ms;
            if self.take_from_current(&buffer, &mut outcome) {
                let cut_unknown = self
                    .next
                    .as_ref()
                    .is_some_and(|p| p.cut.is_none() && p.source != Source::Mixer);
                if !self.held.is_empty() || (cut_unknown && is_keyframe(&buffer)) {
                    self.held.push((buffer, caps.clone()));
                } else {
                    self.forward(buffer, caps.clone(), now_ms, &mut outcome);
                }
            }
        } else if self.next() == Some(from) {
            self.take_from_next(buffer, caps, now_ms, &mut outcome);
        }
        self.settle_held(now_ms, &mut outcome);
        self.check_pending(now_ms, &mut outcome);
        self.settle_held(now_ms, &mut outcome);
        outcome
    }

    /// The earliest output time the next frame handed out may have.
    fn earliest_next(&self) -> Option<ClockTime> {
        self.last_pts.map(|p| p + MIN_SPACING)
    }

    /// False when the current source's frame is past the cut of a switch under way (or too close before it).
    fn take_from_current(&mut self, buffer: &gst::BufferRef, outcome: &mut Outcome) -> bool {
        let earliest = self.earliest_next();
        let Some(pending) = &mut self.next else { return true };
        let pts = buffer.pts();
        match pending.cut {
            Some(cut) if pts.is_some_and(|p| p + MIN_SPACING > cut || (is_keyframe(buffer) && p + SHORT_GOP > cut)) => {
                pending.current_done = true;
                false
            }
            None if pending.source == Source::Mixer && is_keyframe(buffer) && pts.is_some() && pts >= earliest => {
                // The keyframe the participant's decoder starts from: the mixer's picture is right from here.
                pending.cut = pts;
                pending.current_done = true;
                outcome.actions.push(Action::MixerKeyframe(pts));
                false
            }
            _ => true,
        }
    }

    fn take_from_next(&mut self, buffer: gst::Buffer, caps: &gst::Caps, now_ms: u64, outcome: &mut Outcome) {
        let earliest = self.earliest_next();
        let Some(pending) = &mut self.next else { return };
        let pts = buffer.pts();
        let key = is_keyframe(&buffer);
        if !pending.queue.is_empty() {
            pending.queue.push((buffer, caps.clone()));
            return;
        }
        let usable = key && pts.is_some() && pts >= earliest && pending.cut.is_none_or(|cut| pts >= Some(cut));
        if usable && (pending.cut.is_some() || pending.source != Source::Mixer) {
            pending.cut.get_or_insert(pts.unwrap_or(ClockTime::ZERO));
            pending.queue.push((buffer, caps.clone()));
            return;
        }
        // Not a frame to start from. Past the cut (or for a participant), ask for a keyframe again.
        let past_cut = pending.cut.is_some_and(|cut| pts >= Some(cut));
        if (past_cut || pending.source != Source::Mixer) && now_ms.saturating_sub(pending.asked_ms) >= REPEAT_REQUEST_MS
        {
            pending.asked_ms = now_ms;
            outcome.actions.push(match &pending.source {
                Source::Mixer => Action::MixerKeyframe(None),
                Source::Participant(id) => Action::ParticipantKeyframe(id.clone()),
            });
        }
    }

    /// Decides on the held frames of the current source: once the switch's cut is known, dropped if their keyframe
    /// comes less than `SHORT_GOP` before it (it would start a GOP, and an HLS segment, of a frame or two: the
    /// switch happens before it instead), else handed out up to the cut; handed out once they span `SHORT_GOP`
    /// with no cut yet, or when no switch waits any more.
    fn settle_held(&mut self, now_ms: u64, outcome: &mut Outcome) {
        let Some(first) = self.held.first().and_then(|(b, _)| b.pts()) else {
            return;
        };
        let last = self.held.last().and_then(|(b, _)| b.pts()).unwrap_or(first);
        match self.next.as_mut().map(|p| (p.cut, p)) {
            Some((Some(cut), pending)) => {
                if first + SHORT_GOP > cut {
                    self.held.clear();
                    pending.current_done = true;
                    return;
                }
                for (buffer, caps) in std::mem::take(&mut self.held) {
                    if buffer.pts().is_some_and(|p| p + MIN_SPACING <= cut) {
                        self.forward(buffer, caps, now_ms, outcome);
                    }
                }
            }
            Some((None, _)) if last < first + SHORT_GOP => {}
            _ => {
                for (buffer, caps) in std::mem::take(&mut self.held) {
                    self.forward(buffer, caps, now_ms, outcome);
                }
            }
        }
    }

    fn check_pending(&mut self, now_ms: u64, outcome: &mut Outcome) {
        let current_stalled = now_ms.saturating_sub(self.current_seen_ms) >= STALL_MS;
        let earliest = self.earliest_next();
        let Some(pending) = &mut self.next else { return };
        let waited = now_ms.saturating_sub(pending.since_ms);
        if pending.cut.is_none() {
            match pending.source {
                Source::Mixer if current_stalled || waited >= GIVE_UP_MS => {
                    // The participant went quiet: the mixer takes over right after what was sent.
                    pending.cut = Some(earliest.unwrap_or(ClockTime::ZERO));
                    pending.current_done = true;
                    outcome.actions.push(Action::MixerKeyframe(None));
                }
                Source::Participant(_) if waited >= GIVE_UP_MS => {
                    self.next = None;
                    self.changes += 1;
                    return;
                }
                _ => {}
            }
        } else if current_stalled || pending.queue.len() >= MAX_QUEUE {
            pending.current_done = true;
        }
        if pending.current_done && !pending.queue.is_empty() {
            let pending = self.next.take().expect("checked above");
            self.changes += 1;
            self.current = pending.source;
            self.current_seen_ms = now_ms;
            self.last_keyframe_pts = None;
            for (buffer, caps) in pending.queue {
                self.forward(buffer, caps, now_ms, outcome);
            }
        }
    }

    /// Hands a frame out if it moves the timeline forward; keeps a forwarded participant's keyframes coming.
    fn forward(&mut self, buffer: gst::Buffer, caps: gst::Caps, now_ms: u64, outcome: &mut Outcome) {
        let pts = buffer.pts();
        // Within one source only order matters: a frame dropped there would break its decoding until a keyframe.
        if pts.is_none() || pts <= self.last_pts {
            return;
        }
        self.last_pts = pts;
        if let (Source::Participant(id), Some(pts)) = (&self.current, pts) {
            if is_keyframe(&buffer) {
                self.last_keyframe_pts = Some(pts);
            }
            let due = self
                .last_keyframe_pts
                .is_none_or(|k| pts + REQUEST_AHEAD >= k + self.keyframe_interval);
            if due && now_ms.saturating_sub(self.keyframe_asked_ms) >= REPEAT_REQUEST_MS {
                self.keyframe_asked_ms = now_ms;
                outcome.actions.push(Action::ParticipantKeyframe(id.clone()));
            }
        }
        outcome.forward.push((buffer, caps));
    }
}

#[cfg(test)]
mod tests;
