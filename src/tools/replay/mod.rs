//! `callcast publish --replay`: a participant that costs next to nothing. Its media (the synthetic participant's
//! picture, clock stamp and tone) is encoded once at start into a `LOOP_S` clip of RTP packets (`clip.rs`), then
//! sent round and round from one pacing thread per track, sequence numbers and timestamps rewritten so the
//! receivers see one continuous stream (`looper.rs`). No encoder runs while it publishes.
//!
//! The clock stamp reads as the wall clock at which the frame was sent, modulo `LOOP_MS` (see `clip.rs`); a
//! reader resolves it against its own clock with `clock_stamp::resolve_looped`. A recording cannot answer a
//! keyframe request: receivers get a keyframe every second.

pub mod clip;
pub mod looper;

use crate::gst_util::make_with;
use crate::tools::publish::PublishArgs;
use anyhow::Result;
use gst::prelude::*;
use looper::Looper;
use std::time::Duration;

/// Lead between building and the first packet: the pipeline is playing by then.
const START_LEAD_MS: u64 = 200;

/// The replayed tracks: a tee per track (video first unless `--no-video`) and its RTP caps, as
/// `publish::build_tracks` gives them.
pub fn build_tracks(args: &PublishArgs) -> Result<(gst::Pipeline, Vec<(gst::Element, gst::Caps)>)> {
    let clip = clip::record(args)?;
    let pipeline = gst::Pipeline::with_name("publisher");
    let now = crate::wall_clock::now_ms() + START_LEAD_MS;
    // Video starts at a keyframe (receivers decode from there); the other tracks at the packet due with that
    // frame, from the same loop origin, so sound and picture keep the clip's alignment.
    let first_due = match clip.first().filter(|_| !args.no_video) {
        Some(video) => {
            let (origin, start) = looper::start_at(&video.slots, video.clock_rate, clip::LOOP_MS, now, true);
            origin + u64::from(video.slots[start].ts) * 1000 / u64::from(video.clock_rate)
        }
        None => now,
    };
    let mut tracks = Vec::new();
    for track in clip {
        let (origin, start) = looper::start_at(&track.slots, track.clock_rate, clip::LOOP_MS, first_due, true);
        let src = gst_app::AppSrc::builder()
            .caps(&track.caps)
            .is_live(true)
            .do_timestamp(true)
            .format(gst::Format::Time)
            .build();
        let tee = make_with("tee", &[("allow-not-linked", "true")])?;
        pipeline.add_many([src.upcast_ref(), &tee])?;
        src.link(&tee)?;
        let looper = Looper::new(
            track.slots.clone(),
            track.period,
            track.clock_rate,
            origin,
            start,
            rand::random(),
            rand::random(),
        );
        let caps = track.caps.clone();
        pace(src, track.packets, looper)?;
        tracks.push((tee, caps));
    }
    Ok((pipeline, tracks))
}

/// Sends the track's packets from a thread of its own, each at its due time, until the pipeline stops taking
/// them.
fn pace(src: gst_app::AppSrc, packets: Vec<Vec<u8>>, looper: Looper) -> Result<()> {
    std::thread::Builder::new().name("replay-pace".into()).spawn(move || {
        // Buffers pushed before the pipeline leaves READY would be refused.
        while src.current_state() < gst::State::Paused {
            std::thread::sleep(Duration::from_millis(10));
        }
        for out in looper {
            let wait = out.due_ms.saturating_sub(crate::wall_clock::now_ms());
            if wait > 0 {
                std::thread::sleep(Duration::from_millis(wait));
            }
            let mut packet = packets[out.index].clone();
            looper::rewrite_header(&mut packet, out.seq, out.ts);
            if src.push_buffer(gst::Buffer::from_mut_slice(packet)).is_err() {
                return;
            }
        }
    })?;
    Ok(())
}
