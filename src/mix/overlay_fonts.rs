//! The fonts text overlays are drawn with: the shipped one (`assets/fonts/DejaVuSans.ttf`: Latin with its
//! accents, Greek, Cyrillic, Hebrew, Arabic with its joining forms (OpenType `arab` and `hebr` tables), many
//! symbols) and, for what it lacks (CJK above all), a fallback font a Debian package
//! installs, found once among known paths. Without a fallback those characters draw the shipped font's
//! missing-glyph box, as does anything neither font has (most emoji): never a failure.

use ab_glyph::{Font, FontVec};
use std::path::Path;
use std::sync::Arc;

/// Where a fallback is looked for, in order: the first that reads as a font is taken. `fonts-droid-fallback`
/// (deploy/install-deps.sh installs it: Apache-2.0, 1.8 MB download) is the small one with CJK; the others are
/// the larger CJK packages a machine may have instead (`fonts-wqy-microhei`, `fonts-noto-cjk`; index 0 of a
/// collection).
pub const FALLBACK_FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts-droid-fallback/truetype/DroidSansFallback.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
];

/// The shipped font and, when the machine has one, the fallback for the characters it lacks. Each keeps its
/// file's bytes: outlines come from them through ab_glyph, shaping through rustybuzz.
#[derive(Clone, Debug)]
pub struct Fonts {
    pub primary: Arc<FontVec>,
    pub fallback: Option<Arc<FontVec>>,
}

impl Fonts {
    /// The font at `primary` (an error naming it when it cannot be read) and the first fallback found (none is
    /// logged once, not an error).
    pub fn load(primary: &Path) -> Result<Self, String> {
        let primary = read_font(primary)?;
        let fallback = FALLBACK_FONT_FILES
            .iter()
            .find_map(|path| read_font(Path::new(path)).ok());
        if fallback.is_none() {
            tracing::info!(
                "no fallback font found (looked for {}): characters DejaVu Sans lacks (CJK) draw as boxes",
                FALLBACK_FONT_FILES.join(", ")
            );
        }
        Ok(Self { primary, fallback })
    }

    /// The font that draws `c`: the shipped one when it has the character, else the fallback when that has it,
    /// else the shipped one again (its missing-glyph box).
    pub fn face_for(&self, c: char) -> Face {
        if self.primary.glyph_id(c).0 != 0 {
            return Face::Primary;
        }
        match &self.fallback {
            Some(fallback) if fallback.glyph_id(c).0 != 0 => Face::Fallback,
            _ => Face::Primary,
        }
    }

    pub fn get(&self, face: Face) -> &FontVec {
        match (face, &self.fallback) {
            (Face::Fallback, Some(fallback)) => fallback,
            _ => &self.primary,
        }
    }
}

/// Which of the `Fonts` a glyph comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Primary,
    Fallback,
}

fn read_font(path: &Path) -> Result<Arc<FontVec>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Index 0: the font itself, or the first of a collection (.ttc).
    let font = FontVec::try_from_vec_and_index(bytes, 0).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Arc::new(font))
}

/// The shipped font and the machine's fallback, for tests: a missing fallback fails the tests that need it.
#[cfg(test)]
pub fn for_tests() -> Fonts {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/DejaVuSans.ttf");
    Fonts::load(Path::new(path)).expect("the shipped font reads")
}
