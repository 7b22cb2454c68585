//! Sync marks for measuring audio/video offset end to end: once a second the picture is white for one frame and
//! a beep starts at the same instant (both from the pipeline's running time); the rest is black and silent.
//! Reading the output back, the time from each flash to its beep is the A/V offset the chain added.

use gst::prelude::*;

/// Length of each beep.
pub const BEEP: gst::ClockTime = gst::ClockTime::from_mseconds(100);

fn into_second(t: gst::ClockTime) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(t.nseconds() % gst::ClockTime::SECOND.nseconds())
}

/// Paints I420 frames leaving `pad`: white when the frame starts within the first frame of a second, else black.
pub fn mark_video(pad: &gst::Pad, frame: gst::ClockTime) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let white = buffer.pts().is_some_and(|pts| into_second(pts) < frame);
        let buffer = buffer.make_mut();
        if let Ok(mut map) = buffer.map_writable() {
            let data = map.as_mut_slice();
            // I420: luma is the first two thirds, chroma neutral for both black and white.
            let luma = data.len() * 2 / 3;
            data[..luma].fill(if white { 235 } else { 16 });
            data[luma..].fill(128);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Silences S16 mono audio leaving `pad` except for the first `BEEP` of every second.
pub fn mark_audio(pad: &gst::Pad, rate: u64) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let buffer = buffer.make_mut();
        if let Ok(mut map) = buffer.map_writable() {
            for (i, sample) in map.as_mut_slice().chunks_exact_mut(2).enumerate() {
                let t = pts + gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / rate);
                if into_second(t) >= BEEP {
                    sample.fill(0);
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}
