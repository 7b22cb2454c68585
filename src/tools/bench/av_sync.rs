//! Reads sync marks (`callcast publish --sync-marks`: a white frame and a beep at the same instant, once a second)
//! back from a recording with ffmpeg, and pairs them into A/V offsets.

use std::process::Command;

fn ffmpeg_log(input: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["120", "ffmpeg", "-v", "info", "-nostats", "-copyts", "-i", input])
        .args(args)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn field(line: &str, name: &str) -> Option<f64> {
    let rest = &line[line.find(name)? + name.len()..];
    rest.trim_start()
        .split(|c: char| c.is_whitespace() || c == ']')
        .next()?
        .parse()
        .ok()
}

/// How much brighter (mean luma, 0-255) the flash frame must be than the frames on both sides: a white tile a
/// quarter of the picture (the marks participant in a grid of four) raises the mean by about 55.
const FLASH_RISE: f64 = 25.0;

/// Times of flashes: one frame markedly brighter than the frames before and after it (the marks participant's
/// white frame, full screen or in its tile among black ones). A picture that gets brighter and stays so (a
/// layout switch, a placeholder) is not a flash.
pub fn flash_times(input: &str) -> Vec<f64> {
    let log = ffmpeg_log(input, &["-map", "0:v:0", "-vf", "scale=16:16,format=gray,showinfo"]);
    let frames: Vec<(f64, f64)> = log
        .lines()
        .filter(|l| l.contains("Parsed_showinfo") && l.contains("pts_time:"))
        .filter_map(|line| Some((field(line, "pts_time:")?, field(line, "mean:[")?)))
        .collect();
    frames
        .windows(3)
        .filter(|w| w[1].1 - w[0].1 > FLASH_RISE && w[1].1 - w[2].1 > FLASH_RISE)
        .map(|w| w[1].0)
        .collect()
}

/// Times where a beep starts (the end of a silence).
pub fn beep_times(input: &str) -> Vec<f64> {
    let log = ffmpeg_log(input, &["-map", "0:a:0", "-af", "silencedetect=n=-30dB:d=0.3"]);
    log.lines().filter_map(|l| field(l, "silence_end:")).collect()
}

/// A flash and a beep further apart than this are not one mark.
pub const PAIRING_WINDOW_S: f64 = 0.5;

/// Marks read back: each flash paired with the nearest beep within `PAIRING_WINDOW_S`, and what paired with
/// nothing (a flash missed, a beep missed, or the two too far apart), so a check can bound those too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairing {
    /// Beep minus flash of each paired flash, in seconds, in flash order.
    pub offsets: Vec<f64>,
    /// The time of each paired flash (as `offsets`).
    pub paired_flashes: Vec<f64>,
    /// Times of flashes with no beep within the window.
    pub lone_flashes: Vec<f64>,
    /// Times of beeps that no flash paired with.
    pub lone_beeps: Vec<f64>,
}

/// Pairs every flash with the nearest beep within `PAIRING_WINDOW_S`.
pub fn pair(flashes: &[f64], beeps: &[f64]) -> Pairing {
    let mut pairing = Pairing::default();
    let mut used = vec![false; beeps.len()];
    for &f in flashes {
        let nearest = beeps
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b - f))
            .filter(|(_, d)| d.abs() < PAIRING_WINDOW_S)
            .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
        match nearest {
            Some((i, d)) => {
                used[i] = true;
                pairing.offsets.push(d);
                pairing.paired_flashes.push(f);
            }
            None => pairing.lone_flashes.push(f),
        }
    }
    pairing.lone_beeps = beeps.iter().zip(&used).filter(|(_, u)| !**u).map(|(b, _)| *b).collect();
    pairing
}

/// Beep minus flash for every flash with a beep within half a second, in seconds (`pair` also says what did
/// not pair).
pub fn offsets(flashes: &[f64], beeps: &[f64]) -> Vec<f64> {
    pair(flashes, beeps).offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flashes_and_beeps_that_pair_with_nothing_are_listed() {
        // Marks at 1, 2, 3, 4 s: the beep of 2 s is missing, the flash of 4 s is missing, the beep of 3 s is
        // 0.6 s late (no pair for either), and a stray beep at 5.9 s.
        let flashes = [1.0, 2.0, 3.0];
        let beeps = [1.02, 3.6, 4.01, 5.9];
        let p = pair(&flashes, &beeps);
        assert_eq!(p.paired_flashes, [1.0]);
        assert!((p.offsets[0] - 0.02).abs() < 1e-9);
        assert_eq!(p.lone_flashes, [2.0, 3.0]);
        assert_eq!(p.lone_beeps, [3.6, 4.01, 5.9]);
    }
}
