//! The participants' name labels on air: one overlay picture per tile shown (`mix::overlay_label`), drawn again
//! only when the tile's rectangle, the name or the template's label style changes, and handed to the overlay
//! layer under every other overlay, without a fade (a label moves with its tile at once).

use crate::layout::label_style::LabelStyle;
use crate::layout::Rect;
use crate::mix::overlay_fonts::Fonts;
use crate::mix::overlay_label::render_label;
use crate::mix::overlay_render::Placed;
use crate::mix::Layered;
use std::collections::HashMap;

/// A label the stage wants on air: the participant's, over their tile as placed now.
pub struct Wanted<'a> {
    pub participant: &'a str,
    pub name: &'a str,
    pub rect: Rect,
    /// The tile's layer: labels of tiles above are drawn above.
    pub z: u32,
}

struct Drawn {
    /// The overlay layer's id: overlay ids have no control characters (`overlays::validate`), so none is taken.
    layer_id: String,
    rect: Rect,
    name: String,
    style: LabelStyle,
    z: u32,
    /// None when nothing of it shows (a tile off the canvas).
    placed: Option<Placed>,
}

#[derive(Default)]
pub struct NameLabels {
    drawn: HashMap<String, Drawn>,
}

impl NameLabels {
    /// Keeps the labels of `wanted` on air in `style`, drawing only those new or changed, and drops the rest.
    /// True when what is on air changed.
    pub fn update(&mut self, wanted: &[Wanted], style: &LabelStyle, canvas: (u32, u32), font: Option<&Fonts>) -> bool {
        let before = self.drawn.len();
        self.drawn.retain(|id, _| wanted.iter().any(|w| w.participant == id));
        let mut changed = self.drawn.len() != before;
        let Some(font) = font else {
            // Without the font nothing is drawn (logged once when it failed to load).
            return changed;
        };
        for want in wanted {
            let same = self
                .drawn
                .get(want.participant)
                .is_some_and(|d| d.rect == want.rect && d.name == want.name && d.style == *style && d.z == want.z);
            if same {
                continue;
            }
            let placed = super::stage::blocking(|| render_label(want.name, style, want.rect, canvas, font));
            self.drawn.insert(
                want.participant.to_string(),
                Drawn {
                    layer_id: format!("\u{1}label:{}", want.participant),
                    rect: want.rect,
                    name: want.name.to_string(),
                    style: *style,
                    z: want.z,
                    placed,
                },
            );
            changed = true;
        }
        changed
    }

    /// The labels drawn, for the overlay layer: lowest tile first, then by participant (a stable order).
    pub fn layered(&self) -> Vec<Layered<'_>> {
        let mut drawn: Vec<&Drawn> = self.drawn.values().filter(|d| d.placed.is_some()).collect();
        drawn.sort_by(|a, b| (a.z, &a.layer_id).cmp(&(b.z, &b.layer_id)));
        drawn
            .into_iter()
            .filter_map(|d| {
                Some(Layered {
                    id: &d.layer_id,
                    fade_ms: 0,
                    placed: d.placed.as_ref()?,
                    then: None,
                })
            })
            .collect()
    }
}
