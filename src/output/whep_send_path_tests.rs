//! A real viewer answering a real receiving webrtcbin's offer, connected over loopback: a NAL unit too big for
//! one packet must reach the RTP session as one buffer list (with webrtcbin's own path it comes as one buffer per
//! packet), and a section the offer does not receive on must never hold the pushing thread.

use super::super::whep_offer;
use super::super::whep_viewer::Viewer;
use crate::call::webrtc::{self, IceConfig};
use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiverDirection, WebRTCSDPType};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webrtcbin's offer for H.264 and Opus, `audio` its audio section's direction (recvonly for a viewer).
async fn receiver_offer(audio: WebRTCRTPTransceiverDirection) -> (gst::Pipeline, gst::Element, String) {
    let pipeline = gst::Pipeline::new();
    let receiver = webrtc::new_webrtcbin("receiver", &IceConfig::loopback(), 0).unwrap();
    pipeline.add(&receiver).unwrap();
    let h264 = "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=102,\
                packetization-mode=(string)1,profile-level-id=(string)42e01f";
    for (direction, caps) in [(WebRTCRTPTransceiverDirection::Recvonly, h264), (audio, OPUS_RTP)] {
        receiver.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
            "add-transceiver",
            &[&direction, &caps.parse::<gst::Caps>().unwrap()],
        );
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    webrtc::create_local(&receiver, WebRTCSDPType::Offer).await.unwrap();
    let offer = webrtc::gathered_local_sdp(&receiver).await.unwrap();
    (pipeline, receiver, offer)
}

const OPUS_RTP: &str = "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111";

/// An H.264 access unit of one 6000-byte IDR slice: five packets at rtph264pay's MTU of 1400.
fn big_keyframe(pts: gst::ClockTime) -> gst::Buffer {
    let mut data = vec![0, 0, 0, 1, 0x65];
    data.extend(std::iter::repeat_n(0x5a, 6000));
    let mut buffer = gst::Buffer::from_mut_slice(data);
    buffer.get_mut().unwrap().set_pts(pts);
    buffer
}

#[tokio::test]
async fn a_fragmented_nal_units_packets_reach_the_rtp_session_as_one_list() {
    crate::gst_util::init().unwrap();
    let (receiver, receiver_webrtc, offer_sdp) = receiver_offer(WebRTCRTPTransceiverDirection::Recvonly).await;
    let caps: gst::Caps = "video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline"
        .parse()
        .unwrap();
    let offer = whep_offer::read(&offer_sdp, Some("constrained-baseline")).unwrap();
    let viewer = Viewer::new(
        "v-test".into(),
        &IceConfig::loopback(),
        Some(&caps),
        None,
        &offer,
        || {},
    )
    .unwrap();
    let answer = viewer.answer(&offer_sdp, &offer).await.unwrap();
    // Connected, so that packets leave (webrtcbin holds them until DTLS has its keys).
    webrtc::set_remote(&receiver_webrtc, &answer, WebRTCSDPType::Answer)
        .await
        .unwrap();

    // What the RTP session gets: (buffers, lists).
    let seen = Arc::new(Mutex::new((0u32, 0u32)));
    let session = viewer
        .webrtcbin()
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "rtpsession"))
        .expect("webrtcbin's rtpsession");
    let counts = seen.clone();
    session.static_pad("send_rtp_sink").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let mut c = counts.lock().unwrap();
            match info.data {
                Some(gst::PadProbeData::BufferList(_)) => c.1 += 1,
                _ => c.0 += 1,
            }
            gst::PadProbeReturn::Ok
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pts = gst::ClockTime::ZERO;
    while seen.lock().unwrap().1 < 3 && Instant::now() < deadline {
        viewer.push_video(&big_keyframe(pts));
        pts += gst::ClockTime::from_mseconds(33);
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    let (buffers, lists) = *seen.lock().unwrap();
    viewer.close();
    receiver.set_state(gst::State::Null).unwrap();
    assert!(
        lists >= 3,
        "frames reached the RTP session as {lists} lists and {buffers} single packets"
    );
    assert_eq!(buffers, 0, "single packets reached the RTP session (a frame split up)");
}

#[tokio::test]
async fn a_section_answered_inactive_never_holds_the_pushing_thread() {
    crate::gst_util::init().unwrap();
    // The offer's audio is sendonly, so the answer's is inactive; `whep_offer::read` would not choose it, so
    // it is chosen here by hand, as an offer read wrongly would be. Its video is received as usual.
    let (receiver, receiver_webrtc, offer_sdp) = receiver_offer(WebRTCRTPTransceiverDirection::Sendonly).await;
    let offer = whep_offer::ViewerOffer {
        video: whep_offer::read(&offer_sdp, None).unwrap().video,
        audio: Some(whep_offer::Chosen {
            mline: 1,
            pt: 111,
            caps: OPUS_RTP.parse().unwrap(),
        }),
    };
    let caps: gst::Caps = "audio/x-opus,rate=48000,channels=2,channel-mapping-family=0"
        .parse()
        .unwrap();
    let viewer = Arc::new(
        Viewer::new(
            "v-test".into(),
            &IceConfig::loopback(),
            None,
            Some(&caps),
            &offer,
            || {},
        )
        .unwrap(),
    );
    let answer = viewer.answer(&offer_sdp, &offer).await.unwrap();
    webrtc::set_remote(&receiver_webrtc, &answer, WebRTCSDPType::Answer)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !viewer.is_keyed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(viewer.is_keyed(), "the viewer's DTLS keys were not set within 10 s");
    let (done, pushed) = std::sync::mpsc::channel();
    let pushing = viewer.clone();
    std::thread::spawn(move || {
        for n in 0..5u64 {
            let mut packet = gst::Buffer::from_mut_slice(vec![0xfc; 80]);
            packet.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(60 * n));
            pushing.push_audio(&packet);
        }
        let _ = done.send(());
    });
    let returned = pushed.recv_timeout(Duration::from_secs(10)).is_ok();
    viewer.close();
    receiver.set_state(gst::State::Null).unwrap();
    assert!(returned, "pushing into a section answered inactive waited in webrtcbin");
}
