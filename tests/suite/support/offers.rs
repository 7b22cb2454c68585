//! WHIP offers written out by hand: what webrtcbin needs to answer them, no candidates (ICE never starts
//! unless the test trickles some).

pub const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

/// One media section with everything webrtcbin needs to answer it (no candidates: ICE never starts).
pub fn section(prefix: &str, mid: usize) -> String {
    let (kind, pt, codec) = if mid.is_multiple_of(2) {
        ("video", 96, "VP8/90000")
    } else {
        ("audio", 111, "opus/48000/2")
    };
    format!(
        "{prefix}m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=sendonly\r\n\
         a=rtpmap:{pt} {codec}\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n\
         a=rtcp-mux\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:\
         66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    )
}

/// What a browser sends, audio and video bundled.
pub fn well_formed_offer() -> String {
    format!("{HEAD}a=group:BUNDLE 0 1\r\n{}{}", section("", 0), section("", 1))
}
