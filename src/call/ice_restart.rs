//! ICE restarts of a WHIP session (RFC 9725 §4.4): the client PATCHes new ICE credentials; we take them, make new
//! ones of our own and answer them in an sdpfrag with our candidates.
//!
//! webrtcbin 1.22 cannot do this through a new offer/answer: re-answering reuses the previous answer's
//! `ice-ufrag`/`ice-pwd` ("FIXME: deal with ICE restarts", gstwebrtcbin.c `_create_answer_task`), and nothing in
//! it restarts the ICE stream. It does hand new remote credentials straight to the ICE agent
//! (`gst_webrtc_ice_set_remote_credentials`), and the agent's public API sets local ones too: libnice copies both
//! into the stream, and its connectivity checks read them from there. So a restart sets both on the session's
//! ICE stream; our candidates (host ports already bound) stay the same, DTLS and the media go on.

use gst::glib;
use gst::prelude::*;
use gst_webrtc::prelude::*;
use rand::Rng;
use thiserror::Error;

/// Our side of a restarted session, as the sdpfrag answer gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIce {
    pub ufrag: String,
    pub pwd: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RestartError {
    #[error("an ICE restart needs the fragment's a=ice-pwd as well as its new a=ice-ufrag")]
    NoPassword,
    #[error("a=ice-ufrag must be 4 to 256 ICE characters (letters, digits, + and /)")]
    BadUfrag,
    #[error("a=ice-pwd must be 22 to 256 ICE characters (letters, digits, + and /)")]
    BadPassword,
    #[error("the session has no ICE transport to restart")]
    NoTransport,
}

/// RFC 8839 §5.4 `ice-char`s, `min..=256` of them.
fn ice_chars(value: &str, min: usize) -> bool {
    (min..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The client's new credentials from a restart fragment, checked.
pub fn remote_credentials(ufrag: &str, pwd: Option<&str>) -> Result<(String, String), RestartError> {
    let pwd = pwd.ok_or(RestartError::NoPassword)?;
    if !ice_chars(ufrag, 4) {
        return Err(RestartError::BadUfrag);
    }
    if !ice_chars(pwd, 22) {
        return Err(RestartError::BadPassword);
    }
    Ok((ufrag.to_string(), pwd.to_string()))
}

/// New credentials of ours: 64 random bits in the ufrag, 128 in the password (RFC 8445 asks for 24 and 128).
fn new_local() -> LocalIce {
    let mut rng = rand::rng();
    LocalIce {
        ufrag: format!("{:016x}", rng.random::<u64>()),
        pwd: format!("{:032x}", rng.random::<u128>()),
    }
}

/// Restarts ICE on `webrtc` (max-bundle: one ICE stream, the first transceiver's) with the client's new
/// credentials; returns ours.
pub fn restart(webrtc: &gst::Element, remote_ufrag: &str, remote_pwd: &str) -> Result<LocalIce, RestartError> {
    let agent = webrtc
        .property::<glib::Object>("ice-agent")
        .downcast::<gst_webrtc::WebRTCICE>()
        .map_err(|_| RestartError::NoTransport)?;
    let stream = ice_stream(webrtc).ok_or(RestartError::NoTransport)?;
    let local = new_local();
    // Remote first: checks the client starts on its new credentials then find ours already in place too.
    agent.set_remote_credentials(&stream, remote_ufrag, remote_pwd);
    agent.set_local_credentials(&stream, &local.ufrag, &local.pwd);
    Ok(local)
}

/// The ICE stream under the first transceiver: receiver -> DTLS transport -> ICE transport -> stream.
fn ice_stream(webrtc: &gst::Element) -> Option<gst_webrtc::WebRTCICEStream> {
    let transceiver = webrtc.emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&0i32])?;
    let receiver = transceiver.property::<Option<gst_webrtc::WebRTCRTPReceiver>>("receiver")?;
    let dtls = receiver.property::<Option<gst_webrtc::WebRTCDTLSTransport>>("transport")?;
    let ice = dtls.property::<Option<gst_webrtc::WebRTCICETransport>>("transport")?;
    if !ice.has_property("stream") {
        return None;
    }
    ice.property::<Option<glib::Object>>("stream")?.downcast().ok()
}

/// The sdpfrag answering a restart (RFC 9725 §4.4, RFC 8840's layout): our credentials, then the first
/// section of our answer (`mid`, bundled) with our candidates, CRLF-terminated as clients match them.
pub fn answer_fragment(local: &LocalIce, local_sdp: &str) -> String {
    let mut mid = None;
    let mut group = None;
    let mut candidates = Vec::new();
    if let Ok(sdp) = gst_sdp::SDPMessage::parse_buffer(local_sdp.as_bytes()) {
        group = sdp.attribute_val("group").map(str::to_string);
        if let Some(media) = sdp.medias().next() {
            mid = media.attribute_val("mid").map(str::to_string);
            candidates = media
                .attributes()
                .filter(|a| a.key() == "candidate")
                .filter_map(|a| a.value().map(str::to_string))
                .collect();
        }
    }
    let mut fragment = format!("a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", local.ufrag, local.pwd);
    if let Some(group) = group {
        fragment.push_str(&format!("a=group:{group}\r\n"));
    }
    if let Some(mid) = mid {
        fragment.push_str(&format!("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{mid}\r\n"));
        for candidate in candidates {
            fragment.push_str(&format!("a=candidate:{candidate}\r\n"));
        }
        fragment.push_str("a=end-of-candidates\r\n");
    }
    fragment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_needs_well_formed_credentials() {
        assert_eq!(
            remote_credentials("EsAw", Some("P2uYro0UCOQ4zxjKXaWCBui1")),
            Ok(("EsAw".into(), "P2uYro0UCOQ4zxjKXaWCBui1".into()))
        );
        assert_eq!(remote_credentials("EsAw", None), Err(RestartError::NoPassword));
        assert_eq!(
            remote_credentials("abc", Some(&"p".repeat(22))),
            Err(RestartError::BadUfrag)
        );
        assert_eq!(
            remote_credentials("ab c", Some(&"p".repeat(22))),
            Err(RestartError::BadUfrag)
        );
        assert_eq!(
            remote_credentials("abcd", Some("short")),
            Err(RestartError::BadPassword)
        );
    }

    #[test]
    fn the_answer_fragment_carries_our_credentials_and_candidates() {
        gst::init().expect("GStreamer");
        let local = LocalIce {
            ufrag: "0123456789abcdef".into(),
            pwd: "0123456789abcdef0123456789abcdef".into(),
        };
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 audio1\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:old\r\na=mid:video0\r\n\
                   a=candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:audio1\r\n";
        assert_eq!(
            answer_fragment(&local, sdp),
            "a=ice-ufrag:0123456789abcdef\r\na=ice-pwd:0123456789abcdef0123456789abcdef\r\n\
             a=group:BUNDLE video0 audio1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:video0\r\n\
             a=candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"
        );
    }
}
