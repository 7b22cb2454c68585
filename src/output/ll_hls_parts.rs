//! Where a low-latency HLS output's parts and segments end, from the frames that reach it: plain data, no
//! GStreamer (the output's appsinks hand frames in, `ll_hls` writes what comes out).
//!
//! A part ends once one more frame of the same length would take it over the part target, so no part is longer
//! than the target the playlist advertises (a single frame longer than it, after a stall, is counted as the
//! target's length: the next part's decode time starts where its frames do). A segment ends at the first keyframe
//! at least the segment's length (less a little slack) after its start, or earlier at a keyframe when waiting
//! for the next one (at most a keyframe interval away) could make the segment longer than the target duration
//! rounded: a keyframe forced mid-segment (a WHEP viewer joining) moves the encoder's next ones, and the target
//! duration may never change (RFC 8216bis §4.4.3.1), so segments may come short but never long. The part then
//! ending is the segment's last. A frame's length is known only once the next frame arrives, so a part closes
//! one frame late (a frame period of latency). Audio frames go into the part whose video they start before;
//! audio that arrives late goes into the next one. Audio decode times run on from one part to the next (the
//! encoder's timestamps are rounded down, so each part's taken alone would overlap the last by a sample).

use super::fmp4::{Sample, VIDEO_TIMESCALE};
use std::collections::VecDeque;

const NS: u64 = 1_000_000_000;

pub struct VideoFrame {
    pub data: Vec<u8>,
    pub dts_ns: u64,
    pub pts_ns: u64,
    pub keyframe: bool,
}

pub struct AudioFrame {
    pub data: Vec<u8>,
    pub pts_ns: u64,
    /// In the audio's timescale (its sample rate): 1024 for AAC-LC.
    pub duration: u32,
}

/// A closed part: its samples in each track's timescale, ready for `fmp4::fragment`.
pub struct ClosedPart {
    pub video: Vec<Sample>,
    pub video_decode_time: u64,
    pub audio: Vec<Sample>,
    pub audio_decode_time: u64,
    pub duration_ns: u64,
    /// Starts with a keyframe: decodable on its own.
    pub independent: bool,
    /// The segment ends with this part.
    pub ends_segment: bool,
}

pub struct Cutter {
    part_target_ns: u64,
    segment_ns: u64,
    slack_ns: u64,
    /// The encoder's keyframe interval: the longest a segment may wait for its next keyframe.
    keyframe_ns: u64,
    audio_rate: u32,
    /// Where the last part's audio ended, in the audio's timescale: the next part's audio starts there.
    audio_end: Option<u64>,
    /// The newest frame: its length is known once the next one comes.
    pending: Option<VideoFrame>,
    part: Vec<(VideoFrame, u64)>,
    part_ns: u64,
    segment_start_ns: Option<u64>,
    /// The length of the newest frame whose length is known.
    last_length_ns: u64,
    audio: VecDeque<AudioFrame>,
}

fn ticks(ns: u64, timescale: u32) -> u64 {
    (u128::from(ns) * u128::from(timescale) / u128::from(NS)) as u64
}

impl Cutter {
    /// `segment_ns`: the segment's length, the playlist's target duration (a whole number of seconds).
    pub fn new(part_target_ns: u64, segment_ns: u64, slack_ns: u64, keyframe_ns: u64, audio_rate: u32) -> Self {
        Self {
            part_target_ns,
            segment_ns,
            slack_ns,
            keyframe_ns,
            audio_rate,
            audio_end: None,
            pending: None,
            part: Vec::new(),
            part_ns: 0,
            segment_start_ns: None,
            last_length_ns: NS / 30,
            audio: VecDeque::new(),
        }
    }

    /// The audio's sample rate, once its caps are known (before its first frame).
    pub fn set_audio_rate(&mut self, rate: u32) {
        self.audio_rate = rate;
        self.audio_end = None;
    }

    pub fn push_audio(&mut self, frame: AudioFrame) {
        self.audio.push_back(frame);
    }

    /// Takes a video frame (in decode order, the first a keyframe); returns the parts it closed.
    pub fn push_video(&mut self, frame: VideoFrame) -> Vec<ClosedPart> {
        let mut closed = Vec::new();
        if let Some(prev) = self.pending.take() {
            // A decode time going backwards makes a frame of no length rather than a negative one; one longer
            // than a part (a stall) counts as a part's length, so no part is longer than the target.
            let length = frame.dts_ns.saturating_sub(prev.dts_ns).clamp(1, self.part_target_ns);
            self.last_length_ns = length;
            // An irregular frame that would not fit: the part ends before it.
            if !self.part.is_empty() && self.part_ns + length > self.part_target_ns {
                closed.push(self.close_part(prev.dts_ns, false));
            }
            self.part_ns += length;
            let end = prev.dts_ns + length;
            self.part.push((prev, end));
            let starts_segment = frame.keyframe
                && self
                    .segment_start_ns
                    .is_some_and(|start| self.segment_due(start, frame.dts_ns));
            if starts_segment {
                closed.push(self.close_part(frame.dts_ns, true));
                self.segment_start_ns = Some(frame.dts_ns);
            } else if self.part_ns + length > self.part_target_ns {
                // Full: one more frame like this one would not fit.
                closed.push(self.close_part(frame.dts_ns, false));
            }
        }
        self.segment_start_ns.get_or_insert(frame.dts_ns);
        self.pending = Some(frame);
        closed
    }

    /// Whether the keyframe at `dts_ns` starts a new segment (the one open started at `start_ns`): its length is
    /// up, or the next keyframe, a keyframe interval away at most, could come too late: the segment's length
    /// rounded to whole seconds (as `EXTINF` is held to the target duration) would pass the target.
    fn segment_due(&self, start_ns: u64, dts_ns: u64) -> bool {
        let up = dts_ns + self.slack_ns >= start_ns + self.segment_ns;
        let next_too_late = dts_ns + self.keyframe_ns >= start_ns + self.segment_ns + NS / 2;
        up || next_too_late
    }

    /// The end of the stream: what is left becomes the segment's last part (None if nothing is).
    pub fn finish(&mut self) -> Option<ClosedPart> {
        let last = self.pending.take()?;
        // Its length is unknown: taken as the one before it's (a 30 fps frame's if it is the only one).
        let length = self.last_length_ns;
        let end = last.dts_ns + length;
        self.part_ns += length;
        self.part.push((last, end));
        self.audio.retain(|a| a.pts_ns < end);
        Some(self.close_part(u64::MAX, true))
    }

    /// Closes the part being filled: its video, and the audio that starts before `boundary_ns`.
    fn close_part(&mut self, boundary_ns: u64, ends_segment: bool) -> ClosedPart {
        let frames = std::mem::take(&mut self.part);
        let duration_ns = std::mem::take(&mut self.part_ns);
        let video_decode_time = frames.first().map_or(0, |(f, _)| ticks(f.dts_ns, VIDEO_TIMESCALE));
        let independent = frames.first().is_some_and(|(f, _)| f.keyframe);
        let video = frames
            .into_iter()
            .map(|(f, next_dts)| {
                let dts = ticks(f.dts_ns, VIDEO_TIMESCALE);
                Sample {
                    duration: ticks(next_dts, VIDEO_TIMESCALE).saturating_sub(dts) as u32,
                    composition_offset: (ticks(f.pts_ns, VIDEO_TIMESCALE) as i64 - dts as i64) as i32,
                    keyframe: f.keyframe,
                    data: f.data,
                }
            })
            .collect();
        let mut audio = Vec::new();
        let mut audio_decode_time = 0;
        while let Some(a) = self.audio.front().filter(|a| a.pts_ns < boundary_ns) {
            if audio.is_empty() {
                // Where the last part's audio ended, unless the timestamps moved on (a gap) or back by more
                // than half a frame: then they are where this part's audio starts.
                let stamped = ticks(a.pts_ns, self.audio_rate);
                audio_decode_time = self
                    .audio_end
                    .filter(|end| end.abs_diff(stamped) <= u64::from(a.duration / 2))
                    .unwrap_or(stamped);
                self.audio_end = Some(audio_decode_time);
            }
            let Some(a) = self.audio.pop_front() else { break };
            self.audio_end = self.audio_end.map(|end| end + u64::from(a.duration));
            audio.push(Sample {
                data: a.data,
                duration: a.duration,
                composition_offset: 0,
                keyframe: true,
            });
        }
        ClosedPart {
            video,
            video_decode_time,
            audio,
            audio_decode_time,
            duration_ns,
            independent,
            ends_segment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AudioFrame, Cutter, VideoFrame};

    const MS: u64 = 1_000_000;

    fn frame(n: u64, keyframe: bool) -> VideoFrame {
        // 25 fps: 40 ms a frame, so the expectations are whole milliseconds.
        VideoFrame {
            data: vec![n as u8],
            dts_ns: n * 40 * MS,
            pts_ns: n * 40 * MS,
            keyframe,
        }
    }

    #[test]
    fn parts_stay_under_the_target_and_segments_start_on_the_first_keyframe_due() {
        // Parts of at most 334 ms (8 frames of 40 ms), segments of 1 s, keyframes every 30 frames (1.2 s).
        let mut cutter = Cutter::new(334 * MS, 1000 * MS, 250 * MS, 1200 * MS, 48_000);
        let mut parts = Vec::new();
        for n in 0..61 {
            if n % 2 == 0 {
                cutter.push_audio(AudioFrame {
                    data: vec![0xa0],
                    pts_ns: n * 40 * MS,
                    duration: 1024,
                });
            }
            parts.extend(cutter.push_video(frame(n, n % 30 == 0)));
        }
        parts.extend(cutter.finish());
        let summary: Vec<(u64, bool, bool, usize)> = parts
            .iter()
            .map(|p| (p.duration_ns / MS, p.independent, p.ends_segment, p.video.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (320, true, false, 8),
                (320, false, false, 8),
                (320, false, false, 8),
                (240, false, true, 6), // cut at the keyframe at 1.2 s
                (320, true, false, 8),
                (320, false, false, 8),
                (320, false, false, 8),
                (240, false, true, 6),
                (40, true, true, 1), // frame 60, alone at the end, as long as the one before
            ]
        );
        // Video decode times in 90 kHz ticks, audio in 48 kHz ones; audio goes with the video it starts before.
        assert_eq!(parts[1].video_decode_time, 8 * 3600);
        assert_eq!(parts[1].video[0].duration, 3600);
        assert_eq!(parts[1].audio_decode_time, 320 * 48);
        assert_eq!(parts[1].audio.len(), 4);
        assert_eq!(
            parts.iter().map(|p| p.audio.len()).sum::<usize>(),
            31,
            "every audio frame, once"
        );
    }

    /// (duration in ms, ends a segment) of each part, and the segments' lengths in ms.
    fn segments(parts: &[super::ClosedPart]) -> Vec<u64> {
        let mut out = vec![0];
        for p in parts {
            *out.last_mut().unwrap() += p.duration_ns / MS;
            if p.ends_segment {
                out.push(0);
            }
        }
        out.pop();
        out
    }

    #[test]
    fn a_keyframe_forced_mid_segment_ends_the_segment_early_rather_than_one_too_long() {
        // Segments and keyframes of 1 s at 25 fps; a keyframe forced at frame 38 (1.52 s) and the encoder's next
        // ones a keyframe interval after it (2.52 s, 3.52 s). Waiting for the one at 2.52 s would make a segment
        // of 1.52 s, which rounds to 2 s, over the target: the segment ends at the forced keyframe instead.
        let mut cutter = Cutter::new(334 * MS, 1000 * MS, 250 * MS, 1000 * MS, 48_000);
        let mut parts = Vec::new();
        for n in 0..101 {
            let keyframe = n == 0 || n == 25 || (n >= 38 && (n - 38) % 25 == 0);
            parts.extend(cutter.push_video(frame(n, keyframe)));
        }
        assert_eq!(segments(&parts), [1000, 520, 1000, 1000]);
        // A keyframe forced early enough that the next one still makes a segment of under 1.5 s: no early cut.
        let mut cutter = Cutter::new(334 * MS, 1000 * MS, 250 * MS, 1000 * MS, 48_000);
        let mut parts = Vec::new();
        for n in 0..76 {
            let keyframe = n == 0 || n == 25 || (n >= 35 && (n - 35) % 25 == 0);
            parts.extend(cutter.push_video(frame(n, keyframe)));
        }
        assert_eq!(segments(&parts), [1000, 1400]);
    }

    #[test]
    fn a_stalled_frame_is_cut_to_the_part_target_and_a_decode_time_going_back_does_not_panic() {
        let mut cutter = Cutter::new(334 * MS, 1000 * MS, 250 * MS, 1000 * MS, 48_000);
        let mut parts = Vec::new();
        let at = |ms: u64, keyframe: bool| VideoFrame {
            data: vec![0],
            dts_ns: ms * MS,
            pts_ns: ms * MS,
            keyframe,
        };
        // 40 ms frames, then a stall of 600 ms, then a frame stamped before the one before it.
        for (ms, keyframe) in [
            (0, true),
            (40, false),
            (80, false),
            (680, false),
            (720, false),
            (700, false),
        ] {
            parts.extend(cutter.push_video(at(ms, keyframe)));
        }
        parts.extend(cutter.push_video(at(740, false)));
        parts.extend(cutter.finish());
        for p in &parts {
            assert!(p.duration_ns <= 334 * MS, "a part of {} ns", p.duration_ns);
            let ticks: u64 = p.video.iter().map(|s| u64::from(s.duration)).sum();
            assert!(ticks <= 334 * 90, "a part of {ticks} ticks");
        }
        let stalled = parts
            .iter()
            .find(|p| p.video_decode_time == 80 * 90)
            .expect("the stalled frame's part");
        assert_eq!(stalled.video[0].duration, 334 * 90);
        assert_eq!(
            parts.iter().map(|p| p.video.len()).sum::<usize>(),
            7,
            "every frame, once"
        );
    }

    #[test]
    fn audio_decode_times_run_on_across_parts_and_start_again_after_a_gap() {
        let mut cutter = Cutter::new(334 * MS, 1000 * MS, 250 * MS, 1000 * MS, 48_000);
        let mut parts = Vec::new();
        // AAC frames of 1024 samples at 48 kHz (21.333 ms), their timestamps rounded down to the nanosecond as
        // an encoder's are; from frame 40 on, 100 ms (4800 samples) later: a gap.
        let audio_pts = |k: u64| k * 1_000_000_000 * 1024 / 48_000 + if k >= 40 { 100 * MS } else { 0 };
        // Video at 30 fps: parts of ten frames (333.3 ms) hold 16 or 15 audio frames, so parts start on audio
        // timestamps that are rounded down (those of frames 16 and 32).
        let video = |n: u64| VideoFrame {
            data: vec![0],
            dts_ns: n * 1_000_000_000 / 30,
            pts_ns: n * 1_000_000_000 / 30,
            keyframe: n.is_multiple_of(30),
        };
        let mut k = 0;
        for n in 0..60 {
            while audio_pts(k) < (n + 1) * 1_000_000_000 / 30 {
                cutter.push_audio(AudioFrame {
                    data: vec![0xa0],
                    pts_ns: audio_pts(k),
                    duration: 1024,
                });
                k += 1;
            }
            parts.extend(cutter.push_video(video(n)));
        }
        let mut first = 0;
        let mut checked = (0, 0);
        for p in parts.iter().filter(|p| !p.audio.is_empty()) {
            if first < 40 {
                assert_eq!(
                    p.audio_decode_time,
                    first * 1024,
                    "the part from frame {first}: no overlap, no gap"
                );
                checked.0 += 1;
            } else if p.audio_decode_time.abs_diff(first * 1024 + 4800) > 1 {
                panic!("the part from frame {first} starts at {}", p.audio_decode_time);
            } else {
                checked.1 += 1;
            }
            first += p.audio.len() as u64;
        }
        assert!(checked.0 >= 2 && checked.1 >= 2, "{checked:?}");
    }
}
