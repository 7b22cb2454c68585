//! The x264 speed preset of a broadcast's single encode (`video.preset`): the main knob between CPU and picture
//! quality per bit. Measured on the project machine in docs/benchmarks.md.

/// x264 presets from fastest to slowest; the slower ones are left out (a live 2-core budget cannot carry them).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum X264Preset {
    Ultrafast,
    /// The default: about three quarters of the CPU of `veryfast` for the encode, keeping CABAC and the
    /// deblocking filter (which `ultrafast` drops, visibly at 2.5 Mbit/s 720p).
    #[default]
    Superfast,
    Veryfast,
    Faster,
    Fast,
}

impl X264Preset {
    /// x264 threads: one for the fast presets (x264's sliced threads cost ~25% more CPU for the same encode,
    /// measured at 720p30 superfast, and one thread encodes a 1080p frame of these presets in a few ms);
    /// 0 (x264 decides) for the slower ones, which one thread may not carry at 1080p.
    pub fn threads(self) -> u32 {
        match self {
            X264Preset::Ultrafast | X264Preset::Superfast | X264Preset::Veryfast => 1,
            X264Preset::Faster | X264Preset::Fast => 0,
        }
    }

    /// The value of x264enc's `speed-preset`.
    pub fn nick(self) -> &'static str {
        match self {
            X264Preset::Ultrafast => "ultrafast",
            X264Preset::Superfast => "superfast",
            X264Preset::Veryfast => "veryfast",
            X264Preset::Faster => "faster",
            X264Preset::Fast => "fast",
        }
    }
}
