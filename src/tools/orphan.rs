//! A publisher whose server is gone must not go on sending to a dead port: it notices (its peer connection
//! failed, or the server says its session no longer exists, or the server does not answer at all) and, once
//! that has lasted a short grace period, gives up with an error so the process exits non-zero.

use gst::prelude::*;
use gst_webrtc::WebRTCPeerConnectionState;
use std::time::{Duration, Instant};

/// How long trouble must last before the publisher gives up: long enough for a blip (a slow answer, a
/// connection being re-established), short enough that nothing sends into a dead port for long.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// Keeps track of how long a publisher has been cut off.
#[derive(Debug, Default)]
pub struct OrphanWatch {
    since: Option<Instant>,
}

impl OrphanWatch {
    /// Records one look at the publisher's health at `now`: `trouble` says what is wrong, or `None` if all is
    /// well. Returns the reason to give up once trouble has lasted [`ORPHAN_GRACE`] without a break.
    pub fn observe(&mut self, now: Instant, trouble: Option<String>) -> Option<String> {
        let Some(trouble) = trouble else {
            self.since = None;
            return None;
        };
        let since = *self.since.get_or_insert(now);
        (now.duration_since(since) >= ORPHAN_GRACE)
            .then(|| format!("{trouble} for {} s: the server is gone", ORPHAN_GRACE.as_secs()))
    }
}

/// What is wrong with `webrtc`'s peer connection, if anything.
pub fn peer_trouble(webrtc: &gst::Element) -> Option<String> {
    let state = webrtc.property::<WebRTCPeerConnectionState>("connection-state");
    matches!(
        state,
        WebRTCPeerConnectionState::Failed | WebRTCPeerConnectionState::Closed | WebRTCPeerConnectionState::Disconnected
    )
    .then(|| format!("peer connection {state:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_only_after_the_grace_period_without_a_break() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_millis(s * 500);
        let bad = || Some("WHIP resource answered 404".to_string());
        let mut watch = OrphanWatch::default();
        assert_eq!(watch.observe(at(0), None), None);
        assert_eq!(watch.observe(at(1), bad()), None);
        assert_eq!(watch.observe(at(10), bad()), None, "4.5 s of trouble");
        // A good look in between starts the count again.
        assert_eq!(watch.observe(at(11), None), None);
        assert_eq!(watch.observe(at(12), bad()), None);
        assert_eq!(watch.observe(at(21), bad()), None);
        let reason = watch.observe(at(22), bad()).expect("5 s of trouble");
        assert!(reason.contains("404"), "{reason}");
    }
}
