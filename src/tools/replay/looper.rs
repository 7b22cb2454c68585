//! Where each packet of a looped clip goes out: its RTP sequence number and timestamp rewritten so the receiver
//! sees one continuous stream across the loop point, and the wall-clock instant it is due. Pure arithmetic.
//!
//! The clip's packets carry timestamps relative to its start (`ts`, in clock-rate ticks) and are numbered from 0;
//! the clip lasts `period` ticks (its last frame's duration included), so the loop point steps the timestamp by
//! exactly one frame (or audio packet) duration, and sequence numbers by one.

/// One packet of a clip, as the looper sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Timestamp from the clip's start, in clock-rate ticks.
    pub ts: u32,
    /// First packet of a keyframe: a receiver can start decoding here.
    pub keyframe_start: bool,
}

/// A packet as it leaves: which clip packet, its RTP sequence number and timestamp, and when it is due (ms since
/// the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Out {
    pub index: usize,
    pub seq: u16,
    pub ts: u32,
    pub due_ms: u64,
}

/// Walks a clip round and round from a start packet.
#[derive(Debug, Clone)]
pub struct Looper {
    slots: Vec<Slot>,
    period: u32,
    clock_rate: u32,
    /// Wall-clock ms at which a loop (the one the first packet belongs to) started: the clip's time 0.
    loop_origin_ms: u64,
    seq_base: u16,
    ts_base: u32,
    index: usize,
    /// Loops completed since the start.
    laps: u32,
    /// Packets sent so far.
    sent: u32,
}

impl Looper {
    /// Starts at `start` (an index of `slots`) in the loop that began at `loop_origin_ms`; the first packet goes
    /// out as `seq_base`/`ts_base + slots[start].ts`.
    pub fn new(
        slots: Vec<Slot>,
        period: u32,
        clock_rate: u32,
        loop_origin_ms: u64,
        start: usize,
        seq_base: u16,
        ts_base: u32,
    ) -> Self {
        assert!(start < slots.len(), "start packet outside the clip");
        Self {
            slots,
            period,
            clock_rate,
            loop_origin_ms,
            seq_base,
            ts_base,
            index: start,
            laps: 0,
            sent: 0,
        }
    }

    /// The clip's length in ms.
    pub fn period_ms(&self) -> u64 {
        u64::from(self.period) * 1000 / u64::from(self.clock_rate)
    }
}

impl Iterator for Looper {
    type Item = Out;

    fn next(&mut self) -> Option<Out> {
        let slot = self.slots[self.index];
        let ticks = u64::from(self.laps) * u64::from(self.period) + u64::from(slot.ts);
        let out = Out {
            index: self.index,
            seq: self.seq_base.wrapping_add(self.sent as u16),
            ts: self
                .ts_base
                .wrapping_add(slot.ts)
                .wrapping_add(self.laps.wrapping_mul(self.period)),
            due_ms: self.loop_origin_ms + ticks * 1000 / u64::from(self.clock_rate),
        };
        self.sent = self.sent.wrapping_add(1);
        self.index += 1;
        if self.index == self.slots.len() {
            self.index = 0;
            self.laps += 1;
        }
        Some(out)
    }
}

/// Where to start a clip of `period_ms` so that, sent from `now_ms` on, every packet goes out at the wall-clock
/// instant congruent (modulo the period) to its place in the clip: the loop's origin and the first packet at or
/// after `now_ms` (a keyframe start when `keyframes_only`). A clock stamp painted with the clip's own time then
/// reads as the wall clock modulo the period.
pub fn start_at(slots: &[Slot], clock_rate: u32, period_ms: u64, now_ms: u64, keyframes_only: bool) -> (u64, usize) {
    let origin = now_ms - now_ms % period_ms;
    let at_ms = |slot: &Slot| u64::from(slot.ts) * 1000 / u64::from(clock_rate);
    let candidates = || {
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !keyframes_only || s.keyframe_start)
    };
    match candidates().find(|(_, s)| origin + at_ms(s) >= now_ms) {
        Some((index, _)) => (origin, index),
        // Past the last candidate of this loop: the first of the next.
        None => (origin + period_ms, candidates().next().map_or(0, |(i, _)| i)),
    }
}

/// Writes `seq` and `ts` into an RTP packet's fixed header (false when it is too short to be one).
pub fn rewrite_header(packet: &mut [u8], seq: u16, ts: u32) -> bool {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return false;
    }
    packet[2..4].copy_from_slice(&seq.to_be_bytes());
    packet[4..8].copy_from_slice(&ts.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video_clip() -> Vec<Slot> {
        // Three frames at 30 fps (3000 ticks apart), the first and the third split into two packets.
        let slot = |ts, keyframe_start| Slot { ts, keyframe_start };
        vec![
            slot(0, true),
            slot(0, false),
            slot(3000, false),
            slot(6000, false),
            slot(6000, false),
        ]
    }

    #[test]
    fn sequence_numbers_and_timestamps_run_on_across_the_loop_point() {
        let looper = Looper::new(video_clip(), 9000, 90_000, 1_000_000, 0, 65_534, 4_294_958_000);
        let out: Vec<(usize, u16, u32, u64)> = looper.take(8).map(|o| (o.index, o.seq, o.ts, o.due_ms)).collect();
        assert_eq!(
            out,
            vec![
                (0, 65_534, 4_294_958_000, 1_000_000),
                (1, 65_535, 4_294_958_000, 1_000_000),
                (2, 0, 4_294_961_000, 1_000_033),
                (3, 1, 4_294_964_000, 1_000_066),
                (4, 2, 4_294_964_000, 1_000_066),
                // The loop point: one frame (3000 ticks) after the last frame, the next sequence number.
                (0, 3, 4_294_967_000, 1_000_100),
                (1, 4, 4_294_967_000, 1_000_100),
                // The timestamp wraps past 2^32 like any RTP clock.
                (2, 5, 2_704, 1_000_133),
            ]
        );
    }

    #[test]
    fn a_start_inside_the_clip_keeps_its_place_in_time() {
        let looper = Looper::new(video_clip(), 9000, 90_000, 1_000_000, 3, 100, 0);
        let out: Vec<(usize, u16, u32, u64)> = looper.take(4).map(|o| (o.index, o.seq, o.ts, o.due_ms)).collect();
        assert_eq!(
            out,
            vec![
                (3, 100, 6000, 1_000_066),
                (4, 101, 6000, 1_000_066),
                (0, 102, 9000, 1_000_100),
                (1, 103, 9000, 1_000_100),
            ]
        );
    }

    #[test]
    fn audio_packets_are_twenty_ms_apart_through_the_loop_point() {
        let slots: Vec<Slot> = (0..3)
            .map(|i| Slot {
                ts: i * 960,
                keyframe_start: true,
            })
            .collect();
        let due: Vec<u64> = Looper::new(slots, 2880, 48_000, 0, 0, 0, 0)
            .take(7)
            .map(|o| o.due_ms)
            .collect();
        assert_eq!(due, vec![0, 20, 40, 60, 80, 100, 120]);
    }

    #[test]
    fn the_start_is_the_next_keyframe_in_wall_clock_phase() {
        // A 10 s clip with keyframes at 0 s, 1 s and 5 s (30 fps, 90 kHz).
        let slots: Vec<Slot> = (0..300)
            .map(|frame| Slot {
                ts: frame * 3000,
                keyframe_start: frame == 0 || frame == 30 || frame == 150,
            })
            .collect();
        // 12:00:03.200 into a loop that started at 12:00:00 (a multiple of 10 s): the keyframe at 5 s.
        let origin = 1_764_504_000_000;
        assert_eq!(start_at(&slots, 90_000, 10_000, origin + 3_200, true), (origin, 150));
        // 0.5 s in: the keyframe at 1 s.
        assert_eq!(start_at(&slots, 90_000, 10_000, origin + 500, true), (origin, 30));
        // 7 s in: no keyframe left in this loop; the first of the next.
        assert_eq!(
            start_at(&slots, 90_000, 10_000, origin + 7_000, true),
            (origin + 10_000, 0)
        );
        // Any packet will do: the frame at 7 s.
        assert_eq!(start_at(&slots, 90_000, 10_000, origin + 7_000, false), (origin, 210));
    }

    #[test]
    fn the_header_takes_the_new_numbers_and_nothing_else_changes() {
        let mut packet = vec![0x80, 96, 0x12, 0x34, 1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0xdd, 0x55];
        assert!(rewrite_header(&mut packet, 0xbeef, 0x0102_0304 + 5));
        assert_eq!(
            packet,
            vec![0x80, 96, 0xbe, 0xef, 1, 2, 3, 9, 0xaa, 0xbb, 0xcc, 0xdd, 0x55]
        );
        assert!(!rewrite_header(&mut [0x80, 96, 0], 1, 1), "too short");
        assert!(!rewrite_header(&mut [0x40; 12], 1, 1), "not RTP version 2");
    }
}
