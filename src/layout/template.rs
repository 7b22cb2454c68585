//! Layout templates as data (`pipelines/layouts/*.toml` and an operator directory), validated at load.

use super::grid::Flow;
use super::label_style::{LabelFile, LabelStyle};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Templates shipped in the binary, so it needs no data files at run time.
const BUILTIN: &[(&str, &str)] = &[
    ("grid", include_str!("../../pipelines/layouts/grid.toml")),
    ("speaker", include_str!("../../pipelines/layouts/speaker.toml")),
    ("single", include_str!("../../pipelines/layouts/single.toml")),
    ("pip", include_str!("../../pipelines/layouts/pip.toml")),
    ("portrait", include_str!("../../pipelines/layouts/portrait.toml")),
    (
        "side-by-side",
        include_str!("../../pipelines/layouts/side-by-side.toml"),
    ),
];

/// Who fills a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everyone on screen, flowed.
    All,
    /// One tile: the pinned participant, else the active speaker, else the first.
    Speaker,
    /// One tile: the next participant not yet placed.
    Next,
    /// Everyone not placed by another region, flowed.
    Others,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Whole picture, letterboxed.
    #[default]
    Fit,
    /// Tile filled, picture cropped.
    Fill,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub role: Role,
    #[serde(default = "default_flow")]
    pub flow: Flow,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    #[serde(default)]
    pub z: u32,
    /// Most tiles this region shows (flowed roles).
    pub max: Option<usize>,
}

fn default_flow() -> Flow {
    Flow::Grid
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CanvasSize {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    description: String,
    #[serde(default)]
    background: Option<toml::Spanned<String>>,
    /// An image (PNG, JPEG) drawn over the background colour, scaled to the canvas; relative to the template file.
    #[serde(default)]
    background_image: Option<toml::Spanned<String>>,
    #[serde(default = "default_true")]
    labels: bool,
    /// How the labels look (`[label]`); defaults when absent.
    #[serde(default)]
    label: Option<toml::Spanned<LabelFile>>,
    #[serde(default)]
    fit: Fit,
    #[serde(default)]
    gap: f64,
    canvas: Option<CanvasSize>,
    region: Vec<toml::Spanned<Region>>,
    /// Titles, logos drawn over every broadcast using the template: validated by the broadcast layer, which
    /// knows overlays (this layer only keeps them and where they stand in the file).
    #[serde(default)]
    overlay: Vec<toml::Spanned<toml::Table>>,
}

/// An `[[overlay]]` table of a template as written: the fields of a request's overlay (`kind`, `text`, `x` ...),
/// not read here.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateOverlay {
    /// Its line in the file, for errors.
    #[serde(skip)]
    pub line: usize,
    #[serde(flatten)]
    pub fields: toml::Table,
}

/// A validated template.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Template {
    pub name: String,
    /// The file it was read from, for errors found after parsing. Not shown in the API: a path on the server.
    #[serde(skip)]
    pub file: String,
    pub description: String,
    /// 0xRRGGBB
    pub background: u32,
    /// Drawn over `background`, scaled to the canvas. Not shown in the API: it is a path on the server.
    #[serde(skip)]
    pub background_image: Option<PathBuf>,
    pub labels: bool,
    /// How name labels look, when drawn.
    pub label: LabelStyle,
    pub fit: Fit,
    /// Space between tiles as a fraction of the canvas width.
    pub gap: f64,
    /// Canvas size a broadcast uses when its request names none (portrait templates).
    pub canvas: Option<CanvasSize>,
    pub regions: Vec<Region>,
    /// Drawn under a broadcast's own overlays (one with the same `id` replaces the template's).
    pub overlays: Vec<TemplateOverlay>,
}

/// Why a template file was rejected: which file, which line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct TemplateError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn parse_colour(value: &str) -> Option<u32> {
    let hex = value.strip_prefix('#')?;
    (hex.len() == 6).then(|| u32::from_str_radix(hex, 16).ok()).flatten()
}

/// Template names become URL path segments.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses and validates one template; `file` names it in errors.
pub fn parse(name: &str, file: &str, text: &str) -> Result<Template, TemplateError> {
    let err = |line: usize, reason: String| TemplateError {
        file: file.to_string(),
        line,
        reason,
    };
    if !valid_name(name) {
        return Err(err(
            1,
            format!("template name `{name}` must be lowercase letters, digits and '-'"),
        ));
    }
    let parsed: TemplateFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        err(line, e.message().to_string())
    })?;
    let background = match &parsed.background {
        None => 0,
        Some(c) => parse_colour(c.get_ref()).ok_or_else(|| {
            err(
                line_of(text, c.span().start),
                format!("background `{}` is not #RRGGBB", c.get_ref()),
            )
        })?,
    };
    let background_image = match &parsed.background_image {
        None => None,
        Some(image) => {
            let path = Path::new(file).parent().unwrap_or(Path::new(".")).join(image.get_ref());
            if !path.is_file() {
                return Err(err(
                    line_of(text, image.span().start),
                    format!(
                        "background_image `{}` is not a file next to the template",
                        image.get_ref()
                    ),
                ));
            }
            Some(path)
        }
    };
    let label = match &parsed.label {
        None => LabelStyle::default(),
        Some(table) => table
            .get_ref()
            .style()
            .map_err(|reason| err(line_of(text, table.span().start), reason))?,
    };
    if !(0.0..=0.2).contains(&parsed.gap) {
        return Err(err(
            1,
            format!("gap {} must be between 0 and 0.2 of the canvas width", parsed.gap),
        ));
    }
    if let Some(c) = parsed.canvas {
        let side = super::CANVAS_SIDE;
        if !side.contains(&c.width) || !side.contains(&c.height) || c.width % 2 != 0 || c.height % 2 != 0 {
            return Err(err(
                1,
                format!("canvas width and height must be even, {}..{}", side.start(), side.end()),
            ));
        }
    }
    if parsed.region.is_empty() {
        return Err(err(1, "a template needs at least one [[region]]".into()));
    }
    let mut regions = Vec::new();
    for spanned in parsed.region {
        let line = line_of(text, spanned.span().start);
        let r = spanned.into_inner();
        let inside = [r.x, r.y].iter().all(|v| (0.0..1.0).contains(v))
            && r.width > 0.0
            && r.height > 0.0
            && r.x + r.width <= 1.0 + 1e-9
            && r.y + r.height <= 1.0 + 1e-9;
        if !inside {
            return Err(err(
                line,
                "region must lie inside the canvas (x, y, width, height are fractions of it)".into(),
            ));
        }
        if r.max == Some(0) {
            return Err(err(line, "max must be at least 1".into()));
        }
        regions.push(r);
    }
    let overlays = parsed
        .overlay
        .into_iter()
        .map(|spanned| TemplateOverlay {
            line: line_of(text, spanned.span().start),
            fields: spanned.into_inner(),
        })
        .collect();
    Ok(Template {
        name: name.to_string(),
        file: file.to_string(),
        description: parsed.description,
        background,
        background_image,
        labels: parsed.labels,
        label,
        fit: parsed.fit,
        gap: parsed.gap,
        canvas: parsed.canvas,
        regions,
        overlays,
    })
}

/// Every template the server knows, by name.
#[derive(Debug, Clone)]
pub struct Templates(BTreeMap<String, Template>);

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Self {
        let map = BUILTIN
            .iter()
            .map(|(name, text)| {
                let t =
                    parse(name, &format!("pipelines/layouts/{name}.toml"), text).expect("built-in templates are valid");
                (name.to_string(), t)
            })
            .collect();
        Self(map)
    }

    /// Built-ins plus every `*.toml` in `dir` (an operator's own; same name replaces a built-in). Bad files are
    /// returned as errors and skipped: the good ones still load. `check` vets each parsed file further (its
    /// background image decodes: the caller's business, as decoding pictures is no layout maths).
    pub fn load(
        dir: Option<&Path>,
        check: impl Fn(&Template) -> Result<(), TemplateError>,
    ) -> (Self, Vec<TemplateError>) {
        let mut templates = Self::builtin();
        let mut errors = Vec::new();
        let Some(dir) = dir else { return (templates, errors) };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect(),
            Err(e) => {
                errors.push(TemplateError {
                    file: dir.display().to_string(),
                    line: 0,
                    reason: format!("cannot read the layouts directory: {e}"),
                });
                return (templates, errors);
            }
        };
        files.sort();
        for path in files {
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            let file = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse(&name, &file, &text).and_then(|t| check(&t).map(|()| t)) {
                    Ok(t) => {
                        templates.0.insert(name, t);
                    }
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(TemplateError {
                    file,
                    line: 0,
                    reason: e.to_string(),
                }),
            }
        }
        (templates, errors)
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &Template> {
        self.0.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::label_style::LabelPosition;

    #[test]
    fn builtins_load() {
        let t = Templates::builtin();
        assert_eq!(
            t.names(),
            vec!["grid", "pip", "portrait", "side-by-side", "single", "speaker"]
        );
        assert_eq!(
            t.get("portrait").and_then(|p| p.canvas),
            Some(CanvasSize {
                width: 720,
                height: 1280
            })
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "description = \"x\"\n\n[[region]]\nrole = \"all\"\nx = 0.5\ny = 0.0\nwidth = 0.9\nheight = 1.0\n";
        let e = parse("bad", "bad.toml", text).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("bad.toml", 3), "{e}");
        assert!(e.reason.contains("inside the canvas"), "{e}");

        let e = parse("bad", "bad.toml", "description = \"x\"\nfit = \"squash\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.reason.contains("squash"), "{e}");

        let e = parse("bad", "bad.toml", "description = \"x\"\nregion = []\n").unwrap_err();
        assert!(e.reason.contains("at least one"), "{e}");

        let e = parse("bad", "b.toml", "description = \"x\"\nbackground = \"red\"\n[[region]]\nrole=\"all\"\nx=0.0\ny=0.0\nwidth=1.0\nheight=1.0\n").unwrap_err();
        assert!(e.reason.contains("#RRGGBB"), "{e}");
        assert_eq!(e.line, 2, "{e}");

        let e = parse("bad", "/tmp/b.toml", "description = \"x\"\n\nbackground_image = \"missing-5a1f.png\"\n[[region]]\nrole=\"all\"\nx=0.0\ny=0.0\nwidth=1.0\nheight=1.0\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.reason.contains("missing-5a1f.png"), "{e}");
    }

    #[test]
    fn overlay_tables_are_kept_as_written_with_their_lines() {
        let text = "description = \"x\"\n[[region]]\nrole = \"all\"\nx = 0.0\ny = 0.0\nwidth = 1.0\nheight = 1.0\n\n\
                    [[overlay]]\nkind = \"text\"\ntext = \"Hi\"\n\n[[overlay]]\nkind = \"marquee\"\n";
        let t = parse("show", "show.toml", text).unwrap();
        let lines: Vec<usize> = t.overlays.iter().map(|o| o.line).collect();
        assert_eq!(lines, [9, 13]);
        assert_eq!(t.overlays[0].fields["text"].as_str(), Some("Hi"));
        // Not read here: an unknown kind is the broadcast layer's to refuse.
        assert_eq!(t.overlays[1].fields["kind"].as_str(), Some("marquee"));
        assert!(Templates::builtin().all().all(|t| t.overlays.is_empty()));
    }

    #[test]
    fn a_label_table_styles_labels_and_a_bad_one_names_its_line() {
        let region = "[[region]]\nrole = \"all\"\nx = 0.0\ny = 0.0\nwidth = 1.0\nheight = 1.0\n";
        let text = format!("description = \"x\"\n[label]\nheight = 0.1\nposition = \"top-left\"\n{region}");
        let t = parse("styled", "styled.toml", &text).unwrap();
        assert_eq!((t.label.height, t.label.position), (0.1, LabelPosition::TopLeft));
        assert_eq!(t.label.background, [0, 0, 0, 0x99], "the rest defaults");
        let text = format!("description = \"x\"\n\n[label]\ncolor = \"red\"\n{region}");
        let e = parse("bad", "bad.toml", &text).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.reason.contains("color `red`"), "{e}");
        assert_eq!(Templates::builtin().get("grid").unwrap().label, LabelStyle::default());
    }

    #[test]
    fn operator_dir_adds_good_and_reports_bad() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "description = \"mine\"\n[[region]]\nrole = \"all\"\nx = 0.0\ny = 0.0\nwidth = 1.0\nheight = 1.0\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.toml"), "description = \n").unwrap();
        let (t, errors) = Templates::load(Some(dir.path()), |_| Ok(()));
        assert!(t.get("mine").is_some());
        assert!(t.get("grid").is_some());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].file.ends_with("broken.toml") && errors[0].line == 1,
            "{:?}",
            errors[0]
        );
    }
}
