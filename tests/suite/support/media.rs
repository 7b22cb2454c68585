//! What comes out, checked with ffprobe and ffmpeg.

use std::path::Path;
use std::process::Command;

/// Runs ffprobe at `-v error` on `input` with `args`: its standard output, or why the probe failed (it could
/// not run, exited non-zero, or reported an error: a probe that read nothing or read damage must not pass
/// as "no frames, so no gap").
fn ffprobe(args: &[&str], input: &str) -> Result<String, String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(input)
        .output()
        .map_err(|e| format!("ffprobe could not run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        return Err(format!("ffprobe {input}: {}: {}", out.status, stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// ffprobe's JSON (`-of json`) for `input` with `args`; panics if the probe fails or the output is not JSON.
fn probe_json(args: &[&str], input: &str) -> serde_json::Value {
    let args: Vec<&str> = args.iter().copied().chain(["-of", "json"]).collect();
    let out = ffprobe(&args, input).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ffprobe {input}: not JSON ({e}): {out}"))
}

/// Each stream's `(codec_type, start_time)` as ffprobe reads them (seconds).
pub fn stream_starts(input: &str) -> Vec<(String, f64)> {
    let json = probe_json(&["-show_entries", "stream=codec_type,start_time"], input);
    json["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("ffprobe {input}: no streams in {json}"))
        .iter()
        .map(|s| {
            let start = s["start_time"].as_str().and_then(|t| t.parse().ok());
            let kind = s["codec_type"].as_str().unwrap_or("").to_string();
            (
                kind,
                start.unwrap_or_else(|| panic!("ffprobe {input}: no start time in {s}")),
            )
        })
        .collect()
}

/// The container's duration in seconds, as ffprobe reads it; panics if the probe fails or reads no duration.
pub fn duration_s(path: &Path) -> f64 {
    let input = path.to_string_lossy();
    let json = probe_json(&["-show_entries", "format=duration"], &input);
    json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("ffprobe {input}: no duration in {json}"))
}

/// The codec of a one-track file and its duration in seconds, as ffprobe reads them (cleanly).
pub fn codec_and_duration(path: &Path) -> (String, f64) {
    let input = path.to_string_lossy();
    let json = probe_json(&["-show_entries", "stream=codec_name:format=duration"], &input);
    let codec = json["streams"][0]["codec_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let seconds = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (codec, seconds)
}

/// The segment URIs an HLS playlist lists, in order.
pub fn listed_segments(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

/// The number of video and audio packets in a file, as ffprobe counts them (no decoding); panics if the probe
/// fails or the file has a stream of another kind.
pub fn packet_counts(path: &Path) -> (u64, u64) {
    let input = path.to_string_lossy();
    let json = probe_json(
        &["-count_packets", "-show_entries", "stream=codec_type,nb_read_packets"],
        &input,
    );
    let mut counts = (0, 0);
    for stream in json["streams"].as_array().into_iter().flatten() {
        let n = stream["nb_read_packets"].as_str().and_then(|n| n.parse().ok());
        match (stream["codec_type"].as_str(), n) {
            (Some("video"), Some(n)) => counts.0 = n,
            (Some("audio"), Some(n)) => counts.1 = n,
            _ => panic!("ffprobe {input}: {stream}"),
        }
    }
    counts
}

/// `(pts seconds, keyframe, width)` of every decoded video frame of `input`, in order; panics if ffprobe fails
/// (a segment it cannot decode must not read as "no frames, so nothing wrong").
pub fn video_frames(input: &str) -> Vec<(f64, bool, i64)> {
    let out = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame,pts_time,width",
            "-of",
            "csv=p=0",
        ],
        input,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    out.lines()
        .filter_map(|l| {
            let mut fields = l.split(',');
            let key = fields.next()? == "1";
            let pts = fields.next()?.parse().ok()?;
            let width = fields.next()?.trim().parse().ok()?;
            Some((pts, key, width))
        })
        .collect()
}

/// `(width, profile)` of the first video stream of `input`, e.g. `(640, "Constrained Baseline")`; panics if
/// ffprobe fails or reads no video stream.
pub fn video_profile(input: &str) -> (i64, String) {
    let json = probe_json(
        &["-select_streams", "v:0", "-show_entries", "stream=width,profile"],
        input,
    );
    let stream = &json["streams"][0];
    match (stream["width"].as_i64(), stream["profile"].as_str()) {
        (Some(width), Some(profile)) => (width, profile.to_string()),
        _ => panic!("{input}: no video width and profile in {json}"),
    }
}

/// `(codec_type, codec_name, width, height)` of each stream in a file or URL; panics if ffprobe fails.
pub fn streams(input: &str) -> Vec<(String, String, i64, i64)> {
    let json = probe_json(&["-show_entries", "stream=codec_type,codec_name,width,height"], input);
    json["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("ffprobe {input}: no streams in {json}"))
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                s["codec_name"].as_str().unwrap_or("").to_string(),
                s["width"].as_i64().unwrap_or(0),
                s["height"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// A decoded RGB frame.
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Frame {
    pub fn pixel(&self, x: i32, y: i32) -> [u8; 3] {
        let i = (y as usize * self.width + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    pub fn save_png(&self, path: &Path) {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
            .arg(format!("{}x{}", self.width, self.height))
            .args(["-i", "-"])
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().expect("stdin").write_all(&self.rgb)?;
                c.wait()
            });
        let _ = status;
    }
}

/// Decodes the last video frame of `input` (a segment or recording) at `width`x`height`.
pub fn last_frame(input: &Path, width: usize, height: usize) -> Option<Frame> {
    decode_last_frame(input, width, height).ok()
}

/// Like `last_frame`, saying why it failed.
pub fn decode_last_frame(input: &Path, width: usize, height: usize) -> Result<Frame, String> {
    // image2 with -update rewrites one file per frame: what remains is the last frame, as binary PPM.
    let out_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ppm = out_dir.path().join("last.ppm");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(input)
        .args(["-update", "1", "-pix_fmt", "rgb24"])
        .arg(&ppm)
        .output()
        .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&ppm).map_err(|e| {
        format!(
            "{}: no frame ({e}): {}",
            input.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let size = width * height * 3;
    // P6 header: "P6\n<w> <h>\n255\n" then the pixels; the pixels are the last `size` bytes.
    if bytes.len() < size || !bytes.starts_with(b"P6") {
        return Err(format!("{}: frame is not {width}x{height}", input.display()));
    }
    let rgb = bytes[bytes.len() - size..].to_vec();
    Ok(Frame { width, height, rgb })
}

/// True when `pixel` is within `tolerance` of `expected` on every channel.
pub fn close_to(pixel: [u8; 3], expected: [u8; 3], tolerance: u8) -> bool {
    pixel.iter().zip(expected).all(|(&a, b)| a.abs_diff(b) <= tolerance)
}

/// Video packets of `input` as (presentation time in seconds, keyframe), in time order; Err if ffprobe failed.
fn video_packets(input: &str) -> Result<Vec<(f64, bool)>, String> {
    let out = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
        ],
        input,
    )?;
    let mut packets = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .trim()
            .split_once(',')
            .and_then(|(pts, flags)| Some((pts.parse::<f64>().ok()?, flags.starts_with('K'))));
        packets.push(parsed.ok_or_else(|| format!("ffprobe {input}: unreadable packet line `{line}`"))?);
    }
    packets.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("no NaN"));
    Ok(packets)
}

/// Video packet presentation times (seconds) of `input`, in order, or why ffprobe could not read them (for
/// polling a file that may not be there yet).
pub fn try_video_pts(input: &str) -> Result<Vec<f64>, String> {
    Ok(video_packets(input)?.into_iter().map(|(t, _)| t).collect())
}

/// Video packet presentation times (seconds) of `input`, in order; panics if ffprobe fails.
pub fn video_pts(input: &str) -> Vec<f64> {
    try_video_pts(input).unwrap_or_else(|e| panic!("{e}"))
}

/// Presentation times (seconds) of the video keyframes of `input`, in order; panics if ffprobe fails.
pub fn keyframe_pts(input: &str) -> Vec<f64> {
    video_packets(input)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter_map(|(t, key)| key.then_some(t))
        .collect()
}

/// The largest gap between consecutive timestamps; infinite for fewer than two (no frames is not "no gap").
pub fn max_gap(times: &[f64]) -> f64 {
    if times.len() < 2 {
        return f64::INFINITY;
    }
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// Share of a window's frames that must be there before its gaps mean anything.
const MIN_FRAME_SHARE: f64 = 0.8;

/// The largest gap in `times`, the video of `what` over a window of at least `seconds` at `fps`, after
/// asserting the window holds at least 80% of the frames it should (and never fewer than two): a probe that
/// read little or nothing fails here instead of passing as "no gap".
pub fn window_max_gap(what: &str, times: &[f64], seconds: f64, fps: f64) -> f64 {
    let expected = seconds * fps;
    let needed = ((expected * MIN_FRAME_SHARE).ceil() as usize).max(2);
    assert!(
        times.len() >= needed,
        "{what}: {} video frames over a {seconds:.1} s window at {fps} fps; expected about {expected:.0}, \
         at least {needed}",
        times.len()
    );
    max_gap(times)
}

/// The first video frame of `input` as (presentation time in seconds, key_frame, pict_type), decoded from the
/// very first packet: `-flags2 +showall`, since ffmpeg's H.264 decoder otherwise hides every frame before the
/// first keyframe and any stream would seem to start on one. Reads only the first packets (a growing file is
/// fine); panics if ffprobe fails.
pub fn first_video_frame(input: &str) -> (f64, bool, String) {
    let json = probe_json(
        &[
            "-flags2",
            "+showall",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#10",
            "-show_entries",
            "frame=pts_time,key_frame,pict_type",
        ],
        input,
    );
    let first = &json["frames"][0];
    let pts = first["pts_time"].as_str().and_then(|t| t.parse().ok());
    let (Some(pts), Some(key)) = (pts, first["key_frame"].as_i64()) else {
        panic!("ffprobe {input}: no first video frame in {json}");
    };
    (pts, key == 1, first["pict_type"].as_str().unwrap_or("").to_string())
}

/// Decodes every stream of `input` to the end; panics with ffmpeg's complaints if it could not, or if it
/// reported any error on the way (a cut or damaged recording does).
pub fn assert_decodes_cleanly(input: &str) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", input, "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "decoding {input}: {}: {stderr}",
        out.status
    );
}
