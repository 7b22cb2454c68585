//! Which of a participant's pictures a viewer saw: every frame of the output is decoded (ffmpeg, as a player
//! would) and the clock stamp the participant painted (`publish --clock-stamp`) is read from the places its
//! picture can be drawn. Two output frames in a row with the same stamp are a picture shown again; a step of
//! more than one frame interval is pictures that never reached the viewer. A frame where no stamp reads (a
//! layout switch in progress, a placeholder) breaks the comparison rather than counting as a skip.

use crate::layout::Rect;
use crate::tools::clock_stamp;
use anyhow::{Context, Result};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What the viewer saw of the stamped participant.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Pictures {
    /// Output frames decoded.
    pub frames: u64,
    /// Frames whose stamp read at one of the places.
    pub read: u64,
    /// Frames showing the same picture as the frame before.
    pub repeated: u64,
    /// Pictures that fell between two consecutive frames.
    pub skipped: u64,
}

/// Counts repeats and skips in the stamps of consecutive output frames (None: no stamp read), `frame_ms` apart.
pub fn count(stamps: &[Option<u64>], frame_ms: f64) -> Pictures {
    let mut p = Pictures {
        frames: stamps.len() as u64,
        read: stamps.iter().flatten().count() as u64,
        ..Pictures::default()
    };
    // The newest picture shown so far (an older one after it is a picture shown again, not a step back).
    let mut newest: Option<u64> = None;
    for &stamp in stamps {
        match (newest, stamp) {
            (_, None) => newest = None,
            (None, Some(stamp)) => newest = Some(stamp),
            (Some(last), Some(stamp)) if stamp <= last => p.repeated += 1,
            (Some(last), Some(stamp)) => {
                p.skipped += (((stamp - last) as f64 / frame_ms).round() as u64).saturating_sub(1);
                newest = Some(stamp);
            }
        }
    }
    p
}

/// Decodes the video of `segments` (MPEG-TS, played back to back) at `size` and reads in each frame the stamp
/// of a `source`-sized picture drawn at any of `places` (the place of the frame before is tried first).
pub fn read_stamps(
    segments: &[PathBuf],
    size: (usize, usize),
    places: &[Rect],
    source: (usize, usize),
) -> Result<Vec<Option<u64>>> {
    if segments.is_empty() {
        return Ok(Vec::new());
    }
    let joined = segments
        .iter()
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join("|");
    let mut child = Command::new("timeout")
        .args(["120", "ffmpeg", "-v", "error", "-nostats", "-i"])
        .arg(format!("concat:{joined}"))
        // Every decoded frame once: no frame duplicated or dropped to make a constant rate.
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-s",
        ])
        .arg(format!("{}x{}", size.0, size.1))
        .arg("pipe:1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("run ffmpeg (deploy/install-deps.sh installs it)")?;
    let mut out = child.stdout.take().context("ffmpeg stdout")?;
    let mut frame = vec![0u8; size.0 * size.1];
    let mut stamps = Vec::new();
    let mut last_place = 0;
    while out.read_exact(&mut frame).is_ok() {
        let order = std::iter::once(last_place).chain((0..places.len()).filter(|&i| i != last_place));
        let found = order
            .filter(|&i| i < places.len())
            .find_map(|i| clock_stamp::read(&frame, size.0, places[i], source).map(|ms| (i, ms)));
        if let Some((i, _)) = found {
            last_place = i;
        }
        stamps.push(found.map(|(_, ms)| ms));
    }
    let status = child.wait().context("wait for ffmpeg")?;
    anyhow::ensure!(status.success(), "ffmpeg could not decode the segments ({status})");
    Ok(stamps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_and_skips_are_counted_between_read_frames_only() {
        let stamps = [
            Some(1000),
            Some(1033),
            Some(1033), // shown again
            Some(1067),
            None, // unread: neither a repeat nor a skip
            Some(1133),
            Some(1233), // 1167 and 1200 never shown
            Some(1200), // older than the one before: shown again
            Some(1267), // the next after the newest shown
        ];
        let p = count(&stamps, 1000.0 / 30.0);
        assert_eq!(
            p,
            Pictures {
                frames: 9,
                read: 8,
                repeated: 2,
                skipped: 2,
            }
        );
    }

    #[test]
    fn stamps_a_few_ms_off_the_frame_grid_are_neither() {
        let stamps: Vec<Option<u64>> = [0u64, 38, 64, 104, 131, 170]
            .iter()
            .map(|&s| Some(10_000 + s))
            .collect();
        assert_eq!(
            count(&stamps, 1000.0 / 30.0).repeated + count(&stamps, 1000.0 / 30.0).skipped,
            0
        );
    }
}
