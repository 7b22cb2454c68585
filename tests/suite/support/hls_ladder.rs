//! A small validator for HLS multivariant playlists (RFC 8216bis 4.4.6.2 `EXT-X-STREAM-INF` and 4.4.6.1's
//! rules on what a multivariant playlist may hold), and the measures its tags are checked against: a
//! media playlist's segments and its peak segment bit rate as the RFC defines it.

use std::collections::BTreeMap;
use std::path::Path;

/// One `EXT-X-STREAM-INF` and the URI after it.
#[derive(Debug, Clone)]
pub struct StreamInf {
    pub attributes: BTreeMap<String, String>,
    pub uri: String,
}

impl StreamInf {
    pub fn bandwidth(&self) -> u64 {
        self.attributes["BANDWIDTH"].parse().expect("checked by parse")
    }

    pub fn resolution(&self) -> (i64, i64) {
        let (w, h) = self.attributes["RESOLUTION"].split_once('x').expect("checked by parse");
        (w.parse().expect("checked"), h.parse().expect("checked"))
    }

    /// The video codec of `CODECS` (`avc1.PPCCLL`), quotes removed.
    pub fn video_codec(&self) -> String {
        let codecs = self.attributes["CODECS"].trim_matches('"');
        codecs
            .split(',')
            .find(|c| c.starts_with("avc1."))
            .unwrap_or_default()
            .to_string()
    }
}

/// An attribute list (4.2) split into names and values; quoted strings keep their quotes (commas inside them
/// do not split).
pub fn attribute_list(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut attributes = BTreeMap::new();
    let (mut start, mut quoted) = (0, false);
    let mut pieces = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(format!("an unclosed quoted string in {text}"));
    }
    pieces.push(&text[start..]);
    for piece in pieces {
        let (name, value) = piece.split_once('=').ok_or(format!("`{piece}` is no NAME=value"))?;
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(format!("attribute name `{name}`"));
        }
        if attributes.insert(name.to_string(), value.to_string()).is_some() {
            return Err(format!("attribute {name} twice"));
        }
    }
    Ok(attributes)
}

/// Tags only a media playlist may hold (4.4.3, 4.4.4): a playlist with one of them is not multivariant.
const MEDIA_TAGS: [&str; 6] = [
    "#EXTINF",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-DISCONTINUITY",
];

/// Parses a multivariant playlist, checking it against the RFC's rules as it goes: `#EXTM3U` first, no media
/// playlist tag, each `EXT-X-STREAM-INF` followed by its URI with the required `BANDWIDTH` (a decimal integer)
/// and the `RESOLUTION` (WxH), `CODECS` (a quoted list) and `FRAME-RATE` (a decimal) a playlist with video
/// should carry; `EXT-X-VERSION` at most once.
pub fn parse_multivariant(text: &str) -> Result<Vec<StreamInf>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("the first line is not #EXTM3U".into());
    }
    let mut variants = Vec::new();
    let mut versions = 0;
    let mut pending: Option<BTreeMap<String, String>> = None;
    for line in lines {
        if let Some(tag) = MEDIA_TAGS.iter().find(|t| line.starts_with(*t)) {
            return Err(format!("a media playlist tag ({tag}) in a multivariant playlist"));
        }
        if line.starts_with("#EXT-X-VERSION:") {
            versions += 1;
        } else if let Some(list) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            if pending.is_some() {
                return Err("EXT-X-STREAM-INF without a URI after it".into());
            }
            let attributes = attribute_list(list)?;
            check_stream_inf(&attributes).map_err(|e| format!("{e} in {line}"))?;
            pending = Some(attributes);
        } else if !line.starts_with('#') {
            let attributes = pending.take().ok_or(format!("URI {line} without EXT-X-STREAM-INF"))?;
            variants.push(StreamInf {
                attributes,
                uri: line.trim().to_string(),
            });
        }
    }
    if pending.is_some() {
        return Err("the last EXT-X-STREAM-INF has no URI".into());
    }
    if versions > 1 {
        return Err("EXT-X-VERSION more than once".into());
    }
    if variants.is_empty() {
        return Err("no variant stream".into());
    }
    Ok(variants)
}

fn check_stream_inf(a: &BTreeMap<String, String>) -> Result<(), String> {
    let decimal = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    match a.get("BANDWIDTH") {
        Some(v) if decimal(v) && v != "0" => {}
        other => return Err(format!("BANDWIDTH {other:?}")),
    }
    match a.get("RESOLUTION").and_then(|r| r.split_once('x')) {
        Some((w, h)) if decimal(w) && decimal(h) => {}
        _ => return Err(format!("RESOLUTION {:?}", a.get("RESOLUTION"))),
    }
    match a.get("CODECS") {
        Some(c) if c.len() > 2 && c.starts_with('"') && c.ends_with('"') => {}
        other => return Err(format!("CODECS {other:?}")),
    }
    match a.get("FRAME-RATE").map(|f| f.parse::<f64>()) {
        Some(Ok(fps)) if fps > 0.0 => {}
        other => return Err(format!("FRAME-RATE {other:?}")),
    }
    Ok(())
}

/// A media playlist's target duration (s) and its segments as `(uri, EXTINF seconds)`.
pub fn media_segments(text: &str) -> (f64, Vec<(String, f64)>) {
    let target = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no target duration:\n{text}"));
    let mut segments = Vec::new();
    let mut duration = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest.split(',').next().and_then(|d| d.parse().ok());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let d = duration
                .take()
                .unwrap_or_else(|| panic!("{line} without EXTINF:\n{text}"));
            segments.push((line.trim().to_string(), d));
        }
    }
    (target, segments)
}

/// The peak segment bit rate of a media playlist (bit/s) as RFC 8216bis 4.4.6.2 defines it for `BANDWIDTH`:
/// the largest bit rate of any run of consecutive segments lasting 0.5 to 1.5 target durations. `dir` holds the
/// segment files.
pub fn peak_segment_bitrate(dir: &Path, target: f64, segments: &[(String, f64)]) -> f64 {
    let sizes: Vec<(f64, f64)> = segments
        .iter()
        .map(|(uri, d)| {
            let bytes = std::fs::metadata(dir.join(uri))
                .unwrap_or_else(|e| panic!("{uri}: {e}"))
                .len();
            (bytes as f64 * 8.0, *d)
        })
        .collect();
    let mut peak: f64 = 0.0;
    for start in 0..sizes.len() {
        let (mut bits, mut seconds) = (0.0, 0.0);
        for (b, d) in &sizes[start..] {
            bits += b;
            seconds += d;
            if seconds > 1.5 * target {
                break;
            }
            if seconds >= 0.5 * target {
                peak = peak.max(bits / seconds);
            }
        }
    }
    peak
}

/// The `profile_idc` (`PP` of `avc1.PPCCLL`) of an H.264 profile as ffprobe names it.
pub fn avc_profile_idc(profile: &str) -> u8 {
    match profile {
        "Constrained Baseline" | "Baseline" => 0x42,
        "Main" => 0x4d,
        "High" => 0x64,
        other => panic!("unexpected H.264 profile {other}"),
    }
}

/// `(width, height, profile, level, r_frame_rate)` of the video of `input` as ffprobe reads it.
fn video_stream(input: &str) -> (i64, i64, String, i64, String) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height,profile,level,r_frame_rate", "-of", "json", input])
        .output()
        .expect("ffprobe runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {input}: {stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let s = &json["streams"][0];
    let text = |k: &str| s[k].as_str().unwrap_or_else(|| panic!("{k} in {json}")).to_string();
    let number = |k: &str| s[k].as_i64().unwrap_or_else(|| panic!("{k} in {json}"));
    (
        number("width"),
        number("height"),
        text("profile"),
        number("level"),
        text("r_frame_rate"),
    )
}

/// The first decoded video frame of each segment in `dir` as `(pts seconds, key_frame, pict_type)`: one
/// ffprobe over the segments joined end to end (as a player appends them), each frame placed in its segment by
/// its packet's byte position; decoded from the very first packet (`+showall`: ffmpeg otherwise hides frames
/// before the first keyframe, so any stream would seem to start on one).
fn segment_starts(dir: &Path, segments: &[(String, f64)]) -> Vec<(f64, bool, String)> {
    let mut offsets = Vec::new();
    let mut end = 0;
    for (uri, _) in segments {
        offsets.push(end);
        end += std::fs::metadata(dir.join(uri))
            .unwrap_or_else(|e| panic!("{uri}: {e}"))
            .len();
    }
    let joined: Vec<String> = segments
        .iter()
        .map(|(uri, _)| dir.join(uri).to_string_lossy().into_owned())
        .collect();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-flags2",
            "+showall",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .args(["frame=pts_time,key_frame,pict_type,pkt_pos", "-of", "json"])
        .arg(format!("concat:{}", joined.join("|")))
        .output()
        .expect("ffprobe runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {}: {stderr}",
        dir.display()
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let frames = json["frames"].as_array().cloned().unwrap_or_default();
    offsets
        .iter()
        .map(|&offset| {
            let first = frames
                .iter()
                .find(|f| {
                    f["pkt_pos"]
                        .as_str()
                        .and_then(|p| p.parse::<u64>().ok())
                        .is_some_and(|p| p >= offset)
                })
                .unwrap_or_else(|| panic!("{}: no frame from byte {offset}", dir.display()));
            let pts = first["pts_time"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("pts_time");
            let kind = first["pict_type"].as_str().unwrap_or_default().to_string();
            (pts, first["key_frame"] == 1, kind)
        })
        .collect()
}

/// Checks the multivariant playlist an ended HLS output with renditions left in `hls_dir` (rendition folders
/// `folders`, the main one first) against the RFC's rules and against its renditions as ffprobe reads them;
/// and that the server serves them.
pub fn assert_ladder(server: &super::Server, id: &str, hls_dir: &Path, folders: &[&str]) {
    let text = std::fs::read_to_string(hls_dir.join("index.m3u8")).expect("multivariant playlist");
    let variants = parse_multivariant(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let uris: Vec<String> = variants.iter().map(|v| v.uri.clone()).collect();
    let expected: Vec<String> = folders.iter().map(|f| format!("{f}/index.m3u8")).collect();
    assert_eq!(uris, expected, "{text}");
    let served = |path: &str| {
        let url = server.url(&format!("/v1/broadcasts/{id}/hls/{path}"));
        let response = super::http().get(&url).send().expect("GET");
        (response.status().as_u16(), response.bytes().expect("body").to_vec())
    };
    assert_eq!(
        served("index.m3u8"),
        (200, text.clone().into_bytes()),
        "the served multivariant playlist"
    );

    let read_media = |folder: &str| {
        let media = std::fs::read_to_string(hls_dir.join(folder).join("index.m3u8")).expect("media playlist");
        assert!(
            media.trim_end().ends_with("#EXT-X-ENDLIST"),
            "{folder}: not ended:\n{media}"
        );
        media
    };
    let (_, main_segments) = media_segments(&read_media(folders[0]));
    let main_starts = segment_starts(&hls_dir.join(folders[0]), &main_segments);
    for variant in &variants {
        let folder = variant.uri.trim_end_matches("/index.m3u8");
        let media = read_media(folder);
        let (target, segments) = media_segments(&media);
        let dir = hls_dir.join(folder);
        // Cut at the same times as the main rendition: as many segments, as long.
        let durations: Vec<f64> = segments.iter().map(|s| s.1).collect();
        let main_durations: Vec<f64> = main_segments.iter().map(|s| s.1).collect();
        assert_eq!(durations.len(), main_durations.len(), "{folder}:\n{media}");
        for (d, m) in durations.iter().zip(&main_durations) {
            assert!(
                (d - m).abs() < 0.002,
                "{folder}: durations {durations:?}, main {main_durations:?}"
            );
        }
        // Each segment starts with a keyframe at the main one's timestamp: a player switches between segments.
        let starts = segment_starts(&dir, &segments);
        for (((uri, _), (pts, key, kind)), (main_start, ..)) in segments.iter().zip(&starts).zip(&main_starts) {
            assert!(*key && kind == "I", "{folder}/{uri} starts with a {kind} frame");
            assert!(
                (pts - main_start).abs() < 0.001,
                "{folder}/{uri} starts at {pts}, the main one at {main_start}"
            );
        }
        // The tags say what the segments are.
        let first = dir.join(&segments[0].0).to_string_lossy().into_owned();
        let (width, height, profile, level, rate) = video_stream(&first);
        assert_eq!(variant.resolution(), (width, height), "{folder}: RESOLUTION");
        let expected_codec = format!("avc1.{:02x}", avc_profile_idc(&profile));
        let codec = variant.video_codec();
        assert!(
            codec.len() == 11 && codec.starts_with(&expected_codec),
            "{folder}: CODECS {codec} for {profile}"
        );
        assert_eq!(
            i64::from_str_radix(&codec[9..], 16),
            Ok(level),
            "{folder}: the level of {codec}"
        );
        assert!(
            variant.attributes["CODECS"].contains("mp4a.40.2"),
            "{folder}: no AAC-LC in CODECS"
        );
        let (num, den) = rate.split_once('/').expect("a rate");
        let fps = num.parse::<f64>().expect("rate") / den.parse::<f64>().expect("rate");
        let listed_fps: f64 = variant.attributes["FRAME-RATE"].parse().expect("checked");
        assert!(
            (fps - listed_fps).abs() < 0.01,
            "{folder}: FRAME-RATE {listed_fps}, stream {rate}"
        );
        let peak = peak_segment_bitrate(&dir, target, &segments);
        assert!(
            variant.bandwidth() as f64 >= peak,
            "{folder}: BANDWIDTH {} under the peak {peak:.0}",
            variant.bandwidth()
        );
        println!(
            "{folder}: {width}x{height} {codec}, BANDWIDTH {}, peak segment bit rate {peak:.0}",
            variant.bandwidth()
        );
        // Served over HTTP from its folder.
        let (code, body) = served(&format!("{folder}/index.m3u8"));
        assert_eq!(
            (code, body),
            (200, media.into_bytes()),
            "{folder}: the served media playlist"
        );
        assert_eq!(
            served(&format!("{folder}/{}", segments[0].0)).0,
            200,
            "{folder}: a served segment"
        );
    }
    assert_eq!(served("1080p/index.m3u8").0, 404, "a rendition that is not there");
    assert_eq!(
        served("..%2F..%2Fbroadcast.json/index.m3u8").0,
        404,
        "outside the output's folder"
    );
}

#[cfg(test)]
mod tests {
    use super::parse_multivariant;

    #[test]
    fn the_validator_refuses_what_the_rfc_refuses() {
        let good = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",\
                    FRAME-RATE=30.000\n360p/index.m3u8\n";
        assert_eq!(parse_multivariant(good).unwrap()[0].uri, "360p/index.m3u8");
        for bad in [
            good.replace("#EXTM3U\n", ""),
            good.replace("BANDWIDTH=1000,", ""),
            good.replace("BANDWIDTH=1000", "BANDWIDTH=1e3"),
            good.replace("RESOLUTION=640x360", "RESOLUTION=640"),
            good.replace("\"avc1.64001e,mp4a.40.2\"", "avc1.64001e"),
            good.replace(",FRAME-RATE=30.000", ""),
            good.replace("360p/index.m3u8\n", ""),
            format!("{good}#EXTINF:1.0,\n"),
            good.replace("BANDWIDTH=1000,", "BANDWIDTH=1000,BANDWIDTH=2000,"),
        ] {
            assert!(parse_multivariant(&bad).is_err(), "{bad}");
        }
    }
}
