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

/// Beep minus flash for every flash with a beep within half a second, in seconds.
pub fn offsets(flashes: &[f64], beeps: &[f64]) -> Vec<f64> {
    flashes
        .iter()
        .filter_map(|f| {
            beeps
                .iter()
                .map(|b| b - f)
                .filter(|d| d.abs() < 0.5)
                .min_by(|a, b| a.abs().partial_cmp(&b.abs()).expect("no NaN"))
        })
        .collect()
}
