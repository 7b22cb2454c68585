//! A `clock` or `timer` on air: the text it shows, and its next text drawn ahead, a second early, with the time
//! it takes over (the mixer switches to it on the first frame of that time). Each text is drawn once.

use super::overlays::Overlay;
use crate::mix::overlay_clock::Moment;
use crate::mix::overlay_render::Placed;
use std::time::SystemTime;

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
