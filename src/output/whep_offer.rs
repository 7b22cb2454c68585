//! What a WHEP viewer's offer lets us send: the H.264 and Opus payload types it chose, read from its SDP.

use anyhow::{anyhow, Result};

/// One codec of the offer we send with: its section and payload type, and the offer's own description of it
/// (rtpmap, fmtp, rtcp-fb as caps), which becomes the transceiver's codec preference.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub mline: u32,
    pub pt: u8,
    pub caps: gst::Caps,
}

#[derive(Debug, Clone)]
pub struct ViewerOffer {
    pub video: Option<Chosen>,
    pub audio: Option<Chosen>,
}

/// H.264 `profile_idc` (the first byte of `profile-level-id`, in hex) of a profile as `h264parse` names it.
fn profile_idc(profile: &str) -> Option<&'static str> {
    match profile {
        "constrained-baseline" | "baseline" => Some("42"),
        "main" => Some("4d"),
        "high" => Some("64"),
        _ => None,
    }
}

/// How much we like an offered H.264 format whose `profile-level-id` is `id`, for a broadcast whose profile_idc
/// is `ours`: ours first, then the richest profile (browsers' software decoders decode any profile, whatever
/// was negotiated; Chromium offers no High).
fn rank(id: &str, ours: Option<&str>) -> u8 {
    let idc = id.get(..2).unwrap_or("");
    match idc {
        _ if Some(idc) == ours => 0,
        "64" => 1,
        "4d" => 2,
        "42" => 3,
        _ => 4,
    }
}

/// Reads the offer; `profile` is the broadcast's H.264 profile as `h264parse` names it (None before the first
/// frame). H.264 needs `packetization-mode=1` (what rtph264pay sends); among those the broadcast's profile is
/// preferred (see `rank`). The codec description keeps the offer's `profile-level-id` as offered.
pub fn read(offer: &str, profile: Option<&str>) -> Result<ViewerOffer> {
    let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).map_err(|_| anyhow!("the offer does not parse"))?;
    let ours = profile.and_then(profile_idc);
    let (mut video, mut audio) = (None, None);
    for (index, media) in sdp.medias().enumerate() {
        let mline = index as u32;
        if !receives(media) {
            continue;
        }
        let kind = media.media().unwrap_or("");
        let mut codecs = media.formats().filter_map(|f| f.parse::<u8>().ok()).filter_map(|pt| {
            let caps = media.caps_from_media(pt as i32)?;
            Some((pt, caps))
        });
        let encoding = |caps: &gst::Caps, name: &str| {
            let s = caps.structure(0).expect("caps_from_media makes one structure");
            s.get::<&str>("encoding-name")
                .is_ok_and(|n| n.eq_ignore_ascii_case(name))
        };
        let pick = match kind {
            "video" if video.is_none() => codecs
                .filter(|(_, caps)| {
                    encoding(caps, "H264")
                        && caps
                            .structure(0)
                            .is_some_and(|s| s.get::<&str>("packetization-mode").is_ok_and(|m| m == "1"))
                })
                .filter_map(|(pt, caps)| Some((pt, caps, h264_profile_level_id(media, pt)?)))
                .min_by_key(|(_, _, id)| rank(id, ours))
                .map(|(pt, mut caps, id)| {
                    let s = caps.make_mut().structure_mut(0).expect("one structure");
                    // GStreamer turned `profile-level-id` into `profile`; the answer says what was offered.
                    s.remove_fields(["profile", "level"]);
                    s.set("profile-level-id", id);
                    ((pt, caps), &mut video)
                }),
            "audio" if audio.is_none() => codecs.find(|(_, caps)| encoding(caps, "OPUS")).map(|c| (c, &mut audio)),
            _ => None,
        };
        if let Some(((pt, mut caps), slot)) = pick {
            caps.make_mut()
                .structure_mut(0)
                .expect("one structure")
                .set_name("application/x-rtp");
            *slot = Some(Chosen { mline, pt, caps });
        }
    }
    if video.is_none() && audio.is_none() {
        return Err(anyhow!(
            "the offer has neither H.264 (packetization-mode=1) video nor Opus audio to receive"
        ));
    }
    Ok(ViewerOffer { video, audio })
}

/// Whether the offer's section takes media from us: not `sendonly` or `inactive`, and not rejected (port 0
/// without `bundle-only`). webrtcbin answers the others inactive and never opens their input, so media pushed
/// for them would wait in webrtcbin for good.
fn receives(media: &gst_sdp::SDPMediaRef) -> bool {
    let has = |key: &str| media.attributes().any(|a| a.key() == key);
    let rejected = media.port() == 0 && !has("bundle-only");
    !rejected && !has("sendonly") && !has("inactive")
}

/// The offer's `profile-level-id` for H.264 payload type `pt`.
fn h264_profile_level_id(media: &gst_sdp::SDPMediaRef, pt: u8) -> Option<String> {
    let prefix = format!("{pt} ");
    let fmtp = media
        .attributes()
        .filter(|a| a.key() == "fmtp")
        .filter_map(|a| a.value())
        .find_map(|v| v.strip_prefix(&prefix))?;
    fmtp.split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("profile-level-id"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .filter(|id| id.len() == 6 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sections of a Chromium WHEP offer (recvonly video then audio), trimmed to what matters here.
    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102 103 106 112\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
a=rtpmap:103 H264/90000\r\na=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtcp-fb:103 nack pli\r\n\
a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n\
a=rtpmap:112 H264/90000\r\na=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n";

    fn chosen(c: &Option<Chosen>) -> (u32, u8) {
        let c = c.as_ref().expect("chosen");
        (c.mline, c.pt)
    }

    #[test]
    fn h264_of_the_broadcasts_profile_and_opus_are_chosen() {
        gst::init().unwrap();
        let offer = read(OFFER, Some("high")).unwrap();
        assert_eq!(chosen(&offer.video), (0, 112));
        assert_eq!(chosen(&offer.audio), (1, 111));
        assert_eq!(chosen(&read(OFFER, Some("main")).unwrap().video), (0, 106));
        assert_eq!(
            chosen(&read(OFFER, Some("constrained-baseline")).unwrap().video),
            (0, 103)
        );
        // Unknown yet, or not offered: the richest profile that is packetization-mode 1, never 0.
        assert_eq!(chosen(&read(OFFER, None).unwrap().video), (0, 112));
        let no_high = OFFER.replace(" 112\r\n", "\r\n");
        assert_eq!(chosen(&read(&no_high, Some("high")).unwrap().video), (0, 106));
        let caps = read(OFFER, Some("constrained-baseline")).unwrap().video.unwrap().caps;
        let s = caps.structure(0).unwrap();
        assert_eq!(s.name(), "application/x-rtp");
        assert_eq!(s.get::<&str>("profile-level-id").unwrap(), "42e01f");
        assert!(!s.has_field("profile"), "{s}");
    }

    #[test]
    fn sections_that_do_not_receive_are_not_chosen() {
        gst::init().unwrap();
        let video_sendonly = OFFER.replacen("a=recvonly", "a=sendonly", 1);
        let offer = read(&video_sendonly, None).unwrap();
        assert!(offer.video.is_none());
        assert_eq!(chosen(&offer.audio), (1, 111));
        let audio_inactive = OFFER.replace("a=mid:1\r\na=recvonly", "a=mid:1\r\na=inactive");
        let offer = read(&audio_inactive, None).unwrap();
        assert_eq!(chosen(&offer.video), (0, 112));
        assert!(offer.audio.is_none());
        let video_rejected = OFFER.replace("m=video 9 ", "m=video 0 ");
        assert!(read(&video_rejected, None).unwrap().video.is_none());
        let bundle_only = video_rejected.replace("a=mid:0\r\n", "a=mid:0\r\na=bundle-only\r\n");
        assert_eq!(chosen(&read(&bundle_only, None).unwrap().video), (0, 112));
        let neither = video_sendonly.replace("a=mid:1\r\na=recvonly", "a=mid:1\r\na=inactive");
        assert!(read(&neither, None).is_err());
    }

    #[test]
    fn an_offer_without_h264_or_opus_is_refused() {
        gst::init().unwrap();
        let vp8_only = OFFER.replace("96 102 103 106 112", "96").replace("111 0", "0");
        assert!(read(&vp8_only, None).is_err());
        assert!(read("not sdp", None).is_err());
    }
}
