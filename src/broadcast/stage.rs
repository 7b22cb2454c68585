//! What is on the canvas: the participants' tiles in the mixer, placed by the layout template, following the
//! active speaker. Tile properties are only touched when a tile's look changes.

use super::layout_spec::LayoutSpec;
use super::speaker::SpeakerTracker;
use super::status::{ParticipantStatus, SharedStatus, VideoSize};
use crate::call::participant::Participant;
use crate::layout::engine::{place, Scene};
use crate::layout::order::visible_order;
use crate::layout::template::Templates;
use crate::layout::Canvas;
use crate::mix::{Mixer, Tile, TileLook};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub struct Stage {
    pub mixer: Mixer,
    tiles: Vec<Tile>,
    canvas: Canvas,
    layout: LayoutSpec,
    templates: Arc<Templates>,
    speaker: SpeakerTracker,
    looks: HashMap<String, TileLook>,
    /// Background images decoded at this canvas size, by file, so switching back is instant.
    images: HashMap<std::path::PathBuf, (gst::Buffer, gst::Caps)>,
}

impl Stage {
    pub fn new(mixer: Mixer, canvas: Canvas, layout: LayoutSpec, templates: Arc<Templates>) -> Self {
        let mut stage = Self {
            mixer,
            tiles: Vec::new(),
            canvas,
            layout,
            templates,
            speaker: SpeakerTracker::default(),
            looks: HashMap::new(),
            images: HashMap::new(),
        };
        stage.apply_background();
        stage
    }

    fn apply_background(&mut self) {
        let Some(t) = self.templates.get(&self.layout.template) else {
            return;
        };
        self.mixer.set_background(t.background);
        let image = t.background_image.as_ref().and_then(|path| {
            if !self.images.contains_key(path) {
                match crate::mix::still::decode_image(path, self.canvas.width as u32, self.canvas.height as u32) {
                    Ok(image) => {
                        self.images.insert(path.clone(), image);
                    }
                    // The colour stays: a picture gone missing since load must not stop the show.
                    Err(e) => tracing::warn!("background image not shown: {e:#}"),
                }
            }
            self.images.get(path).cloned()
        });
        self.mixer.set_background_image(image);
    }

    pub fn join(&mut self, participant: Arc<Participant>) {
        if self.tiles.iter().any(|t| t.participant.id == participant.id) {
            return;
        }
        let id = participant.id.clone();
        match self.mixer.attach(participant) {
            Ok(tile) => self.tiles.push(tile),
            Err(err) => tracing::warn!(participant_id = %id, "cannot add participant: {err:#}"),
        }
    }

    pub fn participant_count(&self) -> usize {
        self.tiles.len()
    }

    pub fn leave(&mut self, id: &str) {
        if let Some(pos) = self.tiles.iter().position(|t| t.participant.id == id) {
            let tile = self.tiles.remove(pos);
            self.mixer.detach(tile);
            self.looks.remove(id);
            self.speaker.remove(id);
        }
    }

    pub fn set_layout(&mut self, layout: LayoutSpec) {
        self.layout = layout;
        self.apply_background();
    }

    /// Follows the speaker from the latest audio levels; true when the speaker changed.
    pub fn track_speaker(&mut self, now: Instant) -> bool {
        let levels: Vec<(String, f32)> = self
            .tiles
            .iter()
            .map(|t| (t.participant.id.clone(), t.participant.audio.level()))
            .collect();
        self.speaker.update(now, &levels)
    }

    /// Places every tile according to the layout; hidden tiles stay in the mix (heard, not seen).
    pub fn relayout(&mut self) {
        let Some(template) = self.templates.get(&self.layout.template) else {
            return;
        };
        let joined: Vec<String> = self.tiles.iter().map(|t| t.participant.id.clone()).collect();
        let scene = Scene {
            order: visible_order(&joined, self.speaker.recent(), &self.layout.rules()),
            speaker: self.speaker.current().map(str::to_string),
            pin: self.layout.pin.clone(),
        };
        let placements = place(template, self.canvas, &scene);
        self.mixer.keep_background_image();
        for tile in &self.tiles {
            let placed = placements.iter().find(|p| p.id == tile.participant.id);
            let look = TileLook {
                rect: placed.map(|p| p.rect),
                z: placed.map_or(0, |p| p.z),
                fit: template.fit,
                label: template.labels,
            };
            // Shown again every pass: a fill crop needs the picture size, known only once video arrived.
            if self.looks.get(&tile.participant.id) != Some(&look) || look.rect.is_some() {
                tile.show(&look);
                self.looks.insert(tile.participant.id.clone(), look);
            }
            if look.rect.is_some() {
                tile.keep_picture(self.mixer.running_time());
            }
        }
    }

    /// Width of each participant's tile on screen now.
    pub fn tile_widths(&self) -> crate::call::source::TileWidths {
        self.looks
            .iter()
            .filter_map(|(id, look)| look.rect.map(|r| (id.clone(), r.w)))
            .collect()
    }

    pub fn report(&self, status: &SharedStatus) {
        let speaker = self.speaker.current().map(str::to_string);
        let participants = self
            .tiles
            .iter()
            .map(|t| ParticipantStatus {
                id: t.participant.id.clone(),
                name: t.participant.name.clone(),
                on_screen: self.looks.get(&t.participant.id).is_some_and(|l| l.rect.is_some()),
                video: t.participant.video.caps().and_then(|c| {
                    let s = c.structure(0)?;
                    Some(VideoSize {
                        width: s.get::<i32>("width").ok()?,
                        height: s.get::<i32>("height").ok()?,
                    })
                }),
                speaking: speaker.as_deref() == Some(t.participant.id.as_str()),
            })
            .collect();
        status.set_scene(
            participants,
            speaker,
            serde_json::to_value(&self.layout).unwrap_or_default(),
        );
    }

    pub fn detach_all(&mut self) {
        for tile in self.tiles.drain(..) {
            self.mixer.detach(tile);
        }
    }
}
