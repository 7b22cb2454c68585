//! Who goes where: template + participants + speaker/pin + canvas -> placed tiles. Pure, table-tested.

use super::grid::cells_in;
use super::template::{Fit, Role, Template};
use super::{Canvas, Rect};

/// A participant's tile on the canvas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub id: String,
    pub rect: Rect,
    pub z: u32,
}

/// The participants of a scene, already in on-screen order, and who is special.
#[derive(Debug, Clone, Default)]
pub struct Scene {
    /// Visible participants in order (hidden and over-the-limit ones removed).
    pub order: Vec<String>,
    pub speaker: Option<String>,
    pub pin: Option<String>,
}

fn pixels(region: &super::template::Region, canvas: Canvas) -> Rect {
    let x = (region.x * f64::from(canvas.width)).round() as i32;
    let y = (region.y * f64::from(canvas.height)).round() as i32;
    let w = ((region.x + region.width).min(1.0) * f64::from(canvas.width)).round() as i32 - x;
    let h = ((region.y + region.height).min(1.0) * f64::from(canvas.height)).round() as i32 - y;
    Rect { x, y, w, h }
}

/// Places the scene's participants on the canvas. Speaker regions are filled first, then `next` regions in
/// template order, then flowed regions; a participant is placed at most once (`all` regions excepted).
pub fn place(template: &Template, canvas: Canvas, scene: &Scene) -> Vec<Placement> {
    let gap = (template.gap * f64::from(canvas.width)).round() as i32;
    let keep_aspect = template.fit == Fit::Fit;
    let mut placed: Vec<Placement> = Vec::new();
    let is_placed = |placed: &[Placement], id: &str| placed.iter().any(|p| p.id == id);
    let visible = |id: &Option<String>| id.as_ref().filter(|id| scene.order.contains(id)).cloned();
    let featured = visible(&scene.pin)
        .or_else(|| visible(&scene.speaker))
        .or_else(|| scene.order.first().cloned());

    for pass in [Role::Speaker, Role::Next, Role::Others] {
        for region in template.regions.iter() {
            let role_pass = match region.role {
                Role::All => Role::Others,
                r => r,
            };
            if role_pass != pass {
                continue;
            }
            let area = pixels(region, canvas);
            let ids: Vec<String> = match region.role {
                Role::Speaker => featured.iter().filter(|id| !is_placed(&placed, id)).cloned().collect(),
                Role::Next => scene
                    .order
                    .iter()
                    .find(|id| !is_placed(&placed, id))
                    .cloned()
                    .into_iter()
                    .collect(),
                Role::Others => scene
                    .order
                    .iter()
                    .filter(|id| !is_placed(&placed, id))
                    .cloned()
                    .collect(),
                Role::All => scene.order.clone(),
            };
            let ids: Vec<String> = ids.into_iter().take(region.max.unwrap_or(usize::MAX)).collect();
            let rects = cells_in(ids.len(), area, gap, region.flow, keep_aspect);
            placed.extend(
                ids.into_iter()
                    .zip(rects)
                    .map(|(id, rect)| Placement { id, rect, z: region.z }),
            );
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::template::Templates;

    const HD: Canvas = Canvas {
        width: 1280,
        height: 720,
    };

    fn scene(n: usize) -> Scene {
        Scene {
            order: (0..n).map(|i| format!("p{i}")).collect(),
            speaker: None,
            pin: None,
        }
    }

    #[test]
    fn every_template_0_to_16_inside_and_disjoint_per_layer() {
        let templates = Templates::builtin();
        for t in templates.all() {
            let canvas = t
                .canvas
                .map(|c| Canvas {
                    width: c.width as i32,
                    height: c.height as i32,
                })
                .unwrap_or(HD);
            for n in 0..=16 {
                let placed = place(t, canvas, &scene(n));
                for (i, a) in placed.iter().enumerate() {
                    assert!(
                        a.rect.inside(canvas.width, canvas.height),
                        "{} n={n}: {a:?} outside",
                        t.name
                    );
                    assert!(a.rect.w > 0 && a.rect.h > 0, "{} n={n}: empty {a:?}", t.name);
                    for b in &placed[i + 1..] {
                        assert_ne!(a.id, b.id, "{} n={n}: {} placed twice", t.name, a.id);
                        if a.z == b.z {
                            assert!(!a.rect.overlaps(&b.rect), "{} n={n}: {a:?} overlaps {b:?}", t.name);
                        }
                    }
                }
                if n > 0 {
                    assert!(!placed.is_empty(), "{} n={n}: nobody on screen", t.name);
                }
                if t.name == "grid" {
                    assert_eq!(placed.len(), n);
                }
                if t.name == "single" {
                    assert_eq!(placed.len(), n.min(1));
                }
            }
        }
    }

    #[test]
    fn grid_tiles_keep_16_9() {
        let t = Templates::builtin();
        for p in place(t.get("grid").unwrap(), HD, &scene(5)) {
            let aspect = f64::from(p.rect.w) / f64::from(p.rect.h);
            assert!((aspect - 16.0 / 9.0).abs() < 0.02, "{p:?}");
        }
    }

    #[test]
    fn speaker_template_features_pin_then_speaker_then_first() {
        let t = Templates::builtin();
        let speaker = t.get("speaker").unwrap();
        let big = |s: &Scene| {
            place(speaker, HD, s)
                .into_iter()
                .max_by_key(|p| p.rect.w * p.rect.h)
                .unwrap()
                .id
        };
        let mut s = scene(4);
        assert_eq!(big(&s), "p0");
        s.speaker = Some("p2".into());
        assert_eq!(big(&s), "p2");
        s.pin = Some("p3".into());
        assert_eq!(big(&s), "p3");
        s.pin = Some("gone".into());
        assert_eq!(big(&s), "p2", "a pin on someone not on screen is ignored");
        assert_eq!(place(speaker, HD, &s).len(), 4);
    }

    #[test]
    fn pip_puts_the_next_one_in_the_inset_above() {
        let t = Templates::builtin();
        let placed = place(t.get("pip").unwrap(), HD, &scene(3));
        assert_eq!(placed.len(), 2);
        assert_eq!(
            placed[0].rect,
            Rect {
                x: 0,
                y: 0,
                w: 1280,
                h: 720
            }
        );
        assert_eq!((placed[1].id.as_str(), placed[1].z), ("p1", 1));
        assert!(placed[1].rect.w < 400);
    }

    #[test]
    fn side_by_side_keeps_join_order_whoever_speaks() {
        let t = Templates::builtin();
        let mut s = scene(3);
        s.speaker = Some("p1".into());
        let placed = place(t.get("side-by-side").unwrap(), HD, &s);
        assert_eq!(
            placed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            vec!["p0", "p1"]
        );
        assert!(placed[0].rect.x < placed[1].rect.x);
    }
}
