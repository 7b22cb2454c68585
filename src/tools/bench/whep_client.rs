//! A WHEP viewer for the bench: a webrtcbin that offers to receive H.264 and Opus, POSTs its offer to a
//! broadcast's WHEP endpoint and applies the answer. One viewer may decode and read the first tile's clock stamp
//! (glass-to-viewer latency: the wall clock at which the decoded picture came out of the viewer's decoder less the
//! one the publisher painted into it); the others only receive (no decode), so the machine's cores stay with the
//! server measured.

use super::latency::{percentile, Smoothness};
use crate::call::webrtc::{self, IceConfig};
use crate::layout::Rect;
use crate::tools::clock_stamp;
use anyhow::{bail, Context, Result};
use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiverDirection, WebRTCSDPType};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the viewer's jitter buffer waits for a missing packet. In-order packets pass it at once and the
/// appsink does not sync, so the latency read is up to the decoded picture, with no playout delay: a browser
/// adds its own (tens of ms on a clean network).
const VIEWER_LATENCY_MS: u32 = 50;
/// A client the server asks to slow down (429) tries again after this long, this many times.
const RETRY_AFTER: Duration = Duration::from_millis(600);
const ATTEMPTS: u32 = 20;

/// Stamps read by a decoding viewer.
#[derive(Default)]
pub struct StampTally {
    samples: Vec<i64>,
    pub unread: u64,
    pub smoothness: Smoothness,
}

impl StampTally {
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// (p50, p95, samples) of glass-to-viewer latency in ms.
    pub fn percentiles(&self) -> (Option<i64>, Option<i64>, u64) {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        (percentile(&sorted, 50), percentile(&sorted, 95), sorted.len() as u64)
    }
}

/// Where a decoding viewer reads the stamp: the tile the publisher's picture is drawn in and its size.
#[derive(Clone, Copy)]
pub struct StampReading {
    pub tile: Rect,
    pub source: (usize, usize),
}

pub struct WhepViewer {
    pipeline: gst::Pipeline,
    resource: Option<reqwest::Url>,
}

impl WhepViewer {
    /// Joins the broadcast at `endpoint` (its `/whep` URL); with `reading`, decodes video and tallies stamps.
    pub async fn join(endpoint: &str, reading: Option<(StampReading, Arc<Mutex<StampTally>>)>) -> Result<Self> {
        let pipeline = gst::Pipeline::new();
        let webrtc = webrtc::new_webrtcbin("viewer", &IceConfig::loopback(), VIEWER_LATENCY_MS)?;
        pipeline.add(&webrtc)?;
        for caps in [
            "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=102,\
             packetization-mode=(string)1,profile-level-id=(string)42e01f",
            "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111",
        ] {
            let caps: gst::Caps = caps.parse().context("viewer caps")?;
            webrtc.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
                "add-transceiver",
                &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
            );
        }
        let pipeline_weak = pipeline.downgrade();
        webrtc.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline_weak.upgrade() else {
                return;
            };
            let is_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
                .is_some_and(|m| m == "video");
            let linked = match (&reading, is_video) {
                (Some((reading, tally)), true) => link_decoder(&pipeline, pad, *reading, tally.clone()),
                _ => link_discard(&pipeline, pad),
            };
            if let Err(e) = linked {
                eprintln!("whep viewer: {e:#}");
            }
        });
        pipeline.set_state(gst::State::Playing).context("starting a viewer")?;
        webrtc::create_local(&webrtc, WebRTCSDPType::Offer).await?;
        let offer = webrtc::gathered_local_sdp(&webrtc).await?;
        let url = reqwest::Url::parse(endpoint).context("WHEP endpoint")?;
        let client = reqwest::Client::new();
        for _ in 0..ATTEMPTS {
            let response = client
                .post(url.clone())
                .header("content-type", "application/sdp")
                .body(offer.clone())
                .send()
                .await
                .context("WHEP request")?;
            let status = response.status();
            let location = response.headers().get("location").and_then(|l| l.to_str().ok());
            let resource = location.and_then(|l| url.join(l).ok());
            let body = response.text().await.unwrap_or_default();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
            if status != reqwest::StatusCode::CREATED {
                let _ = pipeline.set_state(gst::State::Null);
                bail!("WHEP endpoint answered {status}: {body}");
            }
            webrtc::set_remote(&webrtc, &body, WebRTCSDPType::Answer).await?;
            return Ok(Self { pipeline, resource });
        }
        let _ = pipeline.set_state(gst::State::Null);
        bail!("WHEP endpoint kept answering 429 after {ATTEMPTS} attempts")
    }

    /// Ends the viewer: its DELETE, then its pipeline.
    pub async fn leave(self) {
        if let Some(resource) = &self.resource {
            let _ = reqwest::Client::new().delete(resource.clone()).send().await;
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn link_discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<()> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()?;
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    pad.link(&sink.static_pad("sink").context("fakesink pad")?)?;
    Ok(())
}

fn link_decoder(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    reading: StampReading,
    tally: Arc<Mutex<StampTally>>,
) -> Result<()> {
    let bin = gst::parse::bin_from_description(
        "rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 \
         ! appsink name=frames sync=false async=false",
        true,
    )?;
    let sink = bin
        .by_name("frames")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .context("frames appsink")?;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let now = crate::wall_clock::now_ms();
                on_frame(&sample, now, reading, &tally);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.add(&bin)?;
    bin.sync_state_with_parent()?;
    pad.link(&bin.static_pad("sink").context("decoder pad")?)?;
    Ok(())
}

fn on_frame(sample: &gst::Sample, now_ms: u64, reading: StampReading, tally: &Mutex<StampTally>) {
    let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
        return;
    };
    let Some(width) = caps.structure(0).and_then(|s| s.get::<i32>("width").ok()) else {
        return;
    };
    let Ok(map) = buffer.map_readable() else { return };
    // appsink takes no video meta, so the decoder hands over GStreamer's default I420 layout.
    let stride = (width as usize).next_multiple_of(4);
    let stamp = clock_stamp::read(&map, stride, reading.tile, reading.source);
    let mut tally = tally.lock().unwrap();
    match stamp {
        None => tally.unread += 1,
        Some(glass) => {
            tally
                .smoothness
                .note(glass, 1000.0 / f64::from(crate::tools::publish::FPS));
            tally.samples.push(now_ms as i64 - glass as i64);
        }
    }
}
