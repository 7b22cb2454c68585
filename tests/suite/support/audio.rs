//! What a viewer hears: the audio of an output decoded with ffmpeg, and the strength of a tone in it.

use std::path::Path;
use std::process::Command;

const RATE: f64 = 48_000.0;

/// The first audio stream of `input` as mono 48 kHz samples in -1..1. Panics when ffmpeg fails or reads nothing.
pub fn mono_samples(input: &Path) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(input)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "ffmpeg read no audio from {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// Amplitude of the `frequency` component of `samples` (Goertzel; a full-scale sine reads about 0.5).
pub fn tone_level(samples: &[f64], frequency: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / RATE).cos();
    let (mut previous, mut before) = (0.0, 0.0);
    for sample in samples {
        let current = sample + coefficient * previous - before;
        before = previous;
        previous = current;
    }
    let power = previous * previous + before * before - coefficient * previous * before;
    power.sqrt() / samples.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_is_found_at_its_frequency_only() {
        let samples: Vec<f64> = (0..48_000)
            .map(|n| 0.5 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / RATE).sin())
            .collect();
        let at = tone_level(&samples, 1000.0);
        assert!((at - 0.25).abs() < 0.01, "{at}");
        assert!(tone_level(&samples, 1500.0) < 0.001);
    }
}
