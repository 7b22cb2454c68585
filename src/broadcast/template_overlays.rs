//! A layout template's own overlays (`[[overlay]]` tables, the fields of a request's overlay): validated as a
//! request's are, when templates load (a bad one rejects its template, naming file, line and field) and again
//! when a broadcast takes the template up; drawn under the broadcast's own overlays, one of which with the same
//! `id` replaces the template's.

use super::overlays::{self, Overlay, OverlayRequest};
use crate::layout::template::{Template, TemplateError};
use crate::mix::overlay_render::Assets;

/// The template's overlays, validated. One without an `id` gets `{template}-overlay-{index}`: never a request's
/// default id, and another in every template, so a switch fades one template's out and the next one's in.
pub fn of(template: &Template) -> Result<Vec<Overlay>, TemplateError> {
    let mut requests = Vec::with_capacity(template.overlays.len());
    for (i, raw) in template.overlays.iter().enumerate() {
        let mut fields = raw.fields.clone();
        fields
            .entry("id")
            .or_insert_with(|| format!("{}-overlay-{i}", template.name).into());
        let request: OverlayRequest = toml::Value::Table(fields)
            .try_into()
            .map_err(|e| error(template, raw.line, format!("overlay[{i}]: {}", e.message())))?;
        requests.push(request);
    }
    overlays::validate(requests).map_err(|e| named(template, e))
}

/// What `of` checks, and what only the server can tell: image `file`s are under its assets dir. Reads files.
pub fn check(template: &Template, assets: &Assets) -> Result<(), TemplateError> {
    overlays::check_files(&of(template)?, assets).map_err(|e| named(template, e))
}

/// What a broadcast draws: the template's overlays not replaced by one of its `own` (same id), under its own.
pub fn merged(template: Vec<Overlay>, own: &[Overlay]) -> Vec<Overlay> {
    template
        .into_iter()
        .filter(|t| !own.iter().any(|o| o.id == t.id))
        .chain(own.iter().cloned())
        .collect()
}

/// A request's error (`overlays[2].x`) as the template's: its table `overlay[2]`, at that table's line.
fn named(template: &Template, e: super::spec::SpecError) -> TemplateError {
    let field = e.field.replacen("overlays", "overlay", 1);
    let index = field
        .strip_prefix("overlay[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|i| i.parse::<usize>().ok());
    let line = template.overlays.get(index.unwrap_or(0)).map_or(1, |o| o.line);
    error(template, line, format!("{field}: {}", e.message))
}

fn error(template: &Template, line: usize, reason: String) -> TemplateError {
    TemplateError {
        file: template.file.clone(),
        line,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::template::parse;

    const REGION: &str =
        "description = \"x\"\n[[region]]\nrole = \"all\"\nx = 0.0\ny = 0.0\nwidth = 1.0\nheight = 1.0\n";

    fn template(overlays: &str) -> Template {
        parse("show", "/layouts/show.toml", &format!("{REGION}{overlays}")).expect("parses")
    }

    fn ids(list: &[Overlay]) -> Vec<&str> {
        list.iter().map(|o| o.id.as_str()).collect()
    }

    #[test]
    fn a_template_overlay_is_validated_as_a_request_one_with_ids_of_its_own() {
        let t = template(
            "[[overlay]]\nkind = \"text\"\ntext = \"Town hall\"\nx = 0.03\ny = 0.04\nheight = 0.08\n\
             background = \"0000ff\"\n[[overlay]]\nid = \"logo\"\nkind = \"image\"\nfile = \"logo.png\"\nx = 0.85\n\
             y = 0\nheight = 0.12\n",
        );
        let list = of(&t).unwrap();
        assert_eq!(ids(&list), ["show-overlay-0", "logo"]);
        assert_eq!((list[0].x, list[0].y, list[0].height), (0.03, 0.04, 0.08));
        assert_eq!(list[0].fade_ms, overlays::DEFAULT_FADE_MS);
    }

    #[test]
    fn a_bad_template_overlay_names_file_line_and_field() {
        // Line 8 is the first [[overlay]], 14 the second.
        let t = template(
            "[[overlay]]\nkind = \"text\"\ntext = \"ok\"\nx = 0.1\ny = 0.1\nheight = 0.1\n\
             [[overlay]]\nkind = \"text\"\ntext = \"off the canvas\"\nx = 1.5\ny = 0.1\nheight = 0.1\n",
        );
        let e = of(&t).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("/layouts/show.toml", 14), "{e}");
        assert!(e.reason.starts_with("overlay[1].x: "), "{e}");

        let e = of(&template("[[overlay]]\nkind = \"ticker\"\n")).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(
            e.reason.starts_with("overlay[0]: ") && e.reason.contains("ticker"),
            "{e}"
        );

        let e = of(&template(
            "[[overlay]]\nkind = \"text\"\ntext = \"a\"\nx = 0\ny = 0\nheight = 0.1\nblink = 1\n",
        ))
        .unwrap_err();
        assert!(e.reason.contains("blink"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let image = "[[overlay]]\nkind = \"image\"\nfile = \"gone.png\"\nx = 0\ny = 0\nheight = 0.1\n";
        let e = check(&template(image), &Assets::new(dir.path().to_path_buf())).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.reason.starts_with("overlay[0].file: cannot be read"), "{e}");
    }

    #[test]
    fn a_broadcast_overlay_replaces_the_template_one_with_its_id_and_draws_on_top() {
        let t = template(
            "[[overlay]]\nid = \"title\"\nkind = \"text\"\ntext = \"Template\"\nx = 0.1\ny = 0.1\nheight = 0.1\n\
             [[overlay]]\nid = \"badge\"\nkind = \"text\"\ntext = \"Live\"\nx = 0.8\ny = 0.1\nheight = 0.1\n",
        );
        let own = overlays::validate(
            serde_json::from_value(serde_json::json!([
                {"id": "title", "kind": "text", "text": "Mine", "x": 0.5, "y": 0.5, "height": 0.1},
                {"id": "logo", "kind": "text", "text": "L", "x": 0.0, "y": 0.0, "height": 0.1},
            ]))
            .unwrap(),
        )
        .unwrap();
        let list = merged(of(&t).unwrap(), &own);
        assert_eq!(ids(&list), ["badge", "title", "logo"]);
        assert_eq!(list[1].x, 0.5, "the broadcast's title, not the template's");
        assert_eq!(ids(&merged(of(&t).unwrap(), &[])), ["title", "badge"]);
    }
}
