//! One keyframe request per sender at a time. The decoder's gate, the depayloader (on loss), the zero-transcode
//! switch and its keyframe interval each ask on their own; two requests a frame apart make the sender encode two
//! keyframes a frame apart, a bitrate spike for nothing. Requests within `WINDOW_MS` of one that went out are
//! dropped: the keyframe the first one brings serves them all.

use gst::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shorter than any deliberate repeat (the gate and the switch repeat after 500 ms, the interval is >= 1 s).
const WINDOW_MS: u64 = 300;

#[derive(Debug, Default)]
pub struct Throttle {
    /// When the last request went out (ms on `tap::now_ms`'s clock; 0: never).
    last_ms: AtomicU64,
}

impl Throttle {
    /// True when a request at `now_ms` may go out (and records it).
    pub fn allow(&self, now_ms: u64) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < WINDOW_MS {
            return false;
        }
        self.last_ms.store(now_ms.max(1), Ordering::Relaxed);
        true
    }
}

/// Drops force-key-unit requests leaving `sink` (a depayloader's sink pad, so every request of the track passes
/// it) within the window of the last one.
pub fn throttle(sink: &gst::Pad) {
    let throttle = Arc::new(Throttle::default());
    sink.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let is_request = info
            .event()
            .is_some_and(|e| e.structure().is_some_and(|s| s.name() == "GstForceKeyUnit"));
        if is_request && !throttle.allow(super::tap::now_ms()) {
            return crate::gst_util::swallow(info);
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn requests_within_the_window_are_dropped() {
        let throttle = Throttle::default();
        assert!(throttle.allow(10_000));
        assert!(!throttle.allow(10_033), "a frame later");
        assert!(!throttle.allow(10_299));
        assert!(throttle.allow(10_300));
        // Deliberate repeats (500 ms apart) all go out.
        assert!(throttle.allow(10_800));
        assert!(throttle.allow(11_300));
    }

    /// The probe drops the second of two requests pushed back to back, and lets other events through.
    #[test]
    fn the_probe_drops_a_request_right_after_another() {
        use gst::prelude::*;
        let _glib = crate::glib_watch::watch();
        let src = gst::ElementFactory::make("identity").build().unwrap();
        let depay = gst::ElementFactory::make("rtpvp8depay").build().unwrap();
        src.link(&depay).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        src.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                if let Some(event) = info.event() {
                    record.lock().unwrap().push(event.type_());
                }
                crate::gst_util::swallow(info)
            });
        let sink = depay.static_pad("sink").unwrap();
        // Pads of elements that were never started are flushing and refuse events.
        src.static_pad("src").unwrap().set_active(true).unwrap();
        sink.set_active(true).unwrap();
        super::throttle(&sink);
        let request = || {
            gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build()
        };
        sink.push_event(request());
        sink.push_event(request());
        sink.push_event(gst::event::Reconfigure::new());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec![gst::EventType::CustomUpstream, gst::EventType::Reconfigure]);
    }
}
