//! How a template draws participants' name labels (its `[label]` table): a box whose height is a fraction of
//! the tile's, so a label reads the same on a full-canvas tile and on one of nine. Defaults match the look of the
//! labels before templates could set it: white text on a see-through dark box at the tile's bottom left.

use serde::{Deserialize, Serialize, Serializer};

/// The label box's height as a fraction of the tile's.
pub const DEFAULT_HEIGHT: f64 = 0.08;
pub const DEFAULT_COLOR: [u8; 4] = [255, 255, 255, 255];
/// Black at 60%: white text reads on any picture, the picture shows through.
pub const DEFAULT_BACKGROUND: [u8; 4] = [0, 0, 0, 0x99];
/// Largest `height`: a label over half the tile hides the person.
pub const MAX_HEIGHT: f64 = 0.5;

/// Which corner of the tile the label sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelPosition {
    #[default]
    BottomLeft,
    BottomRight,
    TopLeft,
    TopRight,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LabelStyle {
    /// Fraction of the tile's height.
    pub height: f64,
    #[serde(serialize_with = "hex")]
    pub color: [u8; 4],
    #[serde(serialize_with = "hex")]
    pub background: [u8; 4],
    pub position: LabelPosition,
}

impl Default for LabelStyle {
    fn default() -> Self {
        Self {
            height: DEFAULT_HEIGHT,
            color: DEFAULT_COLOR,
            background: DEFAULT_BACKGROUND,
            position: LabelPosition::default(),
        }
    }
}

/// The `[label]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LabelFile {
    height: Option<f64>,
    color: Option<String>,
    background: Option<String>,
    position: Option<LabelPosition>,
}

impl LabelFile {
    /// The style, or what is wrong with it.
    pub(super) fn style(&self) -> Result<LabelStyle, String> {
        let d = LabelStyle::default();
        let height = self.height.unwrap_or(d.height);
        if !(height > 0.0 && height <= MAX_HEIGHT) {
            return Err(format!(
                "label height {height} must be above 0 and at most {MAX_HEIGHT} of the tile"
            ));
        }
        let colour = |name: &str, value: &Option<String>, default| match value {
            None => Ok(default),
            Some(text) => rgba(text).ok_or_else(|| format!("label {name} `{text}` is not RRGGBB or RRGGBBAA")),
        };
        Ok(LabelStyle {
            height,
            color: colour("color", &self.color, d.color)?,
            background: colour("background", &self.background, d.background)?,
            position: self.position.unwrap_or(d.position),
        })
    }
}

/// `RRGGBB` (opaque) or `RRGGBBAA`, with or without a leading `#`.
fn rgba(text: &str) -> Option<[u8; 4]> {
    let hex = text.strip_prefix('#').unwrap_or(text);
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    let alpha = if hex.len() == 8 { byte(6)? } else { 255 };
    Some([byte(0)?, byte(2)?, byte(4)?, alpha])
}

fn hex<S: Serializer>(c: &[u8; 4], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:02x}{:02x}{:02x}{:02x}", c[0], c[1], c[2], c[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> LabelFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_label_table_sets_each_field_and_defaults_the_rest() {
        let style = file("height = 0.12\ncolor = \"ffcc00\"\nposition = \"top-right\"").style();
        assert_eq!(
            style,
            Ok(LabelStyle {
                height: 0.12,
                color: [255, 204, 0, 255],
                background: [0, 0, 0, 153],
                position: LabelPosition::TopRight,
            })
        );
        assert_eq!(file("").style(), Ok(LabelStyle::default()));
        assert_eq!(
            file("background = \"#10203040\"").style().unwrap().background,
            [16, 32, 48, 64]
        );
    }

    #[test]
    fn bad_label_fields_are_named() {
        assert!(file("height = 0.0").style().unwrap_err().contains("height"));
        assert!(file("height = 0.6").style().unwrap_err().contains("height"));
        assert!(file("color = \"white\"").style().unwrap_err().contains("color `white`"));
        assert!(file("background = \"12345\"")
            .style()
            .unwrap_err()
            .contains("background"));
        assert!(toml::from_str::<LabelFile>("position = \"middle\"").is_err());
        assert!(toml::from_str::<LabelFile>("size = 1").is_err());
    }
}
