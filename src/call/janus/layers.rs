//! Which simulcast layer (VideoRoom `substream`) to ask Janus for, per feed: the smallest picture that fills
//! the tile. Layers are learned, not assumed: which index is the small one depends on the order the publisher's
//! app listed its encodings in (a browser listing `q,h,f`, low to high, got 1280 px for substream 0 from Janus
//! 1.1.2), so each index's width is recorded once decoded, and unknown indexes are tried when none fits well.

use std::time::{Duration, Instant};

/// VideoRoom substreams: 0, 1, 2.
pub const LAYERS: usize = 3;
/// Time for a layer switch to reach the decoder (Janus waits for a keyframe of the new layer).
pub const LAYER_SETTLE: Duration = Duration::from_millis(2500);

/// What is known of one feed's layers.
#[derive(Debug, Default, Clone)]
pub struct FeedLayers {
    /// The layer last asked for (None: Janus's default, not known to us).
    asked: Option<usize>,
    settle_until: Option<Instant>,
    /// Width each layer decoded at when last asked for.
    seen: [Option<i32>; LAYERS],
}

impl FeedLayers {
    /// The layer to ask for now, if any, for a feed decoded `decoded` px wide into a `tile` px wide tile. A
    /// picture that fills the tile and is less than twice as wide is kept; feeds without simulcast decode at one
    /// width whatever is asked, so once each index was tried the answer stays None.
    pub fn next(&mut self, decoded: i32, tile: i32, now: Instant) -> Option<usize> {
        if self.settle_until.is_some_and(|until| now < until) {
            return None;
        }
        if let Some(asked) = self.asked {
            self.seen[asked] = Some(decoded);
        }
        if decoded >= tile && decoded < 2 * tile {
            return None;
        }
        let known = || (0..LAYERS).filter_map(|i| self.seen[i].map(|w| (i, w)));
        // Among equal widths the layer already asked for wins, so a feed without simulcast settles.
        let filling = known()
            .filter(|(_, w)| *w >= tile)
            .min_by_key(|(i, w)| (*w, Some(*i) != self.asked));
        let unknown = (0..LAYERS).find(|i| self.seen[*i].is_none());
        let wanted = match (filling, unknown) {
            // A fitting layer at most twice the tile: take it.
            (Some((i, w)), _) if w < 2 * tile => i,
            // Only wasteful ones known, or none fills: try a layer not seen yet.
            (_, Some(i)) => i,
            (Some((i, _)), None) => i,
            // Every layer seen and none fills: the largest.
            (None, None) => known()
                .max_by_key(|(i, w)| (*w, Some(*i) == self.asked))
                .map(|(i, _)| i)?,
        };
        if Some(wanted) == self.asked {
            return None;
        }
        self.asked = Some(wanted);
        self.settle_until = Some(now + LAYER_SETTLE);
        Some(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::{FeedLayers, LAYER_SETTLE};
    use std::time::Instant;

    /// Plays a feed whose layer `i` decodes at `widths[i]`, starting on `start`, into tiles of `tiles` (each for
    /// 10 ticks of 500 ms); returns the layers asked for and the width decoded at the end of each tile size.
    fn play(widths: [i32; 3], start: usize, tiles: &[i32]) -> (Vec<usize>, Vec<i32>) {
        let mut feed = FeedLayers::default();
        let (mut current, mut asked, mut ends) = (start, Vec::new(), Vec::new());
        let mut now = Instant::now();
        for tile in tiles {
            for _ in 0..10 {
                if let Some(layer) = feed.next(widths[current], *tile, now) {
                    asked.push(layer);
                    current = layer;
                }
                now += LAYER_SETTLE / 5;
            }
            ends.push(widths[current]);
        }
        (asked, ends)
    }

    #[test]
    fn low_to_high_layers_find_the_smallest_that_fills() {
        // Janus starts on the top index: 1280 px for a 314 px tile is wasteful.
        let (asked, ends) = play([320, 640, 1280], 2, &[314, 640, 314]);
        assert_eq!(ends, vec![320, 640, 320], "asked {asked:?}");
        assert_eq!(asked, vec![0, 1, 0]);
    }

    #[test]
    fn high_to_low_layers_are_learned_not_assumed() {
        // Index 0 is the large one here: the wasteful answer is recorded and another index tried.
        let (asked, ends) = play([1280, 640, 320], 2, &[314, 640, 314]);
        assert_eq!(ends, vec![320, 640, 320], "asked {asked:?}");
        assert_eq!(asked, vec![0, 1, 2]);
    }

    #[test]
    fn a_feed_without_simulcast_is_left_alone_once_tried() {
        let (asked, ends) = play([640, 640, 640], 2, &[160, 160, 160]);
        assert_eq!(ends, vec![640, 640, 640]);
        assert!(asked.len() <= 3, "asked {asked:?}");
        // A fitting picture is never touched.
        let (asked, _) = play([640, 640, 640], 2, &[400, 640]);
        assert!(asked.is_empty(), "asked {asked:?}");
    }

    #[test]
    fn when_nothing_fills_the_largest_is_kept() {
        let (asked, ends) = play([160, 320, 640], 0, &[1280, 1280]);
        assert_eq!(ends[1], 640, "asked {asked:?}");
        assert_eq!(asked, vec![0, 1, 2]);
    }

    #[test]
    fn nothing_is_asked_while_a_switch_settles() {
        let mut feed = FeedLayers::default();
        let now = Instant::now();
        assert_eq!(feed.next(1280, 314, now), Some(0));
        assert_eq!(feed.next(1280, 314, now + LAYER_SETTLE / 2), None);
    }
}
