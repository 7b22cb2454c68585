//! A WHEP viewer's input for one medium: a source pad of our own, linked to the viewer's payloader, into which
//! the station's streaming thread pushes directly. There is no thread (and no queue) per viewer: a viewer's
//! cost is mostly fixed per push (waking a thread of its own, on a cold cache, cost more than the packets it
//! sent), and nothing on a viewer's send path waits once its DTLS keys are set (UDP sends never block), which is
//! when the viewer starts taking media (`Viewer::keyed`).

use gst::prelude::*;
use std::sync::Mutex;

pub struct Feed {
    pad: gst::Pad,
    /// The caps the next buffer goes with, and whether the pad has sent them (its first events go with its
    /// first buffer, on the pushing thread, so that events and buffers never cross).
    caps: Mutex<(Option<gst::Caps>, bool)>,
    started: std::sync::atomic::AtomicBool,
    /// Whether webrtcbin will take what comes: its transceiver was answered sending. webrtcbin opens the input
    /// behind its sink pad only then (at the caps), and blocks buffers on that pad until it does. In the cases
    /// tried (a section answered inactive, audio or video) webrtcbin 1.22 refused such buffers at once rather
    /// than holding them, so this is a guard: the station's thread must never be the one that finds out.
    sending: std::sync::atomic::AtomicBool,
}

impl Feed {
    /// A feed named `name`; `upstream_event` sees each event the viewer's pipeline sends up (a force-key-unit
    /// for a PLI or FIR) from whatever thread sends it.
    pub fn new(
        name: &str,
        caps: Option<&gst::Caps>,
        upstream_event: impl Fn(&gst::Event) + Send + Sync + 'static,
    ) -> Self {
        let pad = gst::Pad::builder(gst::PadDirection::Src)
            .name(name)
            .event_function(move |_, _, event| {
                upstream_event(&event);
                true
            })
            .query_function(|_, _, query| match query.view_mut() {
                // Live, pushed as it comes.
                gst::QueryViewMut::Latency(q) => {
                    q.set(true, gst::ClockTime::ZERO, gst::ClockTime::NONE);
                    true
                }
                _ => false,
            })
            .build();
        // Active from the start, so that only `close` deactivates it: a push racing a close is refused.
        let _ = pad.set_active(true);
        Self {
            pad,
            caps: Mutex::new((caps.cloned(), false)),
            started: std::sync::atomic::AtomicBool::new(false),
            sending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Set once the answer is made, from the transceiver's `current-direction`: nothing is pushed before.
    pub fn set_sending(&self, direction: gst_webrtc::WebRTCRTPTransceiverDirection) {
        use gst_webrtc::WebRTCRTPTransceiverDirection as D;
        let sending = matches!(direction, D::Sendonly | D::Sendrecv);
        self.sending.store(sending, std::sync::atomic::Ordering::Release);
    }

    pub fn pad(&self) -> &gst::Pad {
        &self.pad
    }

    /// The caps from the next buffer on.
    pub fn set_caps(&self, caps: &gst::Caps) {
        let mut held = self.caps.lock().unwrap();
        if held.0.as_ref() != Some(caps) {
            *held = (Some(caps.clone()), false);
        }
    }

    /// Pushes `buffer` (after the stream's first events, or new caps); a closed feed refuses it.
    pub fn push(&self, buffer: gst::Buffer) {
        if !self.sending.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let first = !self.started.swap(true, std::sync::atomic::Ordering::Relaxed);
        if first {
            self.pad.push_event(gst::event::StreamStart::new(&self.pad.name()));
        }
        let caps = {
            let mut held = self.caps.lock().unwrap();
            let unsent = (!held.1).then(|| held.0.clone()).flatten();
            held.1 = true;
            unsent
        };
        if let Some(caps) = caps {
            self.pad.push_event(gst::event::Caps::new(&caps));
        }
        if first {
            // Running time is the buffers' own timestamps, as the viewer's pipeline counts them.
            self.pad
                .push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new()));
        }
        let _ = self.pad.push(buffer);
    }

    /// Refuses every push from now on. A push already under way is not waited for here: the pipeline's stop
    /// waits for it (at the payloader's sink pad), and it cannot wait in the stopping pipeline for longer than
    /// the stop (nicesink changes state first and lets go of it).
    pub fn close(&self) {
        let _ = self.pad.set_active(false);
    }
}
