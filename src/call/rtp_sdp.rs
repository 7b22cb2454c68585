//! A plain RTP session described in SDP (`RTP/AVP` or `RTP/AVPF`, as Kurento's RtpEndpoint, ffmpeg and GStreamer
//! write it): the tracks we take from an offer, and the answer giving our ports. No ICE, no DTLS: an offer for
//! WebRTC belongs on the WHIP endpoint. `RTP/SAVP(F)` sections carry the sender's SRTP key in `a=crypto` (SDES,
//! RFC 4568); the answer gives ours, for the RTCP we send. `a=rtcp-mux` (RFC 5761) is taken when every taken
//! section offers it.

use super::decode::TrackKind;
use super::rtp_leg::TrackPorts;
use super::rtp_srtp::{SrtpKey, SrtpKeys, SrtpSuite};
use super::rtp_track::RtpTrack;
use super::sdp_offer;
use std::sync::Arc;

/// An SDP offer describes at most this many sections (each one costs nothing until accepted, but is read).
const MAX_SECTIONS: usize = 16;

/// One media section of the offer: the track we take from it, or why not (its answer section is then rejected).
#[derive(Debug, Clone)]
pub struct OfferedSection {
    pub media: String,
    pub proto: String,
    pub taken: Option<TakenTrack>,
    /// The section offered `a=rtcp-mux`.
    pub rtcp_mux: bool,
}

/// An `a=crypto` line we take: its tag (echoed in the answer) and the sender's key, with a fresh one of ours.
#[derive(Debug, Clone)]
pub struct TakenCrypto {
    pub tag: u32,
    pub keys: SrtpKeys,
}

#[derive(Debug, Clone)]
pub struct TakenTrack {
    /// SRTP, for an `RTP/SAVP(F)` section.
    pub crypto: Option<TakenCrypto>,
    pub track: RtpTrack,
    /// The offer's `a=fmtp` for the chosen payload type, echoed in the answer.
    pub fmtp: Option<String>,
    /// The codec's name as the offer wrote it (`opus`, `H264`), for the answer's `a=rtpmap`.
    pub rtpmap: String,
}

/// Reads the offer; an error names what is wrong for the person who sent it.
pub fn read_offer(text: &str) -> Result<Vec<OfferedSection>, String> {
    sdp_offer::inspect(text, MAX_SECTIONS).map_err(|e| e.to_string())?;
    let sdp = gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).map_err(|_| "SDP does not parse".to_string())?;
    let mut sections = Vec::new();
    let mut have = (false, false);
    for media in sdp.medias() {
        let mut other = true;
        let kind = match media.media() {
            Some("video") => Some(TrackKind::Video),
            Some("audio") => Some(TrackKind::Audio),
            _ => None,
        };
        let proto = media.proto().unwrap_or("").to_string();
        let plain = matches!(proto.as_str(), "RTP/AVP" | "RTP/AVPF" | "RTP/SAVP" | "RTP/SAVPF");
        let seen = match kind {
            Some(TrackKind::Video) => &mut have.0,
            Some(TrackKind::Audio) => &mut have.1,
            None => &mut other,
        };
        let taken = if plain && !*seen && media.port() != 0 {
            kind.and_then(|kind| take(media, kind))
        } else {
            None
        };
        // A secure section without a key we can use is not taken: we never fall back to plain RTP.
        let secure = proto.starts_with("RTP/SAVP");
        let taken = match (taken, secure) {
            (Some(t), true) => crypto(media).map(|crypto| TakenTrack {
                crypto: Some(crypto),
                ..t
            }),
            (taken, _) => taken,
        };
        if taken.is_some() {
            *seen = true;
        }
        sections.push(OfferedSection {
            media: media.media().unwrap_or("").to_string(),
            proto,
            taken,
            rtcp_mux: media.attributes().any(|a| a.key() == "rtcp-mux"),
        });
    }
    if sections.iter().all(|s| s.taken.is_none()) {
        let protos: Vec<&str> = sections.iter().map(|s| s.proto.as_str()).collect();
        return Err(format!(
            "no RTP/AVP(F) or RTP/SAVP(F) audio or video section with a codec we decode (VP8, VP9, H264, opus) \
             (and, if secure, an a=crypto of suite {} with an inline key of its length and no MKI); sections: {}",
            SrtpSuite::names().join(", "),
            if protos.is_empty() {
                "none".into()
            } else {
                protos.join(", ")
            }
        ));
    }
    Ok(sections)
}

/// The first payload type of the section whose `a=rtpmap` names a codec we decode at its clock rate.
fn take(media: &gst_sdp::SDPMediaRef, kind: TrackKind) -> Option<TakenTrack> {
    let rtpmaps: Vec<(u8, String)> = media
        .attributes()
        .filter(|a| a.key() == "rtpmap")
        .filter_map(|a| {
            let (pt, rest) = a.value()?.split_once(' ')?;
            Some((pt.trim().parse().ok()?, rest.trim().to_string()))
        })
        .collect();
    media.formats().find_map(|format| {
        let pt: u8 = format.parse().ok()?;
        let (_, map) = rtpmaps.iter().find(|(p, _)| *p == pt)?;
        let mut parts = map.split('/');
        let name = parts.next()?.to_string();
        let clock_rate: u32 = parts.next()?.parse().ok()?;
        let channels = parts.next().and_then(|c| c.parse().ok());
        let encoding = name.to_ascii_uppercase();
        let wanted = match (kind, encoding.as_str()) {
            (TrackKind::Video, "VP8" | "VP9" | "H264") => clock_rate == 90_000,
            (TrackKind::Audio, "OPUS") => clock_rate == 48_000,
            _ => false,
        };
        if !wanted {
            return None;
        }
        let fmtp = media
            .attributes()
            .filter(|a| a.key() == "fmtp")
            .filter_map(|a| a.value())
            .find(|v| v.split(' ').next() == Some(format))
            .map(str::to_string);
        Some(TakenTrack {
            crypto: None,
            track: RtpTrack {
                kind,
                encoding,
                payload_type: pt,
                clock_rate,
                channels,
                ssrc: None,
            },
            fmtp,
            rtpmap: map.clone(),
        })
    })
}

/// The first `a=crypto:<tag> <suite> inline:<key||salt>[|lifetime]` line of a suite we take with a usable key
/// (no MKI, no session parameters such as `UNENCRYPTED_SRTP`).
fn crypto(media: &gst_sdp::SDPMediaRef) -> Option<TakenCrypto> {
    media
        .attributes()
        .filter(|a| a.key() == "crypto")
        .filter_map(|a| a.value())
        .find_map(|value| {
            let mut parts = value.split_whitespace();
            let tag = parts.next()?.parse().ok()?;
            let suite = parts.next()?;
            let params = parts.next()?;
            if parts.next().is_some() || params.contains(';') {
                return None;
            }
            let mut inline = params.strip_prefix("inline:")?.split('|');
            let key = inline.next()?;
            // Lifetime (`2^31` or a number) is fine; an MKI (`1:4`) is not.
            if inline.any(|p| p.contains(':')) {
                return None;
            }
            let key = SrtpKey::parse(suite, key).ok()?;
            let ours = SrtpKey::generate(key.suite);
            Some(TakenCrypto {
                tag,
                keys: SrtpKeys {
                    receive: Arc::new(key),
                    send: Arc::new(ours),
                },
            })
        })
}

/// rtcp-mux for the whole participant: when every taken section offered it.
pub fn rtcp_mux(sections: &[OfferedSection]) -> bool {
    let taken: Vec<_> = sections.iter().filter(|s| s.taken.is_some()).collect();
    !taken.is_empty() && taken.iter().all(|s| s.rtcp_mux)
}

/// The answer: each taken section with our port, RTCP port and its one codec, receive-only; the others rejected
/// (port 0). `ports` are in the order of the taken sections.
pub fn answer(sections: &[OfferedSection], address: &str, session_id: &str, ports: &[TrackPorts]) -> String {
    let mut out =
        format!("v=0\r\no=- {session_id} 0 IN IP4 {address}\r\ns=callcast\r\nc=IN IP4 {address}\r\nt=0 0\r\n");
    let mut ports = ports.iter();
    for section in sections {
        let proto = if section.proto.is_empty() {
            "RTP/AVP"
        } else {
            &section.proto
        };
        let Some(taken) = &section.taken else {
            out.push_str(&format!("m={} 0 {proto} 0\r\n", section.media));
            continue;
        };
        let Some(port) = ports.next() else { break };
        let pt = taken.track.payload_type;
        out.push_str(&format!("m={} {} {proto} {pt}\r\n", section.media, port.port));
        out.push_str(&format!("a=rtpmap:{pt} {}\r\n", taken.rtpmap));
        if let Some(fmtp) = &taken.fmtp {
            out.push_str(&format!("a=fmtp:{fmtp}\r\n"));
        }
        // Feedback is only for sessions that offered it (AVPF).
        if taken.track.kind == TrackKind::Video && proto.ends_with("AVPF") {
            out.push_str(&format!("a=rtcp-fb:{pt} nack pli\r\na=rtcp-fb:{pt} ccm fir\r\n"));
        }
        if let Some(crypto) = &taken.crypto {
            let ours = &crypto.keys.send;
            let line = format!(
                "a=crypto:{} {} inline:{}\r\n",
                crypto.tag,
                ours.suite.name(),
                ours.expose_base64()
            );
            out.push_str(&line);
        }
        if section.rtcp_mux && port.rtcp_port == port.port {
            out.push_str("a=rtcp-mux\r\n");
        }
        out.push_str(&format!("a=rtcp:{}\r\na=recvonly\r\n", port.rtcp_port));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `gst-launch-1.0 ... sdpsink` or ffmpeg would describe H.264 + Opus, plus a data section.
    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=sender\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=video 5000 RTP/AVP 97 96\r\na=rtpmap:97 VP7/90000\r\na=rtpmap:96 H264/90000\r\n\
        a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n\
        m=audio 5002 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n\
        m=application 5004 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    #[test]
    fn the_first_codec_we_decode_is_taken_and_other_sections_are_rejected() {
        gst::init().unwrap();
        let sections = read_offer(OFFER).unwrap();
        let taken: Vec<_> = sections
            .iter()
            .map(|s| s.taken.as_ref().map(|t| t.track.clone()))
            .collect();
        assert_eq!(
            taken[0].as_ref().map(|t| (t.encoding.as_str(), t.payload_type)),
            Some(("H264", 96))
        );
        assert_eq!(
            taken[1]
                .as_ref()
                .map(|t| (t.encoding.as_str(), t.payload_type, t.channels)),
            Some(("OPUS", 111, Some(2)))
        );
        assert!(taken[2].is_none());
        let ports = [
            TrackPorts {
                kind: TrackKind::Video,
                port: 40000,
                rtcp_port: 40001,
            },
            TrackPorts {
                kind: TrackKind::Audio,
                port: 40002,
                rtcp_port: 40003,
            },
        ];
        let answer = answer(&sections, "127.0.0.1", "7", &ports);
        for line in [
            "m=video 40000 RTP/AVP 96",
            "a=rtpmap:96 H264/90000",
            "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f",
            "a=rtcp:40001",
            "m=audio 40002 RTP/AVP 111",
            "a=rtpmap:111 opus/48000/2",
            "a=rtcp:40003",
            "m=application 0 UDP/DTLS/SCTP 0",
        ] {
            assert!(answer.split("\r\n").any(|l| l == line), "no `{line}` in\n{answer}");
        }
    }

    #[test]
    fn webrtc_offers_and_unknown_codecs_are_refused() {
        gst::init().unwrap();
        let webrtc = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n";
        assert!(read_offer(webrtc).unwrap_err().contains("UDP/TLS/RTP/SAVPF"));
        let theora = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=video 5000 RTP/AVP 96\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:96 THEORA/90000\r\n";
        assert!(read_offer(theora).is_err());
        assert!(read_offer("hello").is_err());
    }

    /// 30 bytes 0x00..0x1d in base64 (computed with coreutils `base64`, not by the product).
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

    fn secure(crypto: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=video 5000 RTP/SAVPF 100\r\na=rtpmap:100 VP8/90000\r\na=rtcp-mux\r\n{crypto}"
        )
    }

    #[test]
    fn sdes_keys_are_taken_and_answered_with_our_own() {
        gst::init().unwrap();
        let offer = secure(&format!(
            "a=crypto:1 AEAD_AES_256_GCM inline:{KEY}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31\r\n"
        ));
        let sections = read_offer(&offer).unwrap();
        let crypto = sections[0]
            .taken
            .as_ref()
            .and_then(|t| t.crypto.as_ref())
            .expect("crypto taken");
        assert_eq!(crypto.tag, 2);
        assert_eq!(crypto.keys.receive.expose_base64(), KEY);
        assert!(rtcp_mux(&sections));
        let ports = [TrackPorts {
            kind: TrackKind::Video,
            port: 40000,
            rtcp_port: 40000,
        }];
        let answer = answer(&sections, "127.0.0.1", "7", &ports);
        assert!(!answer.contains(KEY), "the offer's key is in the answer:\n{answer}");
        let ours = answer
            .split("\r\n")
            .find_map(|l| l.strip_prefix("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"))
            .unwrap_or_else(|| panic!("no a=crypto:2 in\n{answer}"));
        assert_eq!(ours.len(), KEY.len());
        for line in ["m=video 40000 RTP/SAVPF 100", "a=rtcp-mux", "a=rtcp:40000"] {
            assert!(answer.split("\r\n").any(|l| l == line), "no `{line}` in\n{answer}");
        }
    }

    /// AEAD GCM suites (RFC 7714 §12: 16 or 32 bytes of key, 12 of salt) as SDES offers them; keys computed with
    /// coreutils `base64` from the bytes 0x00.. (28 and 44 of them).
    #[test]
    fn sdes_gcm_keys_are_taken_with_their_own_lengths() {
        gst::init().unwrap();
        for (suite, key, expected) in [
            (
                "AEAD_AES_128_GCM",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",
                SrtpSuite::AeadAes128Gcm,
            ),
            (
                "AEAD_AES_256_GCM",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis=",
                SrtpSuite::AeadAes256Gcm,
            ),
        ] {
            let sections = read_offer(&secure(&format!("a=crypto:7 {suite} inline:{key}|2^31\r\n"))).unwrap();
            let crypto = sections[0]
                .taken
                .as_ref()
                .and_then(|t| t.crypto.as_ref())
                .expect("crypto taken");
            assert_eq!((crypto.tag, crypto.keys.receive.suite), (7, expected));
            assert_eq!(crypto.keys.receive.expose_base64(), key);
            assert_eq!(crypto.keys.send.suite, expected, "our key is of the offered suite");
        }
    }

    #[test]
    fn secure_sections_without_a_usable_key_are_refused() {
        gst::init().unwrap();
        for crypto in [
            String::new(),
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31|1:4\r\n"),
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP\r\n"),
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n".to_string(),
        ] {
            let error = read_offer(&secure(&crypto)).unwrap_err();
            assert!(!error.contains(KEY), "{error}");
        }
    }
}
