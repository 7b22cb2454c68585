//! A `clock` or `timer` on air: the text it shows, and its next text drawn ahead, a second early, with the time
//! it takes over (the mixer switches to it on the first frame of that time). Each text is drawn once.

use super::overlays::Overlay;
use crate::mix::overlay_clock::Moment;
use crate::mix::overlay_render::Placed;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// How long after a text took over the next one is drawn ahead: the mixer switches to the text drawn ahead on the
/// first frame of its second; catching up later, when frames of that second are being composed, handing the mixer
/// the same text again changes nothing on air.
const CATCH_UP: Duration = Duration::from_millis(500);

/// Every `clock` and `timer` of a list, by overlay id, and what a timer counts from.
#[derive(Default)]
pub struct Clocks {
    ticking: HashMap<String, Ticked>,
    /// When the broadcast went live.
    live_since: Option<SystemTime>,
}

impl Clocks {
    /// The moment overlays are drawn for.
    pub fn moment(&self, now: SystemTime) -> Moment {
        Moment {
            now,
            live_since: self.live_since,
        }
    }

    pub fn went_live(&mut self, at: SystemTime) {
        self.live_since = Some(at);
    }

    /// Follows a new list's clocks and timers, as drawn at `at` (their next texts not drawn yet: `advance`).
    pub fn follow(&mut self, overlays: &[Overlay], at: Moment) {
        self.ticking = overlays
            .iter()
            .filter_map(|o| {
                let text = o.ticking_text(at)?;
                Some((o.id.clone(), Ticked { text, next: None }))
            })
            .collect();
    }

    /// Brings every clock and timer of `overlays` (with their pictures) to `at` (`Ticked::advance`); `draw`
    /// draws an overlay as at a moment. True when any changed.
    pub fn advance(
        &mut self,
        overlays: &mut [(Overlay, Option<Placed>)],
        at: Moment,
        draw: &dyn Fn(&Overlay, Moment) -> Option<Placed>,
    ) -> bool {
        let mut changed = false;
        for (overlay, placed) in overlays {
            if let Some(ticked) = self.ticking.get_mut(&overlay.id) {
                changed |= ticked.advance(overlay, placed, at, &|m| draw(overlay, m));
            }
        }
        changed
    }

    /// The next picture of overlay `id` and when it takes over, if it has one.
    pub fn then(&self, id: &str) -> Option<(&Placed, SystemTime)> {
        self.ticking.get(id)?.then()
    }

    /// When to `advance` next: half a second after the earliest text drawn ahead takes over (counted from the
    /// texts drawn ahead, not from the time asked: it stays put however often it is asked); None without any.
    pub fn due(&self) -> Option<SystemTime> {
        let next = self
            .ticking
            .values()
            .filter_map(|t| t.next.as_ref().map(|a| a.at))
            .min()?;
        Some(next + CATCH_UP)
    }
}

/// A ticking overlay's text on air and the next one.
pub struct Ticked {
    pub text: String,
    pub next: Option<Ahead>,
}

/// The text a ticking overlay shows from `at`, drawn ahead; `placed` None when it is the text on air already
/// (nothing to switch to) or draws nothing.
pub struct Ahead {
    pub at: SystemTime,
    pub text: String,
    pub placed: Option<Placed>,
}

impl Ticked {
    /// Brings `overlay` (a clock or timer, its picture in `placed`) to `at`: the text due now in place (the one
    /// drawn ahead when it matches, else drawn now), and the next one drawn ahead. `draw` draws the overlay as
    /// at a moment. True when anything changed (the mixer must be told).
    pub fn advance(
        &mut self,
        overlay: &Overlay,
        placed: &mut Option<Placed>,
        at: Moment,
        draw: &dyn Fn(Moment) -> Option<Placed>,
    ) -> bool {
        let Some(text) = overlay.ticking_text(at) else {
            return false;
        };
        let mut changed = false;
        if text != self.text {
            *placed = match self.next.take().filter(|ahead| ahead.text == text) {
                Some(ahead) if ahead.placed.is_some() => ahead.placed,
                _ => draw(at),
            };
            self.text = text;
            changed = true;
        }
        let next_at = overlay.next_tick(at);
        if self.next.as_ref().map(|ahead| ahead.at) != next_at {
            self.next = next_at.and_then(|next_at| {
                let then = Moment { now: next_at, ..at };
                let text = overlay.ticking_text(then)?;
                let placed = if text == self.text { None } else { draw(then) };
                Some(Ahead {
                    at: next_at,
                    text,
                    placed,
                })
            });
            changed = true;
        }
        changed
    }

    /// The picture drawn ahead and when it takes over, when there is one to switch to.
    pub fn then(&self) -> Option<(&Placed, SystemTime)> {
        let ahead = self.next.as_ref()?;
        Some((ahead.placed.as_ref()?, ahead.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::time::{Duration, UNIX_EPOCH};

    fn clock(format: &str) -> Overlay {
        let list = serde_json::json!([{"kind": "clock", "format": format}]);
        super::super::overlays::validate(serde_json::from_value(list).unwrap())
            .unwrap()
            .remove(0)
    }

    fn at(secs: u64, millis: u64) -> Moment {
        Moment {
            now: UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis),
            live_since: None,
        }
    }

    /// Draws a 1x1 picture whose x is the moment's second, and notes which seconds were drawn.
    fn drawing(drawn: &RefCell<Vec<u64>>) -> impl Fn(Moment) -> Option<Placed> + '_ {
        move |m: Moment| {
            let secs = m.now.duration_since(UNIX_EPOCH).unwrap().as_secs();
            drawn.borrow_mut().push(secs);
            Some(Placed {
                x: secs as u32,
                y: 0,
                picture: image::RgbaImage::new(1, 1),
            })
        }
    }

    #[test]
    fn each_second_is_drawn_once_a_second_ahead() {
        let overlay = clock("%H:%M:%S");
        let drawn = RefCell::new(Vec::new());
        let draw = drawing(&drawn);
        let mut placed = draw(at(100, 200));
        let mut ticked = Ticked {
            text: "00:01:40".into(),
            next: None,
        };
        assert!(ticked.advance(&overlay, &mut placed, at(100, 200), &draw));
        assert_eq!(ticked.then().map(|(p, t)| (p.x, t)), Some((101, at(101, 0).now)));
        // Half a second after 101 began: 101 (drawn ahead) is on, 102 drawn ahead.
        assert!(ticked.advance(&overlay, &mut placed, at(101, 500), &draw));
        assert_eq!(
            (ticked.text.as_str(), placed.as_ref().map(|p| p.x)),
            ("00:01:41", Some(101))
        );
        assert_eq!(ticked.then().map(|(p, _)| p.x), Some(102));
        // Asked again within the second: nothing to do.
        assert!(!ticked.advance(&overlay, &mut placed, at(101, 900), &draw));
        assert_eq!(*drawn.borrow(), [100, 101, 102], "each second drawn once");
    }

    #[test]
    fn a_clock_without_seconds_draws_only_when_its_minute_turns() {
        let overlay = clock("%H:%M");
        let drawn = RefCell::new(Vec::new());
        let draw = drawing(&drawn);
        let mut placed = draw(at(100, 0));
        let mut ticked = Ticked {
            text: "00:01".into(),
            next: None,
        };
        for s in 100..119 {
            ticked.advance(&overlay, &mut placed, at(s, 500), &draw);
            assert!(ticked.then().is_none(), "nothing to switch to at {s}");
        }
        // At 119.5 the next second (120) is 00:02: drawn ahead, once.
        ticked.advance(&overlay, &mut placed, at(119, 500), &draw);
        assert_eq!(ticked.then().map(|(p, _)| p.x), Some(120));
        ticked.advance(&overlay, &mut placed, at(120, 500), &draw);
        assert_eq!(
            (ticked.text.as_str(), placed.as_ref().map(|p| p.x)),
            ("00:02", Some(120))
        );
        assert_eq!(*drawn.borrow(), [100, 120]);
    }
}
