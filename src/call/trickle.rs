//! Trickle ICE fragments (RFC 8840 `application/trickle-ice-sdpfrag`, as WHIP clients PATCH them, RFC 9725
//! §4.3): the candidates a client found after its offer, each for a media section named by `a=mid`.

use thiserror::Error;

/// Most candidates one fragment may carry: a browser finds a handful per network interface.
pub const MAX_CANDIDATES: usize = 64;
/// Longer than any candidate line a browser writes (address, port, type, related address, extensions).
const MAX_LINE: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fragment {
    /// The ICE credentials the fragment is for (a different `ice-ufrag` than the session's asks for an ICE
    /// restart).
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// `(mid, candidate)` with the candidate as `candidate:...`; mid None when the fragment named none.
    pub candidates: Vec<(Option<String>, String)>,
    pub end_of_candidates: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FragmentError {
    #[error("fragment line {0} is not of the form `a=...`, `m=...` or blank")]
    Malformed(usize),
    #[error("fragment line {0} is longer than {MAX_LINE} characters")]
    TooLong(usize),
    #[error("fragment has more than {MAX_CANDIDATES} candidates")]
    TooManyCandidates,
}

/// Reads a fragment; lines other than the ones we use (`a=group`, `c=`, extensions) are allowed and skipped.
pub fn parse(text: &str) -> Result<Fragment, FragmentError> {
    let mut fragment = Fragment::default();
    let mut mid: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end_matches('\r');
        if line.len() > MAX_LINE {
            return Err(FragmentError::TooLong(number));
        }
        if line.is_empty() {
            continue;
        }
        let Some((kind, value)) = line.split_once('=').filter(|(k, _)| k.len() == 1) else {
            return Err(FragmentError::Malformed(number));
        };
        match (kind, value.split_once(':')) {
            ("m", _) => mid = None,
            ("a", Some(("mid", m))) => mid = Some(m.to_string()),
            ("a", Some(("ice-ufrag", u))) => fragment.ufrag = Some(u.to_string()),
            ("a", Some(("ice-pwd", p))) => fragment.pwd = Some(p.to_string()),
            ("a", Some(("candidate", _))) => {
                if fragment.candidates.len() == MAX_CANDIDATES {
                    return Err(FragmentError::TooManyCandidates);
                }
                fragment.candidates.push((mid.clone(), value.to_string()));
            }
            ("a", None) if value == "end-of-candidates" => fragment.end_of_candidates = true,
            _ => {}
        }
    }
    Ok(fragment)
}

/// Why candidates from a fragment were not taken.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TrickleError {
    #[error("{0}")]
    Fragment(#[from] FragmentError),
    #[error(
        "the fragment's ice-ufrag differs from the session's: this kind of session cannot restart ICE (WHIP \
         sessions can); start a new session"
    )]
    IceRestart,
    #[error(transparent)]
    Restart(#[from] super::ice_restart::RestartError),
    #[error("the fragment names a=mid:{0}, which the offer has not")]
    UnknownMid(String),
}

/// What a WHIP session's PATCH did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Candidates added to the session (how many).
    Trickled(usize),
    /// An ICE restart (RFC 9725 §4.4): the sdpfrag answering it and the session's new ETag.
    Restarted { fragment: String, etag: String },
}

/// Why trickled candidates were not taken (a WHIP session's or a WHEP viewer's).
#[derive(Debug, Error)]
pub enum TrickleRefusal {
    #[error("no such session")]
    NotFound,
    #[error("If-Match must give the session's ETag")]
    PreconditionRequired,
    #[error("If-Match does not match the session's ETag")]
    PreconditionFailed,
    #[error(transparent)]
    Refused(#[from] TrickleError),
}

/// A trickle request's `If-Match` against the session's `etag`: required; `*` asks for an ICE restart (RFC 9725
/// §4.3.2), which the fragment's credentials then show.
pub fn check_if_match(if_match: Option<&str>, etag: &str) -> Result<(), TrickleRefusal> {
    match if_match.map(str::trim) {
        None => Err(TrickleRefusal::PreconditionRequired),
        Some("*") => Ok(()),
        Some(tag) if tag == etag => Ok(()),
        Some(_) => Err(TrickleRefusal::PreconditionFailed),
    }
}

/// Adds the fragment's candidates to `webrtc`, each on the section of the offer (`remote`) its mid names; how many.
pub fn add_candidates(webrtc: &gst::Element, remote: &RemoteIce, fragment: &Fragment) -> Result<usize, TrickleError> {
    use gst::prelude::*;
    let placed = remote.place(fragment)?;
    for (mline, candidate) in &placed {
        webrtc.emit_by_name::<()>("add-ice-candidate", &[mline, &candidate.as_str()]);
    }
    Ok(placed.len())
}

/// The offer's ICE user fragment and the `mid` of each media section, in order (an index is webrtcbin's mline).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteIce {
    pub ufrag: Option<String>,
    pub mids: Vec<Option<String>>,
}

impl RemoteIce {
    /// Reads them from the offer's text (already checked by `sdp_offer::inspect`).
    pub fn of_offer(offer: &str) -> Self {
        let Ok(sdp) = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()) else {
            return Self::default();
        };
        let medias: Vec<&gst_sdp::SDPMediaRef> = sdp.medias().collect();
        let ufrag = sdp
            .attribute_val("ice-ufrag")
            .or_else(|| medias.iter().find_map(|m| m.attribute_val("ice-ufrag")))
            .map(str::to_string);
        let mids = medias
            .iter()
            .map(|m| m.attribute_val("mid").map(str::to_string))
            .collect();
        Self { ufrag, mids }
    }

    /// `(mline, candidate)` for each candidate of `fragment`: a candidate without a mid goes to the first section
    /// (with bundling every section shares its transport).
    pub fn place(&self, fragment: &Fragment) -> Result<Vec<(u32, String)>, TrickleError> {
        if let (Some(theirs), Some(ours)) = (&fragment.ufrag, &self.ufrag) {
            if theirs != ours {
                return Err(TrickleError::IceRestart);
            }
        }
        fragment
            .candidates
            .iter()
            .map(|(mid, candidate)| {
                let mline = match mid {
                    None => 0,
                    Some(mid) => self
                        .mids
                        .iter()
                        .position(|m| m.as_deref() == Some(mid.as_str()))
                        .ok_or_else(|| TrickleError::UnknownMid(mid.clone()))?,
                };
                Ok((mline as u32, candidate.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_fragment_as_rfc_8840_writes_it() {
        // The shape of RFC 8840 section 4.4's example, as whip-whep's client sends it.
        let text = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
                    a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
                    a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n\
                    a=end-of-candidates\r\n";
        let fragment = parse(text).expect("parses");
        assert_eq!(fragment.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(fragment.pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
        assert_eq!(fragment.candidates.len(), 2);
        assert_eq!(fragment.candidates[0].0.as_deref(), Some("0"));
        assert!(fragment.candidates[1]
            .1
            .starts_with("candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host"));
        assert!(fragment.end_of_candidates);
    }

    #[test]
    fn candidates_go_to_the_section_their_mid_names() {
        gst::init().expect("GStreamer");
        let offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE a v\r\n\
                     m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=mid:a\r\n\
                     m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=mid:v\r\n";
        let remote = RemoteIce::of_offer(offer);
        assert_eq!(remote.ufrag.as_deref(), Some("abcd"));
        assert_eq!(remote.mids, vec![Some("a".to_string()), Some("v".to_string())]);
        let fragment =
            parse("a=ice-ufrag:abcd\nm=video 9 RTP/AVP 0\na=mid:v\na=candidate:1 1 udp 9 192.0.2.1 5 typ host\n")
                .expect("parses");
        assert_eq!(
            remote.place(&fragment),
            Ok(vec![(1, "candidate:1 1 udp 9 192.0.2.1 5 typ host".to_string())])
        );
        let restart = parse("a=ice-ufrag:wxyz\n").expect("parses");
        assert_eq!(remote.place(&restart), Err(TrickleError::IceRestart));
        let stray = parse("a=mid:x\na=candidate:1 1 udp 9 192.0.2.1 5 typ host\n").expect("parses");
        assert_eq!(remote.place(&stray), Err(TrickleError::UnknownMid("x".into())));
    }

    #[test]
    fn bad_fragments_are_refused() {
        assert_eq!(parse("hello"), Err(FragmentError::Malformed(1)));
        assert_eq!(parse("a=mid:0\n xa=candidate:1"), Err(FragmentError::Malformed(2)));
        assert_eq!(parse(&format!("a={}", "x".repeat(600))), Err(FragmentError::TooLong(1)));
        let many = "a=candidate:1 1 udp 1 192.0.2.1 1 typ host\n".repeat(MAX_CANDIDATES + 1);
        assert_eq!(parse(&many), Err(FragmentError::TooManyCandidates));
    }
}
