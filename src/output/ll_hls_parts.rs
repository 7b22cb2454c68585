//! Where a low-latency HLS output's parts and segments end, from the frames that reach it: plain data, no
//! GStreamer (the output's appsinks hand frames in, `ll_hls` writes what comes out).
//!
//! A part ends once one more frame of the same length would take it over the part target, so no part is longer
//! than the target the playlist advertises; a segment ends at the first keyframe at least the segment's length
//! (less a little slack) after its start, and the part then ending is the segment's last. A frame's length is
//! known only once the next frame arrives, so a part closes one frame late (a frame period of latency). Audio
//! frames go into the part whose video they start before; audio that arrives late goes into the next one.

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
    audio_rate: u32,
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
    pub fn new(part_target_ns: u64, segment_ns: u64, slack_ns: u64, audio_rate: u32) -> Self {
        Self {
            part_target_ns,
            segment_ns,
            slack_ns,
            audio_rate,
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
    }

    pub fn push_audio(&mut self, frame: AudioFrame) {
        self.audio.push_back(frame);
    }

    /// Takes a video frame (in decode order, the first a keyframe); returns the parts it closed.
    pub fn push_video(&mut self, frame: VideoFrame) -> Vec<ClosedPart> {
        let mut closed = Vec::new();
        if let Some(prev) = self.pending.take() {
            let length = frame.dts_ns.saturating_sub(prev.dts_ns).max(1);
            self.last_length_ns = length;
            // An irregular frame that would not fit: the part ends before it.
            if !self.part.is_empty() && self.part_ns + length > self.part_target_ns {
                closed.push(self.close_part(prev.dts_ns, false));
            }
            self.part_ns += length;
            self.part.push((prev, frame.dts_ns));
            let starts_segment = frame.keyframe
                && self
                    .segment_start_ns
                    .is_some_and(|start| frame.dts_ns + self.slack_ns >= start + self.segment_ns);
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
                    duration: (ticks(next_dts, VIDEO_TIMESCALE) - dts) as u32,
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
                audio_decode_time = ticks(a.pts_ns, self.audio_rate);
            }
            let Some(a) = self.audio.pop_front() else { break };
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
        let mut cutter = Cutter::new(334 * MS, 1000 * MS, 250 * MS, 48_000);
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
}
