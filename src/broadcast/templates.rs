//! Loading the layout templates a server offers: the layout layer parses them, and a template whose
//! background image does not decode, or whose overlays are not valid ones, is rejected here, at load, not at
//! the first broadcast that picks it.

use crate::layout::template::{Template, TemplateError, Templates};
use crate::mix::overlay_render::Assets;
use std::path::Path;

/// Built-ins plus the operator's `*.toml` in `dir`; bad files come back as errors, the good ones load.
/// `assets_dir`: where the templates' image overlays name their `file`s (the server's assets dir).
pub fn load(dir: Option<&Path>, assets_dir: &Path) -> (Templates, Vec<TemplateError>) {
    let assets = Assets::new(assets_dir.to_path_buf());
    Templates::load(dir, |template| {
        check_image(template)?;
        super::template_overlays::check(template, &assets)
    })
}

fn check_image(template: &Template) -> Result<(), TemplateError> {
    let Some(path) = &template.background_image else {
        return Ok(());
    };
    let _ = gst::init();
    crate::mix::still::decode_image(path, 64, 36)
        .map(|_| ())
        .map_err(|e| TemplateError {
            file: path.display().to_string(),
            line: 0,
            reason: format!("{e:#}"),
        })
}
