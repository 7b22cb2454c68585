//! How much of an overlay shows while it fades in or out: its alpha over the frames' timestamps. Pure maths; the
//! layer applies the alpha as the rectangle's global alpha, so a fade never redraws a picture.

/// One overlay's fade. A fade starts at the first frame drawn after it was asked for, so it lasts its length of
/// output however late the request came relative to the frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fade {
    /// How much shows on the last frame drawn, 0..1.
    alpha: f64,
    /// Where the fade goes: 1 (on) or 0 (off, then dropped).
    target: f64,
    length_ns: u64,
    /// The first frame's timestamp and the alpha the fade started from, once a frame was drawn.
    start: Option<(u64, f64)>,
}

impl Fade {
    /// An overlay just added: fading in over `ms`, or on at once when 0.
    pub fn appearing(ms: u32) -> Self {
        let mut fade = Self {
            alpha: 0.0,
            target: 0.0,
            length_ns: 0,
            start: None,
        };
        fade.towards(1.0, ms);
        fade
    }

    /// Turns towards `target` (0 or 1) over `ms` from wherever it is now (a fade-in taken back fades out from
    /// where it got to).
    pub fn towards(&mut self, target: f64, ms: u32) {
        if self.target == target {
            return;
        }
        self.target = target;
        self.length_ns = u64::from(ms) * 1_000_000;
        self.start = None;
        if ms == 0 {
            self.alpha = target;
        }
    }

    /// Neither fading nor waiting to: nothing changes from frame to frame.
    pub fn settled(&self) -> bool {
        self.alpha == self.target
    }

    /// Faded out: to be dropped.
    pub fn gone(&self) -> bool {
        self.target == 0.0 && self.alpha == 0.0
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The alpha on the frame at `pts_ns` (None: a frame without timestamp ends the fade).
    pub fn at(&mut self, pts_ns: Option<u64>) -> f64 {
        if self.settled() {
            return self.alpha;
        }
        let Some(pts) = pts_ns else {
            self.alpha = self.target;
            return self.alpha;
        };
        let (t0, from) = *self.start.get_or_insert((pts, self.alpha));
        let done = (pts.saturating_sub(t0) as f64 / self.length_ns.max(1) as f64).min(1.0);
        self.alpha = if done >= 1.0 {
            self.target
        } else {
            from + (self.target - from) * done
        };
        self.alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_fade_in_rises_from_the_first_frame_drawn_over_its_length() {
        let mut fade = Fade::appearing(300);
        assert!(!fade.settled());
        // The first frame drawn after the change starts it at 0, whatever its timestamp.
        assert_eq!(fade.at(Some(5_000 * MS)), 0.0);
        assert_eq!(fade.at(Some(5_100 * MS)), 1.0 / 3.0);
        assert_eq!(fade.at(Some(5_150 * MS)), 0.5);
        assert_eq!(fade.at(Some(5_300 * MS)), 1.0);
        assert!(fade.settled() && !fade.gone());
    }

    #[test]
    fn a_fade_out_taken_back_halfway_fades_in_from_there() {
        let mut fade = Fade::appearing(0);
        assert!(fade.settled());
        assert_eq!(fade.alpha(), 1.0);
        fade.towards(0.0, 1000);
        fade.at(Some(0));
        assert_eq!(fade.at(Some(400 * MS)), 0.6);
        fade.towards(1.0, 200);
        assert_eq!(fade.at(Some(1000 * MS)), 0.6);
        assert_eq!(fade.at(Some(1100 * MS)), 0.8);
        assert_eq!(fade.at(Some(1200 * MS)), 1.0);
    }

    #[test]
    fn a_fade_out_ends_gone_and_a_cut_is_gone_at_once() {
        let mut fade = Fade::appearing(0);
        fade.towards(0.0, 100);
        fade.at(Some(0));
        assert!(!fade.gone());
        fade.at(Some(100 * MS));
        assert!(fade.gone());
        let mut cut = Fade::appearing(0);
        cut.towards(0.0, 0);
        assert!(cut.gone());
        // Without timestamps a fade ends at once rather than never.
        let mut blind = Fade::appearing(300);
        assert_eq!(blind.at(None), 1.0);
    }
}
