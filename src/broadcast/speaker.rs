//! Active speaker from decoded audio levels, with hysteresis: someone must be the loudest voice for `HOLD`
//! before they take the floor, so a cough or a short interjection does not flip the picture.

use std::time::{Duration, Instant};

/// Level (RMS, 0..1 of full scale) below which nobody is speaking: about -40 dBFS.
pub const SPEAKING_LEVEL: f32 = 0.01;
pub const HOLD: Duration = Duration::from_millis(900);

#[derive(Debug, Default)]
pub struct SpeakerTracker {
    current: Option<String>,
    candidate: Option<(String, Instant)>,
    /// Everyone who held the floor, most recent first.
    recent: Vec<String>,
}

impl SpeakerTracker {
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    pub fn recent(&self) -> &[String] {
        &self.recent
    }

    /// Feeds the latest levels; returns true when the speaker changed.
    pub fn update(&mut self, now: Instant, levels: &[(String, f32)]) -> bool {
        let loudest = levels
            .iter()
            .filter(|(_, level)| *level >= SPEAKING_LEVEL)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id.clone());
        let Some(loudest) = loudest else {
            self.candidate = None;
            return false;
        };
        if self.current.as_ref() == Some(&loudest) {
            self.candidate = None;
            return false;
        }
        match &self.candidate {
            Some((id, since)) if *id == loudest => {
                if now.duration_since(*since) >= HOLD {
                    self.recent.retain(|r| *r != loudest);
                    self.recent.insert(0, loudest.clone());
                    self.current = Some(loudest);
                    self.candidate = None;
                    return true;
                }
                false
            }
            _ => {
                self.candidate = Some((loudest, now));
                false
            }
        }
    }

    /// Forgets a participant who left.
    pub fn remove(&mut self, id: &str) {
        if self.current.as_deref() == Some(id) {
            self.current = None;
        }
        self.candidate = self.candidate.take().filter(|(c, _)| c != id);
        self.recent.retain(|r| r != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(loud: &[&str]) -> Vec<(String, f32)> {
        ["a", "b"]
            .iter()
            .map(|id| (id.to_string(), if loud.contains(id) { 0.3 } else { 0.0 }))
            .collect()
    }

    #[test]
    fn takes_the_floor_after_hold_and_ignores_short_bursts() {
        let t0 = Instant::now();
        let mut s = SpeakerTracker::default();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(!s.update(at(0), &levels(&["a"])));
        assert!(!s.update(at(500), &levels(&["a"])));
        assert!(s.update(at(900), &levels(&["a"])));
        assert_eq!(s.current(), Some("a"));
        // b coughs for 300 ms: no change.
        assert!(!s.update(at(1100), &levels(&["b"])));
        assert!(!s.update(at(1400), &levels(&["b"])));
        assert!(!s.update(at(1500), &levels(&[])));
        assert_eq!(s.current(), Some("a"));
        // Silence keeps the last speaker.
        assert!(!s.update(at(5000), &levels(&[])));
        assert_eq!(s.current(), Some("a"));
        // b talks for real.
        assert!(!s.update(at(6000), &levels(&["b"])));
        assert!(s.update(at(7000), &levels(&["b"])));
        assert_eq!(s.recent(), &["b".to_string(), "a".to_string()]);
        s.remove("b");
        assert_eq!(s.current(), None);
    }
}
