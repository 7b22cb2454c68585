//! A broadcast played back from the RTMP ingest for the bench's readers: each decoded picture (I420) comes with the
//! wall clock at which its encoded frame came out of the ingest (a probe on the demuxer, matched by PTS), so the
//! bench's own decode is not counted in what it times.

use anyhow::{Context, Result};
use gst::prelude::*;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Encoded frames waiting for their decoded picture; more than a GOP of backlog means something is lost.
const MAX_PENDING: usize = 256;

/// The sinks do not preroll: nginx-rtmp sends a new player audio at once but video only from the next keyframe,
/// and a pipeline waiting in PAUSED for the video sink's first frame would block the demuxer on the audio sink.
/// The queue keeps decoding off the demuxer's thread, where the arrival time is taken.
const PLAYBACK: &str = "rtmp2src name=src ! flvdemux name=demux \
    demux.video ! queue ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 \
    ! appsink name=frames sync=false async=false \
    demux.audio ! fakesink sync=false async=false";

/// One decoded output frame.
pub struct DecodedFrame<'a> {
    /// The I420 picture, luma plane first.
    pub data: &'a [u8],
    /// Bytes per luma row.
    pub stride: usize,
    /// Wall-clock ms at which its encoded frame left the demuxer; None when no arrival of its PTS was noted.
    pub arrived_ms: Option<u64>,
}

pub struct Playback {
    pipeline: gst::Pipeline,
}

impl Playback {
    /// Starts playing `url`, handing every decoded frame to `on_frame` (on the playback's streaming thread).
    pub fn start(url: &str, mut on_frame: impl FnMut(DecodedFrame) + Send + 'static) -> Result<Self> {
        crate::gst_util::init()?;
        let pipeline = gst::parse::launch(PLAYBACK)?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow::anyhow!("the playback is not a pipeline"))?;
        let by_name = |name: &str| {
            pipeline
                .by_name(name)
                .with_context(|| format!("{name} in the playback"))
        };
        by_name("src")?.set_property("location", url);
        // (PTS, wall-clock ms) of each encoded frame the demuxer handed out.
        let arrivals = Arc::new(Mutex::new(VecDeque::<(gst::ClockTime, u64)>::new()));
        let noted = arrivals.clone();
        by_name("demux")?.connect_pad_added(move |_, pad| {
            if pad.name().starts_with("video") {
                note_arrivals(pad, noted.clone());
            }
        });
        let sink = by_name("frames")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| anyhow::anyhow!("frames is not an appsink"))?;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Some(width) = caps.structure(0).and_then(|s| s.get::<i32>("width").ok()) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Some(pts) = buffer.pts() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Ok(map) = buffer.map_readable() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let arrived_ms = {
                        let mut arrivals = arrivals.lock().unwrap();
                        match arrivals.iter().position(|(p, _)| *p == pts) {
                            // Frames before it were never decoded (before a keyframe): they will not be asked for.
                            Some(at) => arrivals.drain(..=at).next_back().map(|(_, ms)| ms),
                            None => None,
                        }
                    };
                    on_frame(DecodedFrame {
                        data: &map,
                        // appsink takes no video meta, so the decoder hands over GStreamer's default I420 layout.
                        stride: (width as usize).next_multiple_of(4),
                        arrived_ms,
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .context("starting the playback")?;
        Ok(Self { pipeline })
    }

    /// Stops playing. A playback error is reported, not fatal: the other figures of the run still count.
    pub fn stop(self) {
        if let Some(bus) = self.pipeline.bus() {
            if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
                if let gst::MessageView::Error(e) = msg.view() {
                    eprintln!("bench playback: {}", crate::gst_util::describe_error(e));
                }
            }
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Notes the wall clock at which each encoded frame leaves the demuxer.
fn note_arrivals(pad: &gst::Pad, arrivals: Arc<Mutex<VecDeque<(gst::ClockTime, u64)>>>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let now = crate::wall_clock::now_ms();
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            let mut arrivals = arrivals.lock().unwrap();
            if arrivals.len() == MAX_PENDING {
                arrivals.pop_front();
            }
            arrivals.push_back((pts, now));
        }
        gst::PadProbeReturn::Ok
    });
}
