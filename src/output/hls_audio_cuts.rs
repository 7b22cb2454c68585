//! Segments of an audio-only HLS output, cut by time.
//!
//! `mpegtsmux` passes the force-key-unit event that makes `multifilesink` start a segment on only when it arrives on a
//! video stream (1.22's `basetsmux` checks `is_video_stream`), so with AAC alone a cut marked before the muxer
//! never reaches the sink. Here the event is sent after the muxer instead, right before its first output at least
//! a segment's length after the last cut. Every AAC frame stands alone, so any of them can start a segment; the
//! muxer repeats its PAT and PMT every 100 ms, so a player that starts on a segment decodes from the first one.

use gst::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Cuts the muxed stream on `mux_src` every `segment` of its timestamps.
pub fn cut_by_time(mux_src: &gst::Pad, segment: gst::ClockTime) {
    let last_cut = Arc::new(AtomicU64::new(u64::MAX));
    let count = Arc::new(AtomicU64::new(0));
    mux_src.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |pad, info| {
            let pts = match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => buffer.pts(),
                Some(gst::PadProbeData::BufferList(list)) => list.get(0).and_then(|b| b.pts()),
                _ => None,
            };
            let Some(pts) = pts else {
                return gst::PadProbeReturn::Ok;
            };
            let last = last_cut.load(Ordering::Relaxed);
            // The first output opens the first segment: nothing to cut.
            if last == u64::MAX {
                last_cut.store(pts.nseconds(), Ordering::Relaxed);
                return gst::PadProbeReturn::Ok;
            }
            if pts < gst::ClockTime::from_nseconds(last) + segment {
                return gst::PadProbeReturn::Ok;
            }
            last_cut.store(pts.nseconds(), Ordering::Relaxed);
            super::hls::push_cut(pad, pts, count.fetch_add(1, Ordering::Relaxed) as u32 + 1);
            gst::PadProbeReturn::Ok
        },
    );
}
