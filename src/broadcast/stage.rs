//! What is on the canvas: the participants' tiles in the mixer, placed by the layout template, following the
//! active speaker. Tile properties are only touched when a tile's look changes. Over the tiles: their name labels
//! and the overlays, each drawn again only when what it shows changes (a clock: when its text does).

use super::layout_spec::LayoutSpec;
use super::name_labels::{NameLabels, Wanted};
use super::overlays::Overlay;
use super::program::Program;
use super::speaker::SpeakerTracker;
use super::spec::SpecError;
use super::state::SceneStatus;
use super::status::{OverlayShown, ParticipantStatus, VideoSize};
use super::ticking::Clocks;
use crate::call::participant::Participant;
use crate::layout::engine::{place, Scene};
use crate::layout::order::visible_order;
use crate::layout::template::Templates;
use crate::layout::{Canvas, Rect};
use crate::mix::overlay_band::render_band;
use crate::mix::overlay_clock::Moment;
use crate::mix::overlay_render::{Assets, Placed};
use crate::mix::{Layered, Mixer, Tile, TileLook};
use crate::output::hub::EncodedHub;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The size of `participant`'s decoded picture: known only once a frame of theirs was decoded.
pub(super) fn decoded_size(participant: &Participant) -> Option<VideoSize> {
    let caps = participant.video.caps()?;
    let s = caps.structure(0)?;
    Some(VideoSize {
        width: s.get::<i32>("width").ok()?,
        height: s.get::<i32>("height").ok()?,
    })
}

/// Runs `work` with the runtime told that it blocks (its other tasks move to other threads), on a multi-thread
/// runtime; as is elsewhere (a current-thread runtime cannot hand its tasks over, as in unit tests).
pub(super) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// How long a layout cross-fade waits for the frame it fades from.
const CROSS_FADE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// A participant whose H.264 has not arrived for this long is not forwarded (the mixer shows them instead).
const PASSTHROUGH_STALE_MS: u64 = 300;

pub struct Stage {
    mixer: Mixer,
    tiles: Vec<Tile>,
    canvas: Canvas,
    layout: LayoutSpec,
    templates: Arc<Templates>,
    speaker: SpeakerTracker,
    /// Where the layout puts each participant (what the status and simulcast layer choice go by).
    looks: HashMap<String, TileLook>,
    /// What each tile was last told: its placed look, or hidden while its own H.264 is on air instead.
    shown: HashMap<String, TileLook>,
    /// The outputs' video source: the mixer's encode, or a participant's H.264 as is.
    hub: EncodedHub,
    /// The broadcast allows zero-transcode (`video.passthrough`).
    passthrough: bool,
    /// Background images decoded at this canvas size, by file, so switching back is instant.
    images: HashMap<std::path::PathBuf, (gst::Buffer, gst::Caps)>,
    /// The titles and logos drawn over the canvas, as the status lists them (any: no zero-transcode). Only the
    /// mixer keeps their pictures.
    overlays_shown: Vec<OverlayShown>,
    overlay_assets: Arc<Assets>,
    /// The broadcast's own overlays (the request's, then each `PATCH`'s list), drawn over the template's.
    own_overlays: Vec<Overlay>,
    /// What is drawn: the template's overlays and the broadcast's own (`template_overlays::merged`), each with
    /// its picture when it has one of its own (texts and images, drawn once per `PATCH` or template switch);
    /// lower thirds are drawn in `bands`.
    overlays: Vec<(Overlay, Option<Placed>)>,
    /// The list changed (a template switch) and the next `place_overlays` must hand it all to the mixer.
    overlays_redrawn: bool,
    /// Each lower third on air, by overlay id: drawn for this tile rectangle and name, drawn again only when
    /// either changes.
    bands: HashMap<String, (Rect, String, Placed)>,
    /// The participants' name labels on air.
    labels: NameLabels,
    /// Each `clock` and `timer`'s text on air and the next, drawn ahead.
    clocks: Clocks,
}

impl Stage {
    /// `overlay_assets`: where text overlays find their font and image overlays their files.
    pub fn new(
        mixer: Mixer,
        hub: EncodedHub,
        canvas: Canvas,
        layout: LayoutSpec,
        templates: Arc<Templates>,
        overlay_assets: Arc<Assets>,
    ) -> Self {
        let mut stage = Self {
            mixer,
            hub,
            passthrough: false,
            shown: HashMap::new(),
            tiles: Vec::new(),
            canvas,
            layout,
            templates,
            speaker: SpeakerTracker::default(),
            looks: HashMap::new(),
            images: HashMap::new(),
            overlays_shown: Vec::new(),
            overlay_assets,
            own_overlays: Vec::new(),
            overlays: Vec::new(),
            overlays_redrawn: false,
            bands: HashMap::new(),
            labels: NameLabels::default(),
            clocks: Clocks::default(),
        };
        stage.apply_background();
        stage
    }

    /// Allows zero-transcode for a lone full-canvas H.264 participant.
    pub fn with_passthrough(mut self, allowed: bool) -> Self {
        self.passthrough = allowed;
        self
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

    /// The participant whose H.264 can go out as is: alone on the whole canvas, nothing drawn over or around
    /// them, and sending H.264 right now.
    fn passthrough_candidate(
        &self,
        template: &crate::layout::template::Template,
        placements: &[crate::layout::engine::Placement],
    ) -> Option<Arc<Participant>> {
        let [only] = placements else { return None };
        let full = only.rect.x == 0
            && only.rect.y == 0
            && only.rect.w == self.canvas.width
            && only.rect.h == self.canvas.height;
        let drawn_over = template.labels || template.background_image.is_some() || !self.overlays_shown.is_empty();
        if !self.passthrough || drawn_over || !full {
            return None;
        }
        let tile = self.tiles.iter().find(|t| t.participant.id == only.id)?;
        tile.participant
            .h264
            .flowing(PASSTHROUGH_STALE_MS)
            .then(|| tile.participant.clone())
    }

    /// Puts the overlays on air: lower thirds drawn over their participants' tiles as placed now (those without
    /// a tile left out: they fade out), drawing again only bands whose tile or name changed. The mixer is told
    /// only when something changed, or always when `new_list` (a `PATCH`'s list: fades start and end there).
    fn place_overlays(&mut self, new_list: bool) {
        let new_list = new_list || std::mem::take(&mut self.overlays_redrawn);
        let canvas = (self.canvas.width as u32, self.canvas.height as u32);
        let mut previous = std::mem::take(&mut self.bands);
        if new_list {
            previous.clear(); // a band kept by id may have a new title or colours
        }
        let mut changed = new_list;
        for (overlay, _) in &self.overlays {
            let Some(participant) = overlay.lower_third_of() else {
                continue;
            };
            let rect = self.looks.get(participant).and_then(|l| l.rect);
            let tile = self.tiles.iter().find(|t| t.participant.id == participant);
            let (Some(rect), Some(tile)) = (rect, tile) else {
                continue;
            };
            let name = &tile.participant.name;
            let old = previous.remove(&overlay.id);
            let had_band = old.is_some();
            if let Some(kept) = old.filter(|(r, n, _)| *r == rect && n == name) {
                self.bands.insert(overlay.id.clone(), kept);
                continue;
            }
            let Some(band) = overlay.band(name) else {
                continue;
            };
            let font = self.overlay_assets.font();
            let drawn = font.and_then(|font| blocking(|| render_band(&band, rect, canvas, font)));
            // Nothing drawn (no font, a tile off the canvas) changes the air only if a band was there: otherwise
            // every relayout would hand the mixer the same list again.
            if let Some(placed) = drawn {
                self.bands.insert(overlay.id.clone(), (rect, name.clone(), placed));
                changed = true;
            } else if had_band {
                changed = true;
            }
        }
        let labels_changed = self.place_labels();
        // A band left over lost its tile.
        if !changed && !labels_changed && previous.is_empty() {
            return;
        }
        self.send_overlays();
    }

    /// Draws the name labels of the tiles shown now (all of them when the template has labels, else only those
    /// showing their placeholder: a colour that only the name tells apart), but not of a tile with a lower third
    /// (its band names the participant, over the label's corner), those whose tile or name changed only. True
    /// when what is on air changed.
    fn place_labels(&mut self) -> bool {
        let canvas = (self.canvas.width as u32, self.canvas.height as u32);
        let Some(template) = self.templates.get(&self.layout.template) else {
            return false;
        };
        let banded: Vec<&str> = self.overlays.iter().filter_map(|(o, _)| o.lower_third_of()).collect();
        let wanted: Vec<Wanted> = self
            .tiles
            .iter()
            .filter(|t| template.labels || t.showing_placeholder())
            .filter(|t| !banded.contains(&t.participant.id.as_str()))
            .filter_map(|t| {
                let look = self.shown.get(&t.participant.id)?;
                Some(Wanted {
                    participant: &t.participant.id,
                    name: &t.participant.name,
                    rect: look.rect?,
                    z: look.z,
                })
            })
            .collect();
        self.labels
            .update(&wanted, &template.label, canvas, self.overlay_assets.font())
    }

    /// Hands the mixer every picture on air: the name labels beneath, then the overlays in their list's order.
    fn send_overlays(&self) {
        let mut layered: Vec<Layered> = self.labels.layered();
        layered.extend(self.overlays.iter().filter_map(|(overlay, picture)| {
            let placed = picture
                .as_ref()
                .or_else(|| self.bands.get(&overlay.id).map(|(_, _, p)| p))?;
            let then = self
                .clocks
                .then(&overlay.id)
                .and_then(|(next, at)| Some((next, self.mixer.running_time_at(at)?)));
            Some(Layered {
                id: &overlay.id,
                fade_ms: overlay.fade_ms,
                placed,
                then,
            })
        }));
        self.mixer.set_overlays(&layered);
    }

    /// Brings each `clock` and `timer` to `at` (`Clocks::advance`), drawing off the async threads; true when
    /// any changed.
    fn advance_clocks(&mut self, at: Moment) -> bool {
        let canvas = (self.canvas.width as u32, self.canvas.height as u32);
        let assets = &self.overlay_assets;
        let draw = |overlay: &Overlay, m: Moment| {
            let drawing = overlay.drawing(assets, m)?;
            crate::mix::overlay_render::render(&drawing, canvas, assets.font())
        };
        blocking(|| self.clocks.advance(&mut self.overlays, at, &draw))
    }
}

impl Stage {
    /// Renders the template's overlays and the broadcast's own, once, into the pictures the mixer blends on
    /// every frame (lower thirds: once per tile placement, `place_overlays`). Decoding, scaling and drawing text
    /// take a while: done off the async threads, one image decoded at a time.
    fn draw_overlays(&mut self) {
        let from_template = match self.templates.get(&self.layout.template) {
            Some(template) => super::template_overlays::of(template).unwrap_or_else(|e| {
                // Checked when templates loaded: cannot happen; the broadcast's own overlays still show.
                tracing::warn!("template overlays not drawn: {e}");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let overlays = super::template_overlays::merged(from_template, &self.own_overlays);
        let canvas = (self.canvas.width as u32, self.canvas.height as u32);
        let assets = &self.overlay_assets;
        let at = self.clocks.moment(SystemTime::now());
        self.overlays_shown = overlays.iter().map(Overlay::shown).collect();
        self.clocks.follow(&overlays, at);
        self.overlays = blocking(|| {
            overlays
                .into_iter()
                .map(|o| {
                    let placed = o
                        .drawing(assets, at)
                        .and_then(|drawing| crate::mix::overlay_render::render(&drawing, canvas, assets.font()));
                    (o, placed)
                })
                .collect()
        });
        self.advance_clocks(at);
    }
}

impl Program for Stage {
    fn pipeline(&self) -> &gst::Pipeline {
        &self.mixer.pipeline
    }

    /// Takes every participant off and stops the mix.
    fn stop(&mut self) {
        use gst::prelude::*;
        for tile in self.tiles.drain(..) {
            self.mixer.detach(tile);
        }
        let _ = self.mixer.pipeline.set_state(gst::State::Null);
    }

    fn join(&mut self, participant: Arc<Participant>) {
        if self.tiles.iter().any(|t| t.participant.id == participant.id) {
            return;
        }
        let id = participant.id.clone();
        match self.mixer.attach(participant) {
            Ok(tile) => self.tiles.push(tile),
            Err(err) => tracing::warn!(participant_id = %id, "cannot add participant: {err:#}"),
        }
    }

    fn leave(&mut self, id: &str) {
        if let Some(pos) = self.tiles.iter().position(|t| t.participant.id == id) {
            let tile = self.tiles.remove(pos);
            self.mixer.detach(tile);
            self.looks.remove(id);
            self.shown.remove(id);
            self.speaker.remove(id);
        }
    }

    fn participant_count(&self) -> usize {
        self.tiles.len()
    }

    /// Follows the speaker from the latest audio levels; true when the speaker changed.
    fn track_speaker(&mut self, now: Instant) -> bool {
        let levels: Vec<(String, f32)> = self
            .tiles
            .iter()
            .map(|t| (t.participant.id.clone(), t.participant.audio.level()))
            .collect();
        self.speaker.update(now, &levels)
    }

    /// Places every tile according to the layout; hidden tiles stay in the mix (heard, not seen).
    fn relayout(&mut self) {
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
        let forward = self.passthrough_candidate(template, &placements);
        // Their tile stays in the mix until their own stream is on air: the switch waits for a keyframe.
        let on_air = self.hub.passthrough();
        self.mixer.keep_background_image();
        for tile in &self.tiles {
            let id = &tile.participant.id;
            let placed = placements.iter().find(|p| &p.id == id);
            let look = TileLook {
                rect: placed.map(|p| p.rect),
                z: placed.map_or(0, |p| p.z),
                fit: template.fit,
            };
            self.looks.insert(id.clone(), look);
            let forwarded = on_air.as_ref() == Some(id) && forward.as_ref().is_some_and(|p| &p.id == id);
            let shown = if forwarded {
                TileLook { rect: None, ..look }
            } else {
                look
            };
            // Shown again every pass: a fill crop needs the picture size, known only once video arrived.
            if self.shown.get(id) != Some(&shown) || shown.rect.is_some() {
                tile.show(&shown);
                self.shown.insert(id.clone(), shown);
            }
            if shown.rect.is_some() {
                tile.keep_picture(self.mixer.running_time());
            }
        }
        // After the tiles: going back to the mixer needs the participant's tile decoding again first.
        self.hub.set_video_source(forward);
        self.place_overlays(false);
    }

    /// Who is on the canvas now, for the status.
    fn scene(&self) -> SceneStatus {
        let speaker = self.speaker.current().map(str::to_string);
        let participants = self
            .tiles
            .iter()
            .map(|t| ParticipantStatus {
                id: t.participant.id.clone(),
                name: t.participant.name.clone(),
                on_screen: self.looks.get(&t.participant.id).is_some_and(|l| l.rect.is_some()),
                video: decoded_size(&t.participant),
                speaking: speaker.as_deref() == Some(t.participant.id.as_str()),
            })
            .collect();
        SceneStatus {
            participants,
            speaker,
            passthrough: self.hub.passthrough(),
            overlays: self.overlays_shown.clone(),
        }
    }

    /// Width of each participant's tile on screen now.
    fn tile_widths(&self) -> crate::call::source::TileWidths {
        self.looks
            .iter()
            .filter_map(|(id, look)| look.rect.map(|r| (id.clone(), r.w)))
            .collect()
    }

    /// The layout as last asked for (the one copy of it: a PATCH merges into it).
    fn layout(&self) -> Option<&LayoutSpec> {
        Some(&self.layout)
    }

    /// A switch of template swaps the template's overlays (with their fades) at the relayout that follows.
    fn set_layout(&mut self, layout: LayoutSpec, fade_ms: Option<u32>) {
        if let Some(ms) = fade_ms {
            // The old arrangement's next frame is taken before anything moves (a frame comes every 33 ms at
            // 30 fps; with no frame within the wait, the change cuts).
            let taken = self.mixer.cross_fade(ms);
            if blocking(|| taken.recv_timeout(CROSS_FADE_WAIT)).is_err() {
                tracing::warn!("no frame to cross-fade from: the layout cuts");
            }
        }
        let switched = layout.template != self.layout.template;
        self.layout = layout;
        self.apply_background();
        if switched {
            self.draw_overlays();
            self.overlays_redrawn = true;
        }
    }

    /// Replaces the broadcast's own overlays (the template's stay, unless one of these has their id).
    fn set_overlays(&mut self, overlays: Vec<Overlay>) -> Result<(), SpecError> {
        self.own_overlays = overlays;
        self.draw_overlays();
        self.place_overlays(true);
        Ok(())
    }

    fn went_live(&mut self, at: SystemTime) {
        self.clocks.went_live(at);
        self.tick_clocks(at);
    }

    fn clock_tick_due(&self) -> Option<SystemTime> {
        self.clocks.due()
    }

    /// Puts the text due now of each `clock` and `timer` on air (the mixer switched to it already when it was
    /// drawn ahead) and draws the next one ahead, telling the mixer when anything changed.
    fn tick_clocks(&mut self, now: SystemTime) {
        if self.advance_clocks(self.clocks.moment(now)) {
            self.send_overlays();
        }
    }

    /// Whether zero-transcode may happen in this broadcast (`video.passthrough`).
    fn passthrough_allowed(&self) -> bool {
        self.passthrough
    }

    /// True when the participant on air as is stopped sending: the mixer must take over now.
    fn passthrough_stalled(&self) -> bool {
        let Some(id) = self.hub.passthrough() else { return false };
        self.tiles
            .iter()
            .find(|t| t.participant.id == id)
            .is_none_or(|t| !t.participant.h264.flowing(PASSTHROUGH_STALE_MS))
    }
}
