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

/// Times of frames that turn white (a black frame or nothing before).
pub fn flash_times(input: &str) -> Vec<f64> {
    let log = ffmpeg_log(input, &["-map", "0:v:0", "-vf", "scale=8:8,format=gray,showinfo"]);
    let mut flashes = Vec::new();
    let mut was_white = false;
    for line in log
        .lines()
        .filter(|l| l.contains("Parsed_showinfo") && l.contains("pts_time:"))
    {
        let (Some(t), Some(mean)) = (field(line, "pts_time:"), field(line, "mean:[")) else {
            continue;
        };
        let white = mean > 128.0;
        if white && !was_white {
            flashes.push(t);
        }
        was_white = white;
    }
    flashes
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
