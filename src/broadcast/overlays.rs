//! `overlays` of a broadcast: titles and logos over the canvas, in the request and in `PATCH` (the list replaces
//! the current one). Validated here into `Overlay`s; the mixer draws them (`mix::overlay_render`).
//! Tagged by `kind`: `text`, `image`, `clock` and `timer` at fractions of the canvas, `lower_third` on a
//! participant's tile.

use super::spec::SpecError;
use crate::mix::overlay_clock::{ClockFormat, Moment, Ticking, Zone, DEFAULT_CLOCK_FORMAT};
use crate::mix::overlay_render::{decode_picture, Assets, Content, Drawing, MAX_TOTAL_PIXELS};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;

pub const MAX_OVERLAYS: usize = 16;
pub const MAX_TEXT_CHARS: usize = 200;
const MAX_ID_CHARS: usize = 64;
const MAX_PARTICIPANT_CHARS: usize = 256;
pub const DEFAULT_TEXT_COLOR: [u8; 4] = [255, 255, 255, 255];
/// No box behind the text unless asked.
pub const DEFAULT_BACKGROUND: [u8; 4] = [0, 0, 0, 0];
/// Around the text, as a fraction of the box's height.
pub const DEFAULT_PADDING: f64 = 0.15;
/// A lower third's title: one short line under the name.
pub const MAX_TITLE_CHARS: usize = 100;
/// A lower third's band when no `background` is given: dark, a little see-through, so white text reads on any
/// picture.
pub const DEFAULT_BAND: [u8; 4] = [0, 0, 0, 204];
/// How long an overlay takes to appear or disappear when a `PATCH` adds or removes it; 0 cuts.
pub const DEFAULT_FADE_MS: u32 = 300;
pub const MAX_FADE_MS: u32 = 5000;
/// Where a `clock` or `timer` goes when its request gives no place: the top-left corner, 6% of the canvas high.
pub const DEFAULT_CLOCK_X: f64 = 0.03;
pub const DEFAULT_CLOCK_Y: f64 = 0.03;
pub const DEFAULT_CLOCK_HEIGHT: f64 = 0.06;
/// A `clock`'s box when no `background` is given: the lower third's dark band, so the digits read anywhere.
pub const DEFAULT_CLOCK_BACKGROUND: [u8; 4] = DEFAULT_BAND;

/// One overlay as it arrives. `x`, `y` (top-left corner) and `height` are fractions of the canvas (0..1); the
/// width follows the content. Colours are hex `RRGGBB` or `RRGGBBAA`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OverlayRequest {
    /// One line of text in the shipped font, on a box of `background` (default none).
    Text {
        /// Kept across `PATCH`es; default `overlay-{index}`.
        id: Option<String>,
        /// 1-200 characters.
        text: String,
        x: f64,
        y: f64,
        height: f64,
        /// Default `ffffff`.
        color: Option<String>,
        /// Default `00000000` (transparent).
        background: Option<String>,
        /// Around the text, as a fraction of the box's height (0-0.4, default 0.15).
        padding: Option<f64>,
        /// 0-1, default 1.
        opacity: Option<f64>,
        /// Fade in when added and out when removed, in ms (0-5000, default 300; 0 cuts).
        fade_ms: Option<u32>,
    },
    /// A PNG or JPEG, scaled to `height`: either `data` (a `data:image/png;base64,...` or `data:image/jpeg;...`
    /// URL, bounded by the API's 256 KB body limit: about 190 KB of image) or `file` (a path under the server's
    /// assets dir, up to 2 MB). Up to 4096 pixels a side, at most 32:1, and 8 Mpx for all the list's images
    /// together; the server never fetches URLs.
    Image {
        id: Option<String>,
        data: Option<String>,
        file: Option<String>,
        x: f64,
        y: f64,
        height: f64,
        opacity: Option<f64>,
        fade_ms: Option<u32>,
    },
    /// The time of day, drawn like a `text` overlay and drawn again each time the text changes (at most once a
    /// second). `x`, `y`, `height` default to 0.03, 0.03, 0.06.
    Clock {
        id: Option<String>,
        x: Option<f64>,
        y: Option<f64>,
        height: Option<f64>,
        /// Default `%H:%M:%S`; `%Y %m %d %H %I %M %S %p %Z` and `%%` (up to 64 characters).
        format: Option<String>,
        /// `UTC` (the default), a fixed offset `+HH:MM` / `-HH:MM`, or an IANA zone name (`Europe/Paris`), its
        /// daylight saving applied at each moment.
        timezone: Option<String>,
        /// Default `ffffff`.
        color: Option<String>,
        /// Default `000000cc`.
        background: Option<String>,
        padding: Option<f64>,
        opacity: Option<f64>,
        fade_ms: Option<u32>,
    },
    /// The time since the broadcast went live, `H:MM:SS` (`0:00:00` until it is), drawn like a `clock`.
    Timer {
        id: Option<String>,
        /// `live` (the only one, and the default).
        since: Option<String>,
        x: Option<f64>,
        y: Option<f64>,
        height: Option<f64>,
        color: Option<String>,
        background: Option<String>,
        padding: Option<f64>,
        opacity: Option<f64>,
        fade_ms: Option<u32>,
    },
    /// The participant's name (as the room knows it) and `title` in a band over the bottom of their tile,
    /// following the tile when the layout changes; not drawn while they have no tile (an unknown participant is
    /// no error: the band appears once they are on screen).
    LowerThird {
        id: Option<String>,
        participant: String,
        /// 1-100 characters.
        title: String,
        /// The text's; default `ffffff`.
        color: Option<String>,
        /// The band's; default `000000cc`.
        background: Option<String>,
        fade_ms: Option<u32>,
    },
}

/// A validated overlay.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub id: String,
    /// Fading in when added and out when removed.
    pub fade_ms: u32,
    /// Where on the canvas (fractions) a text or image goes; unused by a lower third (its tile places it).
    pub x: f64,
    pub y: f64,
    pub height: f64,
    pub opacity: f64,
    pub look: Look,
}

impl Overlay {
    /// How the status lists it.
    pub fn shown(&self) -> super::status::OverlayShown {
        let kind = match self.look {
            Look::Text { .. } => "text",
            Look::Image { .. } | Look::File(_) => "image",
            Look::LowerThird { .. } => "lower_third",
            Look::Ticking {
                ticking: Ticking::Clock { .. },
                ..
            } => "clock",
            Look::Ticking {
                ticking: Ticking::SinceLive,
                ..
            } => "timer",
        };
        super::status::OverlayShown {
            id: self.id.clone(),
            kind: kind.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Look {
    Text {
        text: String,
        color: [u8; 4],
        background: [u8; 4],
        padding: f64,
    },
    /// The PNG or JPEG of the request's data URL, as sent (at most the body limit): decoded when checked and
    /// when drawn, never kept decoded. `pixels`: its size once decoded.
    Image { bytes: Arc<[u8]>, pixels: u64 },
    /// Under the server's assets dir: checked by `check_files`, read when drawn.
    File(String),
    /// A text that changes with time (`clock`, `timer`): drawn again by the stage when it changes.
    Ticking {
        ticking: Ticking,
        color: [u8; 4],
        background: [u8; 4],
        padding: f64,
    },
    /// Drawn by the stage, which knows the participant's tile and name (`mix::overlay_band`).
    LowerThird {
        participant: String,
        title: String,
        color: [u8; 4],
        background: [u8; 4],
    },
}

impl Overlay {
    /// The participant a lower third follows; None for the other kinds.
    pub fn lower_third_of(&self) -> Option<&str> {
        match &self.look {
            Look::LowerThird { participant, .. } => Some(participant),
            _ => None,
        }
    }

    /// A lower third's band with the name `name` (the participant's, or a stand-in); None for the other kinds.
    pub fn band(&self, name: &str) -> Option<crate::mix::overlay_band::Band> {
        let Look::LowerThird {
            title,
            color,
            background,
            ..
        } = &self.look
        else {
            return None;
        };
        Some(crate::mix::overlay_band::Band {
            name: name.to_string(),
            title: title.clone(),
            color: *color,
            background: *background,
        })
    }
}

impl Overlay {
    /// The text a `clock` or `timer` shows at `at`; None for the other kinds.
    pub fn ticking_text(&self, at: Moment) -> Option<String> {
        match &self.look {
            Look::Ticking { ticking, .. } => Some(ticking.text(at)),
            _ => None,
        }
    }

    /// When the text of a `clock` or `timer` may change next after `at`.
    pub fn next_tick(&self, at: Moment) -> Option<std::time::SystemTime> {
        match &self.look {
            Look::Ticking { ticking, .. } => ticking.next_change(at),
            _ => None,
        }
    }

    /// What the mixer draws at a place on the canvas (a `clock` or `timer` as at `at`); None when its file can no
    /// longer be read (logged: the show goes on without it), and for a lower third (placed by its tile instead).
    pub fn drawing(&self, assets: &Assets, at: Moment) -> Option<Drawing> {
        let content = match &self.look {
            Look::LowerThird { .. } => return None,
            Look::Ticking {
                ticking,
                color,
                background,
                padding,
            } => Content::Text {
                text: ticking.text(at),
                color: *color,
                background: *background,
                padding: *padding,
            },
            Look::Text {
                text,
                color,
                background,
                padding,
            } => Content::Text {
                text: text.clone(),
                color: *color,
                background: *background,
                padding: *padding,
            },
            Look::Image { bytes, .. } => match decode_picture(bytes, MAX_TOTAL_PIXELS) {
                Ok(image) => Content::Image(Arc::new(image)),
                Err(e) => {
                    tracing::warn!(overlay = %self.id, "image {e}; not drawn");
                    return None;
                }
            },
            Look::File(name) => match assets.image(name, MAX_TOTAL_PIXELS) {
                Ok(image) => Content::Image(Arc::new(image)),
                Err(e) => {
                    tracing::warn!(overlay = %self.id, "image file {name} {e}; not drawn");
                    return None;
                }
            },
        };
        Some(Drawing {
            x: self.x,
            y: self.y,
            height: self.height,
            opacity: self.opacity,
            content,
        })
    }
}

/// Validates a whole list (the request's, or a `PATCH`'s replacing the current one).
pub fn validate(requests: Vec<OverlayRequest>) -> Result<Vec<Overlay>, SpecError> {
    if requests.len() > MAX_OVERLAYS {
        return Err(SpecError::new("overlays", format!("at most {MAX_OVERLAYS} overlays")));
    }
    let mut overlays: Vec<Overlay> = Vec::with_capacity(requests.len());
    let mut pixels_left = MAX_TOTAL_PIXELS;
    for (i, request) in requests.into_iter().enumerate() {
        let overlay = validate_one(&format!("overlays[{i}]."), i, request, &mut pixels_left)?;
        if overlays.iter().any(|o| o.id == overlay.id) {
            return Err(SpecError::new(
                format!("overlays[{i}].id"),
                format!("`{}` is used twice", overlay.id),
            ));
        }
        overlays.push(overlay);
    }
    Ok(overlays)
}

/// What only the server can tell: every `file` names a readable PNG or JPEG under its assets dir, and the
/// list's images together stay within `MAX_TOTAL_PIXELS`. Reads files: call it off the async threads.
pub fn check_files(overlays: &[Overlay], assets: &Assets) -> Result<(), SpecError> {
    let in_data: u64 = overlays
        .iter()
        .map(|o| match o.look {
            Look::Image { pixels, .. } => pixels,
            _ => 0,
        })
        .sum();
    let mut pixels_left = MAX_TOTAL_PIXELS.saturating_sub(in_data);
    for (i, overlay) in overlays.iter().enumerate() {
        if let Look::File(name) = &overlay.look {
            let image = assets
                .image(name, pixels_left)
                .map_err(|e| SpecError::new(format!("overlays[{i}].file"), e))?;
            pixels_left -= u64::from(image.width()) * u64::from(image.height());
        }
    }
    Ok(())
}

fn validate_one(
    prefix: &str,
    index: usize,
    request: OverlayRequest,
    pixels_left: &mut u64,
) -> Result<Overlay, SpecError> {
    let field = |name: &str| format!("{prefix}{name}");
    let (id, fade_ms) = match &request {
        OverlayRequest::Text { id, fade_ms, .. }
        | OverlayRequest::Image { id, fade_ms, .. }
        | OverlayRequest::Clock { id, fade_ms, .. }
        | OverlayRequest::Timer { id, fade_ms, .. }
        | OverlayRequest::LowerThird { id, fade_ms, .. } => (id.clone(), *fade_ms),
    };
    // A lower third has no place of its own on the canvas: its tile places it.
    let (x, y, height, opacity) = match &request {
        OverlayRequest::Text {
            x, y, height, opacity, ..
        }
        | OverlayRequest::Image {
            x, y, height, opacity, ..
        } => (*x, *y, *height, *opacity),
        OverlayRequest::Clock {
            x, y, height, opacity, ..
        }
        | OverlayRequest::Timer {
            x, y, height, opacity, ..
        } => (
            x.unwrap_or(DEFAULT_CLOCK_X),
            y.unwrap_or(DEFAULT_CLOCK_Y),
            height.unwrap_or(DEFAULT_CLOCK_HEIGHT),
            *opacity,
        ),
        OverlayRequest::LowerThird { .. } => (0.0, 0.0, 1.0, None),
    };
    let id = match id {
        None => format!("overlay-{index}"),
        // No control characters: the stage keys its name labels by ids that start with one.
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_ID_CHARS && !id.chars().any(char::is_control) => id,
        Some(_) => {
            return Err(SpecError::new(
                field("id"),
                format!("must be 1-{MAX_ID_CHARS} characters, none of them control characters"),
            ))
        }
    };
    for (name, value) in [("x", x), ("y", y)] {
        fraction(&field(name), value, 0.0..=1.0)?;
    }
    fraction(&field("height"), height, f64::MIN_POSITIVE..=1.0)?;
    let opacity = opacity.map_or(Ok(1.0), |o| fraction(&field("opacity"), o, 0.0..=1.0))?;
    let fade_ms = match fade_ms {
        None => DEFAULT_FADE_MS,
        Some(ms) if ms <= MAX_FADE_MS => ms,
        Some(ms) => {
            return Err(SpecError::new(
                field("fade_ms"),
                format!("must be 0-{MAX_FADE_MS} ms, got {ms}"),
            ))
        }
    };
    let look = match request {
        OverlayRequest::Text {
            text,
            color,
            background,
            padding,
            ..
        } => {
            let chars = text.chars().count();
            if chars == 0 || chars > MAX_TEXT_CHARS {
                return Err(SpecError::new(
                    field("text"),
                    format!("must be 1-{MAX_TEXT_CHARS} characters, got {chars}"),
                ));
            }
            Look::Text {
                text,
                color: colour(&field("color"), color.as_deref(), DEFAULT_TEXT_COLOR)?,
                background: colour(&field("background"), background.as_deref(), DEFAULT_BACKGROUND)?,
                padding: padding.map_or(Ok(DEFAULT_PADDING), |p| fraction(&field("padding"), p, 0.0..=0.4))?,
            }
        }
        OverlayRequest::Image { data, file, .. } => match (data, file) {
            (Some(data), None) => {
                let (bytes, pixels) = data_url(&data, *pixels_left).map_err(|e| SpecError::new(field("data"), e))?;
                *pixels_left -= pixels;
                Look::Image {
                    bytes: bytes.into(),
                    pixels,
                }
            }
            (None, Some(file)) => Look::File(file),
            _ => return Err(SpecError::new(field("data"), "give exactly one of `data` and `file`")),
        },
        OverlayRequest::Clock {
            format,
            timezone,
            color,
            background,
            padding,
            ..
        } => {
            let format = ClockFormat::parse(format.as_deref().unwrap_or(DEFAULT_CLOCK_FORMAT))
                .map_err(|e| SpecError::new(field("format"), e))?;
            let zone =
                Zone::parse(timezone.as_deref().unwrap_or("UTC")).map_err(|e| SpecError::new(field("timezone"), e))?;
            ticking_look(&field, Ticking::Clock { format, zone }, color, background, padding)?
        }
        OverlayRequest::Timer {
            since,
            color,
            background,
            padding,
            ..
        } => {
            if since.as_deref().is_some_and(|s| s != "live") {
                return Err(SpecError::new(field("since"), "must be `live`"));
            }
            ticking_look(&field, Ticking::SinceLive, color, background, padding)?
        }
        OverlayRequest::LowerThird {
            participant,
            title,
            color,
            background,
            ..
        } => {
            if participant.is_empty() || participant.chars().count() > MAX_PARTICIPANT_CHARS {
                return Err(SpecError::new(
                    field("participant"),
                    format!("must be a participant id of 1-{MAX_PARTICIPANT_CHARS} characters"),
                ));
            }
            let chars = title.chars().count();
            if chars == 0 || chars > MAX_TITLE_CHARS {
                return Err(SpecError::new(
                    field("title"),
                    format!("must be 1-{MAX_TITLE_CHARS} characters, got {chars}"),
                ));
            }
            Look::LowerThird {
                participant,
                title,
                color: colour(&field("color"), color.as_deref(), DEFAULT_TEXT_COLOR)?,
                background: colour(&field("background"), background.as_deref(), DEFAULT_BAND)?,
            }
        }
    };
    Ok(Overlay {
        id,
        fade_ms,
        x,
        y,
        height,
        opacity,
        look,
    })
}

/// A `clock` or `timer`'s look, its colours and padding checked as a `text`'s.
fn ticking_look(
    field: &dyn Fn(&str) -> String,
    ticking: Ticking,
    color: Option<String>,
    background: Option<String>,
    padding: Option<f64>,
) -> Result<Look, SpecError> {
    Ok(Look::Ticking {
        ticking,
        color: colour(&field("color"), color.as_deref(), DEFAULT_TEXT_COLOR)?,
        background: colour(&field("background"), background.as_deref(), DEFAULT_CLOCK_BACKGROUND)?,
        padding: padding.map_or(Ok(DEFAULT_PADDING), |p| fraction(&field("padding"), p, 0.0..=0.4))?,
    })
}

fn fraction(field: &str, value: f64, range: std::ops::RangeInclusive<f64>) -> Result<f64, SpecError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        let low = if *range.start() > 0.0 { "above 0" } else { "at least 0" };
        Err(SpecError::new(
            field,
            format!("must be {low} and at most {}, got {value}", range.end()),
        ))
    }
}

/// `RRGGBB` (opaque) or `RRGGBBAA`, as RGBA.
fn colour(field: &str, value: Option<&str>, default: [u8; 4]) -> Result<[u8; 4], SpecError> {
    let Some(hex) = value else { return Ok(default) };
    let bad = || SpecError::new(field, format!("must be hex RRGGBB or RRGGBBAA, got `{hex}`"));
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    let alpha = if hex.len() == 8 { byte(6)? } else { 255 };
    Ok([byte(0)?, byte(2)?, byte(4)?, alpha])
}

/// A `data:image/png;base64,...` or `data:image/jpeg;base64,...` URL: its image bytes, checked to decode within
/// `max_pixels`, and its size in pixels (the decoded picture is not kept).
fn data_url(url: &str, max_pixels: u64) -> Result<(Vec<u8>, u64), String> {
    let payload = [
        "data:image/png;base64,",
        "data:image/jpeg;base64,",
        "data:image/jpg;base64,",
    ]
    .iter()
    .find_map(|prefix| url.strip_prefix(prefix))
    .ok_or("must be a data URL `data:image/png;base64,...` or `data:image/jpeg;base64,...`")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|_| "is not valid base64".to_string())?;
    let picture = decode_picture(&bytes, max_pixels)?;
    Ok((bytes, u64::from(picture.width()) * u64::from(picture.height())))
}

#[cfg(test)]
#[path = "overlays_tests.rs"]
mod tests;
