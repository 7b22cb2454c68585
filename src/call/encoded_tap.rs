//! A participant's track before it is decoded: parsed H.264 access units for the zero-transcode path, and every
//! track as received (VP8, VP9, H.264, Opus) for per-participant recordings; handed to whoever subscribed with
//! timestamps on the shared clock. Costs one atomic load per frame while nobody listens.

use super::keyframes::KeyframeRequester;
use super::timeline;
use crate::wall_clock::now_ms;
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Receives each access unit (PTS and DTS in clock time) with its caps.
pub type Receiver = Box<dyn FnMut(gst::Buffer, &gst::Caps) + Send>;

#[derive(Default)]
struct State {
    receivers: Vec<(u64, Receiver)>,
    next_id: u64,
}

#[derive(Clone)]
pub struct EncodedTap {
    state: Arc<Mutex<State>>,
    /// The video track's requester (shared with its decoded tap): receivers ask for keyframes through it.
    keyframes: KeyframeRequester,
    listened: Arc<AtomicBool>,
    /// Wall-clock ms of the last access unit; 0 before any (and for participants whose video is not H.264).
    last_ms: Arc<AtomicU64>,
}

/// Ends the subscription when dropped.
pub struct EncodedSubscription {
    tap: EncodedTap,
    id: u64,
}

impl Drop for EncodedSubscription {
    fn drop(&mut self) {
        let mut state = self.tap.state.lock().unwrap();
        state.receivers.retain(|(id, _)| *id != self.id);
        self.tap.listened.store(!state.receivers.is_empty(), Ordering::Relaxed);
    }
}

impl EncodedTap {
    /// `keyframes`: the requester of the participant's video track.
    pub fn new(keyframes: KeyframeRequester) -> Self {
        Self {
            state: Arc::default(),
            keyframes,
            listened: Arc::default(),
            last_ms: Arc::default(),
        }
    }

    /// Taps the source pad of `element` (the parsed H.264 before the decoder).
    pub fn attach(&self, element: &gst::Element) {
        if let Some(pad) = element.static_pad("src") {
            self.attach_pad(&pad);
        }
    }

    /// Taps `pad` (a source pad carrying the encoded track: a depayloader's or a parser's).
    pub fn attach_pad(&self, pad: &gst::Pad) {
        let tap = self.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            tap.last_ms.store(now_ms(), Ordering::Relaxed);
            if !tap.listened.load(Ordering::Relaxed) {
                return gst::PadProbeReturn::Ok;
            }
            if let Some(buffer) = info.buffer() {
                tap.hand_out(pad, buffer);
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// True while H.264 arrived within `within_ms`.
    pub fn flowing(&self, within_ms: u64) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        last != 0 && now_ms().saturating_sub(last) <= within_ms
    }

    pub fn subscribe(&self, receiver: Receiver) -> EncodedSubscription {
        let mut state = self.state.lock().unwrap();
        let id = state.next_id;
        state.next_id += 1;
        state.receivers.push((id, receiver));
        self.listened.store(true, Ordering::Relaxed);
        EncodedSubscription { tap: self.clone(), id }
    }

    /// Asks the sender for a keyframe (RTCP PLI through webrtcbin), through the track's one requester.
    pub fn request_keyframe(&self) {
        self.keyframes.request();
    }

    fn hand_out(&self, pad: &gst::Pad, buffer: &gst::BufferRef) {
        let (Some(caps), Some(segment)) = (pad.current_caps(), pad.sticky_event::<gst::event::Segment>(0)) else {
            return;
        };
        let Some(segment) = segment.segment().downcast_ref::<gst::ClockTime>() else {
            return;
        };
        let base_time = pad
            .parent_element()
            .and_then(|e| e.base_time())
            .unwrap_or(gst::ClockTime::ZERO);
        let Some(pts) = buffer
            .pts()
            .and_then(|pts| timeline::to_clock_time(segment, pts, base_time))
        else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        for (_, receiver) in &mut state.receivers {
            let mut out = buffer.copy();
            {
                let out = out.make_mut();
                // WebRTC video (H.264, VP8, VP9) has no B-frames: decode order is presentation order.
                out.set_pts(pts);
                out.set_dts(pts);
            }
            receiver(out, &caps);
        }
    }
}
