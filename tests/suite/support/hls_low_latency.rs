//! A validator for low-latency HLS media playlists (RFC 8216bis 4.4.3.7-4.4.5.3): what `EXT-X-PART`,
//! `EXT-X-PART-INF`, `EXT-X-SERVER-CONTROL`, `EXT-X-PRELOAD-HINT` and `EXT-X-MAP` require of a playlist, checked
//! line by line against the RFC's text, never against callcast's own playlist code.

use super::hls_ladder::attribute_list;
use std::collections::BTreeMap;

/// One `EXT-X-PART`: the segment it belongs to (media sequence number), its URI, duration, independence.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub msn: u64,
    pub uri: String,
    pub duration: f64,
    pub independent: bool,
}

#[derive(Debug, Clone)]
pub struct LowLatencyPlaylist {
    pub target_duration: u64,
    pub part_target: f64,
    pub part_hold_back: f64,
    pub media_sequence: u64,
    /// Whole segments: (msn, uri, EXTINF seconds).
    pub segments: Vec<(u64, String, f64)>,
    pub parts: Vec<Part>,
    pub map: Option<String>,
    pub preload_hint: Option<String>,
    pub ended: bool,
}

fn quoted(attributes: &BTreeMap<String, String>, name: &str, line: &str) -> Result<String, String> {
    let value = attributes.get(name).ok_or(format!("no {name} in {line}"))?;
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or(format!("{name} is no quoted string in {line}"))
}

fn decimal(attributes: &BTreeMap<String, String>, name: &str, line: &str) -> Result<f64, String> {
    attributes
        .get(name)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or(format!("{name} is no decimal in {line}"))
}

/// Parses and checks a low-latency media playlist:
/// - `#EXTM3U` first, one `EXT-X-VERSION`, at least 6 when `EXT-X-MAP` is used (§7), one `EXT-X-TARGETDURATION`,
///   and every `EXTINF` rounded to the nearest second at most the target duration (4.4.3.1);
/// - with any `EXT-X-PART`: `EXT-X-PART-INF` with a `PART-TARGET` (4.4.3.7), every part's `DURATION` at most it
///   (4.4.4.9), `EXT-X-SERVER-CONTROL` with `PART-HOLD-BACK` (required with parts, at least twice the part target;
///   the RFC recommends three times, which is checked here) and `CAN-BLOCK-RELOAD=YES` (4.4.3.8, and blocking
///   reload is what low latency needs);
/// - `INDEPENDENT` only `YES`; `EXT-X-MAP` before the first segment or part;
/// - `EXT-X-PRELOAD-HINT` with `TYPE=PART` and a `URI`, at most one, the playlist's last tag, and none after
///   `EXT-X-ENDLIST` (4.4.5.3);
/// - a segment's parts add up to its `EXTINF` (within a millisecond a part: both are rounded to ms).
pub fn parse(text: &str) -> Result<LowLatencyPlaylist, String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.first() != Some(&"#EXTM3U") {
        return Err("the first line is not #EXTM3U".into());
    }
    let mut version = None;
    let mut target = None;
    let mut part_target = None;
    let mut server_control = None;
    let mut media_sequence = 0;
    let mut segments = Vec::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut map = None;
    let mut hint = None;
    let mut ended = false;
    let mut extinf = None;
    for (i, line) in lines.iter().enumerate().skip(1) {
        let line = *line;
        let msn = media_sequence + segments.len() as u64;
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            if version
                .replace(v.parse::<u32>().map_err(|_| format!("bad {line}"))?)
                .is_some()
            {
                return Err("EXT-X-VERSION twice".into());
            }
        } else if let Some(t) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(t.parse::<u64>().map_err(|_| format!("bad {line}"))?);
        } else if let Some(m) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            if !segments.is_empty() || !parts.is_empty() {
                return Err("EXT-X-MEDIA-SEQUENCE after a segment".into());
            }
            media_sequence = m.parse().map_err(|_| format!("bad {line}"))?;
        } else if let Some(list) = line.strip_prefix("#EXT-X-PART-INF:") {
            part_target = Some(decimal(&attribute_list(list)?, "PART-TARGET", line)?);
        } else if let Some(list) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            server_control = Some(attribute_list(list)?);
        } else if let Some(list) = line.strip_prefix("#EXT-X-MAP:") {
            map = Some(quoted(&attribute_list(list)?, "URI", line)?);
        } else if let Some(list) = line.strip_prefix("#EXT-X-PART:") {
            if map.is_none() {
                return Err(format!("{line} before any EXT-X-MAP"));
            }
            let a = attribute_list(list)?;
            let independent = match a.get("INDEPENDENT").map(String::as_str) {
                None => false,
                Some("YES") => true,
                Some(other) => return Err(format!("INDEPENDENT={other} in {line}")),
            };
            parts.push(Part {
                msn,
                uri: quoted(&a, "URI", line)?,
                duration: decimal(&a, "DURATION", line)?,
                independent,
            });
        } else if let Some(list) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            let a = attribute_list(list)?;
            if a.get("TYPE").map(String::as_str) != Some("PART") {
                return Err(format!("TYPE is not PART in {line}"));
            }
            if hint.replace(quoted(&a, "URI", line)?).is_some() {
                return Err("EXT-X-PRELOAD-HINT twice".into());
            }
            if i != lines.len() - 1 {
                return Err(format!("{line} is not the last tag"));
            }
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            extinf = Some(
                rest.split(',')
                    .next()
                    .and_then(|d| d.parse::<f64>().ok())
                    .ok_or(format!("bad {line}"))?,
            );
        } else if line == "#EXT-X-ENDLIST" {
            ended = true;
        } else if !line.starts_with('#') {
            if map.is_none() {
                return Err(format!("segment {line} before any EXT-X-MAP"));
            }
            let duration = extinf.take().ok_or(format!("{line} without EXTINF"))?;
            segments.push((msn, line.trim().to_string(), duration));
        }
    }
    let target = target.ok_or("no EXT-X-TARGETDURATION")?;
    let version = version.ok_or("no EXT-X-VERSION")?;
    if map.is_some() && version < 6 {
        return Err(format!("EXT-X-MAP needs version 6, not {version}"));
    }
    if ended && hint.is_some() {
        return Err("a preload hint in an ended playlist".into());
    }
    for (_, uri, d) in &segments {
        if d.round() as u64 > target {
            return Err(format!("{uri} lasts {d} s, over the target duration {target}"));
        }
    }
    let (part_target, part_hold_back) = if parts.is_empty() && hint.is_none() {
        (0.0, 0.0)
    } else {
        let part_target = part_target.ok_or("parts without EXT-X-PART-INF")?;
        let control = server_control.ok_or("parts without EXT-X-SERVER-CONTROL")?;
        let hold_back = decimal(&control, "PART-HOLD-BACK", "EXT-X-SERVER-CONTROL")?;
        if hold_back < 3.0 * part_target - 1e-9 {
            return Err(format!(
                "PART-HOLD-BACK {hold_back} under three part targets ({part_target})"
            ));
        }
        if control.get("CAN-BLOCK-RELOAD").map(String::as_str) != Some("YES") {
            return Err("no CAN-BLOCK-RELOAD=YES".into());
        }
        if let Some(p) = parts.iter().find(|p| p.duration > part_target + 1e-9) {
            return Err(format!(
                "{} lasts {} s, over PART-TARGET {part_target}",
                p.uri, p.duration
            ));
        }
        (part_target, hold_back)
    };
    for (msn, uri, d) in &segments {
        let of_segment: Vec<&Part> = parts.iter().filter(|p| p.msn == *msn).collect();
        let sum: f64 = of_segment.iter().map(|p| p.duration).sum();
        if !of_segment.is_empty() && (sum - d).abs() > 0.001 * of_segment.len() as f64 + 1e-9 {
            return Err(format!("{uri}: its parts last {sum} s, its EXTINF {d} s"));
        }
    }
    Ok(LowLatencyPlaylist {
        target_duration: target,
        part_target,
        part_hold_back,
        media_sequence,
        segments,
        parts,
        map,
        preload_hint: hint,
        ended,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    const GOOD: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n#EXT-X-PART-INF:PART-TARGET=0.334\n\
        #EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-MAP:URI=\"init0.mp4\"\n\
        #EXT-X-PART:DURATION=0.333,URI=\"a.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.334,URI=\"b.m4s\"\n\
        #EXTINF:0.667,\nseg5.m4s\n#EXT-X-PART:DURATION=0.300,URI=\"c.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"d.m4s\"\n";

    #[test]
    fn the_validator_refuses_what_the_rfc_refuses_of_low_latency_playlists() {
        let good = parse(GOOD).unwrap();
        assert_eq!(good.parts.len(), 3);
        assert_eq!((good.parts[2].msn, good.parts[2].independent), (6, true));
        assert_eq!(good.preload_hint.as_deref(), Some("d.m4s"));
        for bad in [
            GOOD.replace("#EXT-X-PART-INF:PART-TARGET=0.334\n", ""),
            GOOD.replace("DURATION=0.334", "DURATION=0.335"),
            GOOD.replace("PART-HOLD-BACK=1.002", "PART-HOLD-BACK=0.700"),
            GOOD.replace("CAN-BLOCK-RELOAD=YES,", ""),
            GOOD.replace("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n", ""),
            GOOD.replace("#EXT-X-VERSION:6", "#EXT-X-VERSION:3"),
            GOOD.replace("#EXT-X-MAP:URI=\"init0.mp4\"\n", ""),
            GOOD.replace(
                "INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.334",
                "INDEPENDENT=NO\n#EXT-X-PART:DURATION=0.334",
            ),
            GOOD.replace("TYPE=PART,", "TYPE=MAP,"),
            format!("{GOOD}#EXT-X-PART:DURATION=0.300,URI=\"e.m4s\"\n"),
            format!("{GOOD}#EXT-X-ENDLIST\n"),
            GOOD.replace("#EXTINF:0.667", "#EXTINF:0.900"),
            GOOD.replace("#EXTINF:0.667", "#EXTINF:1.600"),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
