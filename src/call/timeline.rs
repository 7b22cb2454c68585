//! Every timestamp conversion between the pipelines of a broadcast: the participants' legs, the mixer and the
//! outputs. Media crosses pipelines as buffers handed from an appsink (or a pad probe) to an appsrc, and each
//! pipeline has its own running time; this module is the one place that moves timestamps between them.
//!
//! Invariants:
//! - Every pipeline runs on the system clock (none of their elements provides a clock, so GStreamer picks the
//!   one system clock for all): a clock time is the same instant in every pipeline.
//! - A buffer's clock time = its pipeline's base time + its running time (its PTS through its segment).
//! - A buffer enters another pipeline at running time = clock time - that pipeline's base time; an instant before
//!   that pipeline started has no place on its timeline and is dropped.
//! - The outputs' timeline is the mixer's running time, whatever segment its encoders used (x264enc starts its
//!   own at 1000 h): audio at the mixer's running time, video `AAC_ENCODER_DELAY` later, so what the mixer saw
//!   and heard together plays together. A participant's H.264 forwarded as is (zero-transcode) lands where the
//!   mixer's encode of the same instant would have.

/// The AAC encoder (avenc_aac) starts its output with 1024 samples of priming that decoders play, and stamps
/// its frames as if there were none: every sound comes out 1024 samples (21.3 ms at 48 kHz) after its timestamp.
/// Video is stamped that much later to match (audio cannot move earlier than the start of the timeline).
pub const AAC_ENCODER_DELAY: gst::ClockTime = gst::ClockTime::from_nseconds(1024 * 1_000_000_000 / 48_000);

/// A timestamp `pts` in `segment` of a pipeline started at `base_time`, as clock time.
pub fn to_clock_time(
    segment: &gst::FormattedSegment<gst::ClockTime>,
    pts: gst::ClockTime,
    base_time: gst::ClockTime,
) -> Option<gst::ClockTime> {
    segment.to_running_time(pts).map(|rt| rt + base_time)
}

/// A clock time as running time of a pipeline started at `base_time`; `None` before it started.
pub fn to_running_time(clock_time: gst::ClockTime, base_time: gst::ClockTime) -> Option<gst::ClockTime> {
    clock_time.checked_sub(base_time)
}

/// A participant's video frame at `clock_time`, on the outputs' timeline (the mixer started at
/// `mixer_base_time`); `None` for a frame from before the mixer started.
pub fn participant_video_to_output(
    clock_time: gst::ClockTime,
    mixer_base_time: gst::ClockTime,
) -> Option<gst::ClockTime> {
    to_running_time(clock_time, mixer_base_time).map(|rt| rt + AAC_ENCODER_DELAY)
}

/// A participant's media as received (either track) at `clock_time`, on the outputs' timeline: where the
/// composite presents the same instant (its video is stamped `AAC_ENCODER_DELAY` late, and its sound plays that
/// late behind the AAC priming), so a participant's track recording lines up with the composite to the frame.
/// `None` for media from before the mixer started.
pub fn participant_track_to_output(
    clock_time: gst::ClockTime,
    mixer_base_time: gst::ClockTime,
) -> Option<gst::ClockTime> {
    participant_video_to_output(clock_time, mixer_base_time)
}

/// A time on the outputs' video timeline as the mixer's running time (where its encoder is asked for a keyframe).
pub fn output_video_to_mixer(at: gst::ClockTime) -> gst::ClockTime {
    at.saturating_sub(AAC_ENCODER_DELAY)
}

/// The mixer's encoded video sample as a buffer on the outputs' timeline.
pub fn mixer_video_to_output(sample: &gst::Sample) -> Option<gst::Buffer> {
    running_time_buffer(sample, AAC_ENCODER_DELAY)
}

/// The mixer's encoded audio sample as a buffer on the outputs' timeline.
pub fn mixer_audio_to_output(sample: &gst::Sample) -> Option<gst::Buffer> {
    running_time_buffer(sample, gst::ClockTime::ZERO)
}

/// The sample's buffer with PTS and DTS at their running time plus `delay` (DTS = PTS when it has none).
fn running_time_buffer(sample: &gst::Sample, delay: gst::ClockTime) -> Option<gst::Buffer> {
    let mut buffer = sample.buffer_owned()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let pts = segment.to_running_time(buffer.pts()?)? + delay;
    let dts = buffer
        .dts()
        .and_then(|dts| segment.to_running_time(dts))
        .map_or(pts, |dts| dts + delay);
    {
        let b = buffer.make_mut();
        b.set_pts(pts);
        b.set_dts(dts);
    }
    Some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: gst::ClockTime = gst::ClockTime::SECOND;
    const MS: gst::ClockTime = gst::ClockTime::MSECOND;

    /// A segment starting at `start` (x264enc's way: 1000 h), `base` of running time before it.
    fn segment(start: gst::ClockTime, base: gst::ClockTime) -> gst::FormattedSegment<gst::ClockTime> {
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(start);
        segment.set_time(start);
        segment.set_base(base);
        segment
    }

    fn sample(
        segment: &gst::FormattedSegment<gst::ClockTime>,
        pts: gst::ClockTime,
        dts: Option<gst::ClockTime>,
    ) -> gst::Sample {
        let mut buffer = gst::Buffer::new();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(pts);
            b.set_dts(dts);
        }
        gst::Sample::builder().buffer(&buffer).segment(segment).build()
    }

    #[test]
    fn the_aac_delay_is_1024_samples_at_48_khz() {
        assert_eq!(AAC_ENCODER_DELAY.nseconds(), 21_333_333);
    }

    #[test]
    fn a_participant_buffer_reaches_the_clock_and_a_subscriber() {
        let _glib = crate::glib_watch::watch();
        let hours = 1000 * 3600 * S;
        // Running time 2 s in a pipeline started at clock 5 s.
        let clock = to_clock_time(&segment(hours, gst::ClockTime::ZERO), hours + 2 * S, 5 * S).unwrap();
        assert_eq!(clock, 7 * S);
        // The running time of a segment after another counts the one before (`base`).
        assert_eq!(
            to_clock_time(&segment(gst::ClockTime::ZERO, 3 * S), S, 5 * S),
            Some(9 * S)
        );
        // Before the segment: no running time.
        assert_eq!(to_clock_time(&segment(hours, gst::ClockTime::ZERO), S, 5 * S), None);
        // A subscriber started at clock 6 s sees it at 1 s; one started at 8 s never had it.
        assert_eq!(to_running_time(clock, 6 * S), Some(S));
        assert_eq!(to_running_time(clock, 8 * S), None);
    }

    #[test]
    fn a_forwarded_participant_frame_lands_where_the_mixers_would() {
        let _glib = crate::glib_watch::watch();
        // The participant's frame at clock 7 s; the mixer started at clock 6 s.
        let forwarded = participant_video_to_output(7 * S, 6 * S).unwrap();
        assert_eq!(forwarded, S + AAC_ENCODER_DELAY);
        assert_eq!(
            participant_video_to_output(5 * S, 6 * S),
            None,
            "before the mixer started"
        );
        // The mixer's encode of that same instant: running time 1 s in x264enc's segment.
        let hours = 1000 * 3600 * S;
        let encoded = mixer_video_to_output(&sample(&segment(hours, gst::ClockTime::ZERO), hours + S, None)).unwrap();
        assert_eq!(encoded.pts(), Some(forwarded));
        assert_eq!(encoded.dts(), Some(forwarded), "no DTS: decoded when presented");
        // A keyframe asked for at that point of the outputs' timeline is asked of the mixer at its running time.
        assert_eq!(output_video_to_mixer(forwarded), S);
        assert_eq!(output_video_to_mixer(10 * MS), gst::ClockTime::ZERO);
    }

    #[test]
    fn a_recorded_track_lands_where_the_composite_presents_the_same_instant() {
        let _glib = crate::glib_watch::watch();
        // A participant's sound and picture at clock 7.5 s; the mixer started at clock 6 s: the composite
        // shows that picture at 1.5 s + the AAC delay and plays that sound as late (its priming).
        let at = participant_track_to_output(7 * S + 500 * MS, 6 * S).unwrap();
        assert_eq!(at, S + 500 * MS + gst::ClockTime::from_nseconds(21_333_333));
        assert_eq!(
            participant_track_to_output(5 * S, 6 * S),
            None,
            "before the mixer started"
        );
    }

    #[test]
    fn the_mixers_audio_keeps_its_running_time_and_video_its_dts() {
        let _glib = crate::glib_watch::watch();
        let seg = segment(10 * S, 2 * S);
        let audio = mixer_audio_to_output(&sample(&seg, 11 * S, None)).unwrap();
        assert_eq!((audio.pts(), audio.dts()), (Some(3 * S), Some(3 * S)));
        let video = mixer_video_to_output(&sample(&seg, 11 * S, Some(10 * S + 900 * MS))).unwrap();
        assert_eq!(video.pts(), Some(3 * S + AAC_ENCODER_DELAY));
        assert_eq!(video.dts(), Some(2 * S + 900 * MS + AAC_ENCODER_DELAY));
    }
}
