//! The layout part of a broadcast: template, pin and who is on screen in what order. Validated against the
//! loaded templates; `PATCH` merges a partial request into the current one.

use super::spec::SpecError;
use crate::layout::order::{OrderRules, DEFAULT_MAX_TILES};
use crate::layout::template::Templates;
use serde::{Deserialize, Serialize};

pub const DEFAULT_TEMPLATE: &str = "grid";
const MAX_LIST: usize = 64;
const MAX_ID_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Join order.
    #[default]
    Join,
    /// Recent speakers first.
    Active,
}

/// The longest layout cross-fade.
pub const MAX_TRANSITION_MS: u32 = 5000;

/// How a `PATCH` of the layout goes on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transition {
    /// At once (the default).
    Cut,
    /// The old arrangement fades into the new one over `ms` (default 500, at most 5000; 0 cuts).
    Fade {
        #[serde(default = "default_fade_ms")]
        ms: u32,
    },
}

fn default_fade_ms() -> u32 {
    500
}

impl Transition {
    /// The fade's length, or None for a cut; a length out of range is a 400 naming `layout.transition.ms`.
    pub fn fade_ms(self) -> Result<Option<u32>, SpecError> {
        match self {
            Transition::Cut | Transition::Fade { ms: 0 } => Ok(None),
            Transition::Fade { ms } if ms <= MAX_TRANSITION_MS => Ok(Some(ms)),
            Transition::Fade { .. } => Err(SpecError::new(
                "layout.transition.ms",
                format!("must be 0-{MAX_TRANSITION_MS}"),
            )),
        }
    }
}

/// `layout` in a request; every field optional (POST fills defaults, PATCH keeps current values).
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    pub template: Option<String>,
    /// A participant id to feature; `""` clears it.
    pub pin: Option<String>,
    pub participants: Option<Vec<String>>,
    pub sort: Option<Sort>,
    pub hide: Option<Vec<String>>,
    pub max_tiles: Option<usize>,
    /// In a `PATCH`: how the change goes on air, `{"kind": "cut"}` (the default) or `{"kind": "fade", "ms": 500}`.
    pub transition: Option<Transition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutSpec {
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    pub participants: Vec<String>,
    pub sort: Sort,
    pub hide: Vec<String>,
    pub max_tiles: usize,
}

impl Default for LayoutSpec {
    fn default() -> Self {
        Self {
            template: DEFAULT_TEMPLATE.into(),
            pin: None,
            participants: Vec::new(),
            sort: Sort::Join,
            hide: Vec::new(),
            max_tiles: DEFAULT_MAX_TILES,
        }
    }
}

fn check_ids(field: &str, ids: &[String]) -> Result<(), SpecError> {
    if ids.len() > MAX_LIST {
        return Err(SpecError::new(field, format!("at most {MAX_LIST} entries")));
    }
    if let Some(bad) = ids.iter().find(|id| id.is_empty() || id.chars().count() > MAX_ID_CHARS) {
        return Err(SpecError::new(field, format!("`{bad}` is not a participant id")));
    }
    Ok(())
}

impl LayoutSpec {
    /// Returns a copy with the request's fields applied, or the first invalid field. `self` is untouched on error.
    pub fn merged(&self, req: LayoutRequest, templates: &Templates) -> Result<Self, SpecError> {
        let mut next = self.clone();
        if req.transition.is_some() {
            return Err(SpecError::new(
                "layout.transition",
                "a transition is for a PATCH of a live broadcast's layout",
            ));
        }
        if let Some(template) = req.template {
            if templates.get(&template).is_none() {
                return Err(SpecError::new(
                    "layout.template",
                    format!("unknown template `{template}`; known: {}", templates.names().join(", ")),
                ));
            }
            next.template = template;
        }
        if let Some(pin) = req.pin {
            if pin.chars().count() > MAX_ID_CHARS {
                return Err(SpecError::new("layout.pin", "is not a participant id"));
            }
            next.pin = (!pin.is_empty()).then_some(pin);
        }
        if let Some(list) = req.participants {
            check_ids("layout.participants", &list)?;
            next.participants = list;
        }
        if let Some(list) = req.hide {
            check_ids("layout.hide", &list)?;
            next.hide = list;
        }
        if let Some(sort) = req.sort {
            next.sort = sort;
        }
        if let Some(max) = req.max_tiles {
            if !(1..=MAX_LIST).contains(&max) {
                return Err(SpecError::new(
                    "layout.max_tiles",
                    format!("must be between 1 and {MAX_LIST}"),
                ));
            }
            next.max_tiles = max;
        }
        Ok(next)
    }

    pub fn rules(&self) -> OrderRules {
        OrderRules {
            fixed: self.participants.clone(),
            sort_active: self.sort == Sort::Active,
            hide: self.hide.clone(),
            max_tiles: self.max_tiles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_what_is_not_given_and_rejects_without_change() {
        let t = Templates::builtin();
        let base = LayoutSpec::default();
        let req = LayoutRequest {
            template: Some("speaker".into()),
            pin: Some("feed_1".into()),
            ..Default::default()
        };
        let next = base.merged(req, &t).unwrap();
        assert_eq!(
            (next.template.as_str(), next.pin.as_deref()),
            ("speaker", Some("feed_1"))
        );
        let cleared = next
            .merged(
                LayoutRequest {
                    pin: Some(String::new()),
                    ..Default::default()
                },
                &t,
            )
            .unwrap();
        assert_eq!((cleared.template.as_str(), cleared.pin), ("speaker", None));
        let bad = LayoutRequest {
            template: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(next.merged(bad, &t).unwrap_err().field, "layout.template");
        let bad = LayoutRequest {
            max_tiles: Some(0),
            ..Default::default()
        };
        assert_eq!(next.merged(bad, &t).unwrap_err().field, "layout.max_tiles");
    }
}
