//! A tap is where one participant's decoded track leaves its own pipeline. Any number of broadcast pipelines
//! subscribe with an appsrc; each buffer is decoded once and handed to every subscriber, re-timed onto the
//! subscriber's pipeline (`timeline`). Pushing never blocks the decoder's thread: subscriber appsrcs are leaky.

use super::decode::LinkedTrack;
use super::keyframes::KeyframeRequester;
use super::timeline;
use crate::wall_clock::now_ms;
use gst::prelude::*;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

struct Subscriber {
    id: u64,
    appsrc: gst_app::AppSrc,
    caps_sent: bool,
    /// The subscriber shows this track (a hidden or over-the-limit tile does not).
    wanted: bool,
}

#[derive(Default)]
struct TapState {
    caps: Option<gst::Caps>,
    subscribers: Vec<Subscriber>,
    next_id: u64,
}

/// The fan-out point of one decoded track.
#[derive(Clone, Default)]
pub struct Tap {
    state: Arc<Mutex<TapState>>,
    /// Wall-clock milliseconds of the last decoded buffer; a watchdog reads it.
    last_buffer_ms: Arc<AtomicU64>,
    /// RMS of the last audio buffer (f32 bits, 0..1 of full scale), for active-speaker detection.
    level: Arc<AtomicU32>,
    /// Every keyframe request of a video track goes through it (the gate's, the zero-transcode path's, the
    /// depayloader's own); unused by audio.
    keyframes: KeyframeRequester,
}

/// Removes the subscription when dropped.
pub struct Subscription {
    tap: Tap,
    id: u64,
}

impl Subscription {
    /// Says whether this subscriber shows the track; a track nobody shows is not decoded at all.
    pub fn set_wanted(&self, wanted: bool) {
        let mut state = self.tap.state.lock().unwrap();
        if let Some(sub) = state.subscribers.iter_mut().find(|s| s.id == self.id) {
            sub.wanted = wanted;
        }
    }

    /// Makes the tap set its caps on the subscriber again before the next buffer (someone else changed them).
    pub fn resend_caps(&self) {
        let mut state = self.tap.state.lock().unwrap();
        if let Some(sub) = state.subscribers.iter_mut().find(|s| s.id == self.id) {
            sub.caps_sent = false;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.tap.state.lock().unwrap();
        state.subscribers.retain(|s| s.id != self.id);
    }
}

impl Tap {
    /// Current caps of the track, once the first buffer was decoded.
    pub fn caps(&self) -> Option<gst::Caps> {
        self.state.lock().unwrap().caps.clone()
    }

    /// True when at least one subscriber shows this track.
    pub fn wanted(&self) -> bool {
        self.state.lock().unwrap().subscribers.iter().any(|s| s.wanted)
    }

    /// The keyframe requester of this (video) track.
    pub fn keyframes(&self) -> &KeyframeRequester {
        &self.keyframes
    }

    /// Drops encoded buffers before the decoder of `track` while nobody shows this track, so an unseen
    /// participant costs no decoding. On the way back it asks the sender for a keyframe (again every half second
    /// until one comes, as a request can be lost) and lets frames through from there. The track's keyframe
    /// requests (these and everyone else's) leave from its depayloader from now on.
    pub fn gate_decoder(&self, track: &LinkedTrack) {
        const RETRY_KEYFRAME_MS: u64 = 500;
        self.keyframes.attach(&track.depayloader_sink);
        let tap = self.clone();
        // 0: passing; u64::MAX: dropping; otherwise: waiting for a keyframe asked for at that wall-clock ms.
        let gate = Arc::new(AtomicU64::new(0));
        track.decoder_sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let now = now_ms();
            // Arrival still counts as media: the silence watchdog must not remove an unseen participant.
            tap.last_buffer_ms.store(now, Ordering::Relaxed);
            if !tap.wanted() {
                gate.store(u64::MAX, Ordering::Relaxed);
                return crate::gst_util::swallow(info);
            }
            let asked_at = gate.load(Ordering::Relaxed);
            if asked_at == 0 {
                return gst::PadProbeReturn::Ok;
            }
            let keyframe = info
                .buffer()
                .is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT));
            if keyframe {
                gate.store(0, Ordering::Relaxed);
                return gst::PadProbeReturn::Ok;
            }
            if asked_at == u64::MAX || now.saturating_sub(asked_at) >= RETRY_KEYFRAME_MS {
                tap.keyframes.request();
                gate.store(now, Ordering::Relaxed);
            }
            crate::gst_util::swallow(info)
        });
    }

    pub fn last_buffer_ms(&self) -> u64 {
        self.last_buffer_ms.load(Ordering::Relaxed)
    }

    /// RMS level of the latest audio buffer, 0..1 (0 for video taps or silence).
    pub fn level(&self) -> f32 {
        f32::from_bits(self.level.load(Ordering::Relaxed))
    }

    pub fn subscribe(&self, appsrc: gst_app::AppSrc) -> Subscription {
        let mut state = self.state.lock().unwrap();
        let id = state.next_id;
        state.next_id += 1;
        state.subscribers.push(Subscriber {
            id,
            appsrc,
            caps_sent: false,
            // Not until a tile shows it: a participant placed off screen is never decoded.
            wanted: false,
        });
        Subscription { tap: self.clone(), id }
    }

    /// Turns an appsink into this tap's input.
    pub fn attach(&self, appsink: &gst_app::AppSink) {
        let tap = self.clone();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let base_time = sink.base_time().unwrap_or(gst::ClockTime::ZERO);
                    tap.push(&sample, base_time);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }

    fn push(&self, sample: &gst::Sample, base_time: gst::ClockTime) {
        self.last_buffer_ms.store(now_ms(), Ordering::Relaxed);
        let (Some(buffer), Some(segment)) = (sample.buffer(), sample.segment()) else {
            return;
        };
        let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else {
            return;
        };
        let Some(clock_time) = buffer
            .pts()
            .and_then(|pts| timeline::to_clock_time(segment, pts, base_time))
        else {
            return;
        };
        if sample
            .caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("audio/")))
            .unwrap_or(false)
        {
            self.level.store(rms_s16(buffer).to_bits(), Ordering::Relaxed);
        }
        let mut state = self.state.lock().unwrap();
        if let Some(caps) = sample.caps() {
            if state.caps.as_ref() != Some(&caps.to_owned()) {
                state.caps = Some(caps.to_owned());
                state.subscribers.iter_mut().for_each(|s| s.caps_sent = false);
            }
        }
        let caps = state.caps.clone();
        for sub in &mut state.subscribers {
            let Some(sub_base) = sub.appsrc.base_time() else {
                continue;
            };
            let Some(pts) = timeline::to_running_time(clock_time, sub_base) else {
                continue;
            };
            if !sub.caps_sent {
                if let Some(caps) = &caps {
                    sub.appsrc.set_caps(Some(caps));
                    sub.caps_sent = true;
                }
            }
            let mut out = buffer.copy();
            {
                let out = out.make_mut();
                out.set_pts(pts);
                out.set_dts(gst::ClockTime::NONE);
            }
            // Errors mean the subscriber is shutting down; it unsubscribes itself.
            let _ = sub.appsrc.push_buffer(out);
        }
    }
}

/// RMS of interleaved S16 samples, 0..1 of full scale (the mix format of every participant's audio).
fn rms_s16(buffer: &gst::BufferRef) -> f32 {
    let Ok(map) = buffer.map_readable() else { return 0.0 };
    let samples = map
        .as_slice()
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0);
    let (sum, n) = samples.fold((0.0f32, 0usize), |(s, n), v| (s + v * v, n + 1));
    if n == 0 {
        0.0
    } else {
        (sum / n as f32).sqrt()
    }
}
