//! Participants' display names as others will see them (room listing, status, overlays): whatever a publisher
//! asked for (WHIP `?name=`, Janus `display`), without the characters that hide or reorder text, and short.

/// Longest display name kept, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Bidirectional embedding, override and isolate controls: they make a name read differently from what it is
/// (`U+202E` turns `gnp.exe` into `exe.png`). LRM, RLM and ALM too, being invisible.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `raw` without control and bidirectional-control characters, trimmed, at most [`MAX_DISPLAY_NAME_CHARS`];
/// `None` when nothing is left, so the caller falls back to a generated name.
pub fn clean(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .collect();
    let name: String = kept.trim().chars().take(MAX_DISPLAY_NAME_CHARS).collect();
    let name = name.trim_end().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let cases: [(&str, Option<&str>); 9] = [
            ("Alice", Some("Alice")),
            ("  Bob  ", Some("Bob")),
            ("", None),
            ("   ", None),
            ("\u{202E}\u{2066}\u{2069}", None),
            ("Ev\u{202E}gnp.exe", Some("Evgnp.exe")),
            (
                "a\u{202A}b\u{202B}c\u{202C}d\u{202D}e\u{2067}f\u{2068}g\u{200F}h",
                Some("abcdefgh"),
            ),
            ("line\r\nbreak\u{0}\u{1b}[31m\u{7f}\u{85}", Some("linebreak[31m")),
            ("Zoë 日本 🎥", Some("Zoë 日本 🎥")),
        ];
        for (raw, want) in cases {
            assert_eq!(clean(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn length_is_capped_in_characters() {
        let long = "é".repeat(500);
        assert_eq!(clean(&long).unwrap().chars().count(), MAX_DISPLAY_NAME_CHARS);
        // Cut at the cap, then no trailing space left over.
        let spaced = format!("{} tail", "x".repeat(MAX_DISPLAY_NAME_CHARS - 1));
        assert_eq!(clean(&spaced).unwrap(), "x".repeat(MAX_DISPLAY_NAME_CHARS - 1));
    }
}
