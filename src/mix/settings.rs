//! What the mixer is asked to make: canvas, encode and timing settings of its own, so the mix layer knows
//! nothing of API requests (the broadcast converts its validated spec into these).

use super::preset::X264Preset;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub keyframe_interval_s: u32,
    pub preset: X264Preset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixSettings {
    pub video: VideoSettings,
    pub audio_bitrate_kbps: u32,
    /// Latency of a participant's media when it reaches the mixer (their jitter buffer).
    pub participant_latency_ms: u32,
    /// A participant's video silent this long gives way to their placeholder (their last frame shows until then).
    pub video_timeout: Duration,
}

/// What an audio-only mix is asked to make: no canvas, only the mixed sound in AAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioMixSettings {
    pub bitrate_kbps: u32,
    /// Latency of a participant's media when it reaches the mixer (their jitter buffer).
    pub participant_latency_ms: u32,
}
