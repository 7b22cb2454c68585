//! Keyframe requests of one participant's video track, all through one requester. The decoder's gate, the
//! depayloader (on loss) and the zero-transcode switch (and its keyframe interval) each ask on their own; two
//! requests a frame apart make the sender encode two keyframes a frame apart, a bitrate spike for nothing. So every
//! request leaves through the depayloader's sink pad, where one throttle drops those within `WINDOW_MS` of one that
//! went out: the keyframe the first one brings serves them all.

use crate::wall_clock::now_ms;
use gst::glib;
use gst::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Shorter than any deliberate repeat (the gate and the switch repeat after 500 ms, the interval is >= 1 s), so
/// those all go out.
const WINDOW_MS: u64 = 300;

#[derive(Debug, Default)]
struct Throttle {
    /// When the last request went out (ms on `now_ms`'s clock; 0: never).
    last_ms: AtomicU64,
}

impl Throttle {
    /// True when a request at `now_ms` may go out (and records it).
    fn allow(&self, now_ms: u64) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < WINDOW_MS {
            return false;
        }
        self.last_ms.store(now_ms.max(1), Ordering::Relaxed);
        true
    }
}

#[derive(Default)]
struct Inner {
    throttle: Throttle,
    /// The depayloader's sink pad: requests are pushed from it, upstream to webrtcbin (RTCP PLI). Weak: the
    /// pad's probe holds the requester.
    depayloader_sink: Mutex<Option<glib::WeakRef<gst::Pad>>>,
}

/// Asks the sender of one track for keyframes, at most one request per `WINDOW_MS`. Clones share the throttle.
#[derive(Clone, Default)]
pub struct KeyframeRequester {
    inner: Arc<Inner>,
}

impl KeyframeRequester {
    /// Sends this track's requests from `depayloader_sink` and throttles every request leaving it, the
    /// depayloader's own included. A track linked again (renegotiation) moves the requester to its new pad.
    pub fn attach(&self, depayloader_sink: &gst::Pad) {
        *self.inner.depayloader_sink.lock().unwrap() = Some(depayloader_sink.downgrade());
        let inner = self.inner.clone();
        depayloader_sink.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let is_request = info.event().is_some_and(|e| gst_video::ForceKeyUnitEvent::is(e));
            if is_request && !inner.throttle.allow(now_ms()) {
                return crate::gst_util::swallow(info);
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Asks the sender for a keyframe (with SPS/PPS for H.264), unless a request went out within the window:
    /// the keyframe that one brings serves this one too. Nothing happens before the track is attached.
    pub fn request(&self) {
        let pad = self
            .inner
            .depayloader_sink
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|p| p.upgrade());
        if let Some(pad) = pad {
            // The window is applied by the probe `attach` put on this pad, which this push passes.
            let request = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            pad.push_event(request);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KeyframeRequester, Throttle};
    use gst::prelude::*;
    use std::sync::{Arc, Mutex};

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

    /// `identity ! rtpvp8depay` with a requester on the depayloader, and the upstream events that leave it.
    struct Track {
        _elements: [gst::Element; 2],
        depayloader_sink: gst::Pad,
        requester: KeyframeRequester,
        seen: Arc<Mutex<Vec<gst::EventType>>>,
        /// Fails the test on any GLib CRITICAL or WARNING while the track lives.
        _glib: crate::glib_watch::Watch,
    }

    impl Track {
        fn seen(&self) -> Vec<gst::EventType> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn depayloader_with_requester() -> Track {
        let glib = crate::glib_watch::watch();
        let src = gst::ElementFactory::make("identity").build().unwrap();
        let depay = gst::ElementFactory::make("rtpvp8depay").build().unwrap();
        src.link(&depay).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let src_pad = src.static_pad("src").unwrap();
        src_pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(event) = info.event() {
                record.lock().unwrap().push(event.type_());
            }
            crate::gst_util::swallow(info)
        });
        let sink = depay.static_pad("sink").unwrap();
        // Pads of elements that were never started are flushing and refuse events.
        src_pad.set_active(true).unwrap();
        sink.set_active(true).unwrap();
        let requester = KeyframeRequester::default();
        requester.attach(&sink);
        Track {
            _elements: [src, depay],
            depayloader_sink: sink,
            requester,
            seen,
            _glib: glib,
        }
    }

    /// The second of two requests back to back is dropped, whether it comes from `request` or from the
    /// depayloader itself; other events pass.
    #[test]
    fn a_request_right_after_another_is_dropped() {
        let track = depayloader_with_requester();
        track.requester.request();
        track.requester.request();
        // What the depayloader pushes itself on loss (its `request-keyframe` property).
        track.depayloader_sink.push_event(
            gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build(),
        );
        track.depayloader_sink.push_event(gst::event::Reconfigure::new());
        assert_eq!(
            track.seen(),
            vec![gst::EventType::CustomUpstream, gst::EventType::Reconfigure]
        );
    }

    /// The depayloader's own request counts: `request` right after it is dropped; clones share the window.
    #[test]
    fn the_depayloaders_request_and_clones_share_the_window() {
        let track = depayloader_with_requester();
        track
            .depayloader_sink
            .push_event(gst_video::UpstreamForceKeyUnitEvent::builder().build());
        track.requester.clone().request();
        assert_eq!(track.seen(), vec![gst::EventType::CustomUpstream]);
    }

    #[test]
    fn a_requester_without_a_track_asks_nobody() {
        KeyframeRequester::default().request();
    }
}
