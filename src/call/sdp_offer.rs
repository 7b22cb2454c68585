//! What a remote SDP offer asks for, read the way webrtcbin will read it, before any pipeline exists.
//!
//! GStreamer's SDP parser is lenient: it skips leading whitespace (so `" m=video"` is a media section), skips
//! lines whose second character is not `=`, ends a value at a lone `\r` and stops at a NUL. A check that reads
//! the text differently from the parser can be walked around (an offer of 200 media sections written with a
//! leading space once passed a 16-section limit that counted lines starting with `m=`). So an offer must be
//! plain lines the parser takes as they are, and every figure below is taken from the parsed message.

use thiserror::Error;

/// How an offer fails the checks; the message is for the person who sent it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OfferError {
    #[error("offer line {line} is not of the form `x=value` (no leading space, one letter, `=`)")]
    MalformedLine { line: usize },
    #[error("offer contains a NUL byte")]
    Nul,
    #[error("SDP does not parse")]
    Unparsable,
    #[error("offer has {found} media sections; at most {max}")]
    TooManySections { found: usize, max: usize },
}

/// The parts of a parsed offer our checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    pub media_sections: usize,
    /// RTP encoding names from every `a=rtpmap`, upper case.
    pub encodings: Vec<String>,
}

/// Checks the offer's lines, parses it with GStreamer's parser and counts on the result.
pub fn inspect(sdp_text: &str, max_sections: usize) -> Result<OfferSummary, OfferError> {
    check_lines(sdp_text)?;
    let sdp = gst_sdp::SDPMessage::parse_buffer(sdp_text.as_bytes()).map_err(|_| OfferError::Unparsable)?;
    let media_sections = sdp.medias_len() as usize;
    if media_sections > max_sections {
        return Err(OfferError::TooManySections {
            found: media_sections,
            max: max_sections,
        });
    }
    Ok(OfferSummary {
        media_sections,
        encodings: encodings(&sdp),
    })
}

/// Every line ends at `\n` (with an optional `\r` before it) and is empty or `x=...` with `x` a lower-case
/// letter: then the parser sees exactly the lines we see, with nothing skipped or cut short.
fn check_lines(sdp_text: &str) -> Result<(), OfferError> {
    if sdp_text.contains('\0') {
        return Err(OfferError::Nul);
    }
    for (index, line) in sdp_text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        let well_formed = bytes.len() >= 2 && bytes[0].is_ascii_lowercase() && bytes[1] == b'=' && !line.contains('\r');
        if !well_formed {
            return Err(OfferError::MalformedLine { line: index + 1 });
        }
    }
    Ok(())
}

fn encodings(sdp: &gst_sdp::SDPMessageRef) -> Vec<String> {
    let mut names = Vec::new();
    for media in sdp.medias() {
        for attr in media.attributes() {
            if attr.key() == "rtpmap" {
                if let Some(encoding) = attr
                    .value()
                    .and_then(|v| v.split_whitespace().nth(1))
                    .and_then(|e| e.split('/').next())
                {
                    names.push(encoding.to_ascii_uppercase());
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    const VIDEO: &str = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
    const AUDIO: &str = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";

    fn init() {
        gst::init().expect("GStreamer");
    }

    #[test]
    fn a_plain_offer_is_summarised_from_the_parsed_message() {
        init();
        let summary = inspect(&format!("{HEAD}{VIDEO}{AUDIO}"), 16).expect("valid");
        assert_eq!(summary.media_sections, 2);
        assert_eq!(summary.encodings, ["VP8", "OPUS"]);
        // Bare `\n` line ends are what some clients send; the parser takes them too.
        let lf = format!("{HEAD}{VIDEO}").replace("\r\n", "\n");
        assert_eq!(inspect(&lf, 16).expect("valid").media_sections, 1);
    }

    #[test]
    fn the_section_limit_counts_what_the_parser_counts() {
        init();
        let seventeen = format!("{HEAD}{}", VIDEO.repeat(17));
        assert_eq!(
            inspect(&seventeen, 16),
            Err(OfferError::TooManySections { found: 17, max: 16 })
        );
        assert!(inspect(&format!("{HEAD}{}", VIDEO.repeat(16)), 16).is_ok());
    }

    /// Each of these is read by GStreamer's parser as one more media section, and by a text scan for lines
    /// starting with `m=` as none.
    #[test]
    fn lines_the_parser_would_read_differently_are_refused() {
        init();
        for (what, prefix) in [
            ("space", " "),
            ("tab", "\t"),
            ("form feed", "\u{c}"),
            ("blank line with spaces", "  \r\n  "),
        ] {
            let hidden = VIDEO.replace("m=", &format!("{prefix}m="));
            let offer = format!("{HEAD}{VIDEO}{hidden}");
            let parsed = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).expect("GStreamer parses it");
            assert_eq!(parsed.medias_len(), 2, "{what}: the parser sees the hidden section");
            assert!(
                matches!(inspect(&offer, 16), Err(OfferError::MalformedLine { .. })),
                "{what}: {:?}",
                inspect(&offer, 16)
            );
        }
        // GLib does not count a vertical tab as space, so the parser skips that line; refused all the same.
        let vertical_tab = format!("{HEAD}{VIDEO}\u{b}{VIDEO}");
        assert!(matches!(
            inspect(&vertical_tab, 16),
            Err(OfferError::MalformedLine { line: 7 })
        ));
        let lone_cr = format!("{HEAD}a=x\r{VIDEO}");
        assert!(matches!(inspect(&lone_cr, 16), Err(OfferError::MalformedLine { .. })));
        let no_equals = format!("{HEAD}garbage line\r\n{VIDEO}");
        assert_eq!(inspect(&no_equals, 16), Err(OfferError::MalformedLine { line: 5 }));
        assert_eq!(inspect(&format!("{HEAD}{VIDEO}\0{VIDEO}"), 16), Err(OfferError::Nul));
    }
}
