//! What comes out, checked with ffprobe and ffmpeg.

use std::path::Path;
use std::process::Command;

/// `(codec_type, codec_name, width, height)` of each stream in a file or URL.
pub fn streams(input: &str) -> Vec<(String, String, i64, i64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "json",
            input,
        ])
        .output()
        .expect("run ffprobe");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    json["streams"]
        .as_array()
        .map(|streams| {
            streams
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
        })
        .unwrap_or_default()
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

/// Video packets of `input` as (presentation time in seconds, keyframe), in time order.
fn video_packets(input: &str) -> Vec<(f64, bool)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
            input,
        ])
        .output()
        .expect("run ffprobe");
    let mut packets: Vec<(f64, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (pts, flags) = l.trim().split_once(',')?;
            Some((pts.parse().ok()?, flags.starts_with('K')))
        })
        .collect();
    packets.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("no NaN"));
    packets
}

/// Video packet presentation times (seconds) of `input`, in order.
pub fn video_pts(input: &str) -> Vec<f64> {
    video_packets(input).into_iter().map(|(t, _)| t).collect()
}

/// Presentation times (seconds) of the video keyframes of `input`, in order.
pub fn keyframe_pts(input: &str) -> Vec<f64> {
    video_packets(input)
        .into_iter()
        .filter_map(|(t, key)| key.then_some(t))
        .collect()
}

/// The largest gap between consecutive timestamps.
pub fn max_gap(times: &[f64]) -> f64 {
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}
