//! A validated broadcast: once a `BroadcastSpec` exists, every value in it is in range.

use super::ladder_spec::BroadcastMedia;
use super::layout_spec::LayoutSpec;
use super::request::{BroadcastRequest, OutputRequest, SourceRequest, VideoRequest};
use crate::call::janus::JanusTarget;
use crate::layout::template::Templates;
use crate::output::config::OutputConfig;
use crate::output::record::{Format as RecordFormat, Split as RecordSplit};
use crate::output::srt_url::SrtUrl;
use crate::secret::RtmpUrl;
use std::ops::RangeInclusive;
use std::time::Duration;

pub const DEFAULT_WIDTH: u32 = 1280;
pub const DEFAULT_HEIGHT: u32 = 720;
pub const DEFAULT_FPS: u32 = 30;
pub const DEFAULT_VIDEO_KBPS: u32 = 2500;
pub const DEFAULT_KEYFRAME_INTERVAL_S: u32 = 2;
pub const DEFAULT_AUDIO_KBPS: u32 = 128;
pub const DEFAULT_MAX_DURATION_S: u32 = 3 * 3600;
pub const DEFAULT_IDLE_TIMEOUT_S: u32 = 300;
pub const DEFAULT_VIDEO_TIMEOUT_S: u32 = 3;
pub const DEFAULT_RECONNECT_INITIAL_MS: u32 = 1000;
pub const DEFAULT_RECONNECT_MAX_INTERVAL_S: u32 = 10;
pub const DEFAULT_SEGMENT_SECONDS: u32 = 2;
pub const DEFAULT_HLS_WINDOW: u32 = 6;
pub const MAX_OUTPUTS: usize = 8;
/// A recording's parts: from 2 s (tests, clips) to 12 h (the index room one MP4 file reserves at most).
pub const MAX_FILE_S: RangeInclusive<u32> = 2..=43_200;
pub const MAX_FILE_MB: RangeInclusive<u32> = 1..=1_000_000;

/// A request that cannot become a broadcast: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BroadcastSpec {
    pub source: Source,
    /// The default one in an audio-only broadcast (nothing is drawn; the status shows none).
    pub layout: LayoutSpec,
    /// None: an audio-only broadcast (no compositor, no video encode, participants' video not decoded).
    pub video: Option<VideoSpec>,
    pub audio: AudioSpec,
    pub outputs: Vec<OutputConfig>,
    /// Drawn over the canvas, in order (none in an audio-only broadcast).
    pub overlays: Vec<super::overlays::Overlay>,
    pub public: bool,
    pub max_duration: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub video_timeout: std::time::Duration,
    /// Where this broadcast's events go too (may carry credentials: never shown).
    pub webhook_url: Option<reqwest::Url>,
}

#[derive(Debug, Clone)]
pub enum Source {
    Room(String),
    Janus(JanusTarget),
    Whep {
        streams: Vec<crate::call::whep_pull::WhepStream>,
        room: Option<String>,
    },
}

/// Most streams one WHEP source may pull (each is a participant with its own connection and decode).
pub const MAX_WHEP_STREAMS: usize = 16;

impl Source {
    /// What the API shows: never the pin or token.
    pub fn public_json(&self) -> serde_json::Value {
        match self {
            Source::Room(room) => serde_json::json!({"kind": "room", "room": room}),
            Source::Janus(t) => serde_json::json!({
                "kind": "janus", "url": t.url, "room": t.room,
                "pin": t.pin.as_ref().map(|_| "***"), "token": t.token.as_ref().map(|_| "***"),
            }),
            // A WHEP URL's path or query may be a stream key (Cloudflare's is): its origin only.
            Source::Whep { streams, room } => serde_json::json!({
                "kind": "whep", "room": room,
                "streams": streams.iter().map(|s| serde_json::json!({
                    "url": format!("{}/***", s.url.origin().ascii_serialization()),
                    "name": s.name, "token": s.token.as_ref().map(|_| "***"),
                    // Until the source says otherwise (`pulling`, `retrying` with `error`).
                    "state": "connecting", "error": null,
                })).collect::<Vec<_>>(),
            }),
        }
    }
}

/// Janus API and WHEP endpoint URLs: http(s) with a host and no credentials in them (use `token`).
fn validate_janus_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|_| "is not a valid URL".to_string())?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("must start with http:// or https://".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use `token`".into());
    }
    Ok(())
}

/// Webhook URLs: http(s) with a host.
fn validate_webhook_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = url::Url::parse(raw).map_err(|_| "is not a valid URL".to_string())?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("must start with http:// or https://".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(url)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VideoSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub keyframe_interval_s: u32,
    pub preset: crate::mix::preset::X264Preset,
    /// Zero-transcode: a lone full-canvas participant sending H.264, with nothing drawn over them, goes out as
    /// they send it (their resolution and frame rate) instead of being decoded and encoded again.
    #[serde(default = "passthrough_by_default")]
    pub passthrough: bool,
}

fn passthrough_by_default() -> bool {
    true
}

impl VideoSpec {
    /// The video of a request that sets none of it (no layout template either).
    pub fn defaults() -> Self {
        validate_video(VideoRequest::default(), None).expect("the defaults are in range")
    }

    /// What the mixer's encode needs of it.
    pub fn encode_settings(&self) -> crate::mix::settings::VideoSettings {
        crate::mix::settings::VideoSettings {
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: self.bitrate_kbps,
            keyframe_interval_s: self.keyframe_interval_s,
            preset: self.preset,
        }
    }
}

impl BroadcastSpec {
    /// The mixer's settings for this broadcast; None for an audio-only one (see `audio_mix_settings`).
    pub fn mix_settings(&self, participant_latency_ms: u32) -> Option<crate::mix::settings::MixSettings> {
        Some(crate::mix::settings::MixSettings {
            video: self.video?.encode_settings(),
            audio_bitrate_kbps: self.audio.bitrate_kbps,
            participant_latency_ms,
            video_timeout: self.video_timeout,
        })
    }

    /// The audio-only mixer's settings.
    pub fn audio_mix_settings(&self, participant_latency_ms: u32) -> crate::mix::settings::AudioMixSettings {
        crate::mix::settings::AudioMixSettings {
            bitrate_kbps: self.audio.bitrate_kbps,
            participant_latency_ms,
        }
    }

    /// No picture: the mix alone.
    pub fn is_audio_only(&self) -> bool {
        self.video.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AudioSpec {
    pub bitrate_kbps: u32,
}

/// Room names become URL path segments and directory-free identifiers.
pub fn validate_room_name(room: &str) -> Result<(), String> {
    let ok = !room.is_empty()
        && room.len() <= 64
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("must be 1-64 characters of letters, digits, '-' or '_'".into())
    }
}

fn ranged(field: &str, value: Option<u32>, default: u32, range: RangeInclusive<u32>) -> Result<u32, SpecError> {
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(SpecError::new(
            field,
            format!("must be between {} and {}, got {v}", range.start(), range.end()),
        ))
    }
}

/// `ranged` for a value with no default: absent stays absent.
fn optional_ranged(field: &str, value: Option<u32>, range: RangeInclusive<u32>) -> Result<Option<u32>, SpecError> {
    value.map(|v| ranged(field, Some(v), v, range)).transpose()
}

impl BroadcastSpec {
    /// Validates a request against the loaded layout templates.
    pub fn from_request(mut req: BroadcastRequest, templates: &Templates) -> Result<Self, SpecError> {
        let source = validate_source(&req.source)?;
        let Some(video_request) = req.video.take() else {
            return Self::audio_only(req, source);
        };
        let layout = LayoutSpec::default().merged(req.layout.take().unwrap_or_default(), templates)?;
        // A template may bring its own canvas (portrait); an explicit size in the request wins.
        let canvas = templates.get(&layout.template).and_then(|t| t.canvas);
        let asked_passthrough = video_request.passthrough;
        let mut video = validate_video(video_request, canvas)?;
        let audio = validate_audio(&req)?;
        let media = BroadcastMedia {
            video: Some(&video),
            audio_kbps: audio.bitrate_kbps,
        };
        let outputs = validate_outputs(std::mem::take(&mut req.outputs), media)?;
        let overlays = super::overlays::validate(std::mem::take(&mut req.overlays))?;
        // A recording keeps the codec parameters of its first frame for the whole file; zero-transcode changes
        // the picture's size and parameters at each switch, which would leave the file undecodable after one.
        if let Some(output) = outputs.iter().find(|o| o.needs_fixed_parameters()) {
            if asked_passthrough == Some(true) {
                let message = if output.is_record() {
                    RECORD_NEEDS_COMPOSITING
                } else {
                    LOW_LATENCY_NEEDS_COMPOSITING
                };
                return Err(SpecError::new("video.passthrough", message));
            }
            video.passthrough = false;
        }
        Ok(Self {
            source,
            layout,
            video: Some(video),
            audio,
            outputs,
            overlays,
            public: req.public,
            max_duration: max_duration(&req)?,
            idle_timeout: idle_timeout(&req)?,
            video_timeout: seconds("video_timeout_s", req.video_timeout_s, DEFAULT_VIDEO_TIMEOUT_S, 1..=600)?,
            webhook_url: webhook_url(&req)?,
        })
    }

    /// `video: null`: the mix alone, to outputs that take audio without video. What is about the picture is
    /// refused by name rather than ignored.
    fn audio_only(mut req: BroadcastRequest, source: Source) -> Result<Self, SpecError> {
        if req.layout.is_some() {
            return Err(SpecError::new("layout", NO_PICTURE));
        }
        if req.video_timeout_s.is_some() {
            return Err(SpecError::new("video_timeout_s", NO_PICTURE));
        }
        if !req.overlays.is_empty() {
            return Err(SpecError::new("overlays", NO_PICTURE));
        }
        let audio = validate_audio(&req)?;
        let (max_duration, idle_timeout, webhook_url) = (max_duration(&req)?, idle_timeout(&req)?, webhook_url(&req)?);
        let media = BroadcastMedia {
            video: None,
            audio_kbps: audio.bitrate_kbps,
        };
        let outputs = validate_outputs(std::mem::take(&mut req.outputs), media)?;
        if let Some(i) = outputs.iter().position(|o| !o.carries_audio_only()) {
            return Err(SpecError::new(format!("outputs[{i}].kind"), RTMP_NEEDS_VIDEO));
        }
        Ok(Self {
            source,
            layout: LayoutSpec::default(),
            video: None,
            audio,
            outputs,
            overlays: Vec::new(),
            public: req.public,
            max_duration,
            idle_timeout,
            video_timeout: std::time::Duration::from_secs(u64::from(DEFAULT_VIDEO_TIMEOUT_S)),
            webhook_url,
        })
    }
}

/// Why a field about the picture is refused in an audio-only broadcast.
pub const NO_PICTURE: &str = "an audio-only broadcast (`video: null`) has no picture to lay out";

/// Why an RTMP output is refused in an audio-only broadcast (in the request or added live).
pub const RTMP_NEEDS_VIDEO: &str = "an audio-only broadcast (`video: null`) takes hls, record, srt and whep \
outputs only: an rtmp ingest expects a video track, and a tracks output places its files on the picture's timeline";

fn validate_audio(req: &BroadcastRequest) -> Result<AudioSpec, SpecError> {
    Ok(AudioSpec {
        bitrate_kbps: ranged(
            "audio.bitrate_kbps",
            req.audio.bitrate_kbps,
            DEFAULT_AUDIO_KBPS,
            32..=320,
        )?,
    })
}

fn max_duration(req: &BroadcastRequest) -> Result<std::time::Duration, SpecError> {
    seconds(
        "max_duration_s",
        req.max_duration_s,
        DEFAULT_MAX_DURATION_S,
        1..=7 * 24 * 3600,
    )
}

fn idle_timeout(req: &BroadcastRequest) -> Result<std::time::Duration, SpecError> {
    seconds(
        "idle_timeout_s",
        req.idle_timeout_s,
        DEFAULT_IDLE_TIMEOUT_S,
        1..=24 * 3600,
    )
}

fn webhook_url(req: &BroadcastRequest) -> Result<Option<reqwest::Url>, SpecError> {
    req.webhook_url
        .as_deref()
        .map(validate_webhook_url)
        .transpose()
        .map_err(|e| SpecError::new("webhook_url", e))
}

/// A duration in whole seconds, in range.
fn seconds(
    field: &str,
    value: Option<u32>,
    default: u32,
    range: RangeInclusive<u32>,
) -> Result<std::time::Duration, SpecError> {
    Ok(std::time::Duration::from_secs(u64::from(ranged(
        field, value, default, range,
    )?)))
}

fn validate_source(source: &SourceRequest) -> Result<Source, SpecError> {
    match source {
        SourceRequest::Room { room } => {
            validate_room_name(room).map_err(|m| SpecError::new("source.room", m))?;
            Ok(Source::Room(room.clone()))
        }
        SourceRequest::Janus { url, room, pin, token } => {
            validate_janus_url(url).map_err(|m| SpecError::new("source.url", m))?;
            if *room == 0 {
                return Err(SpecError::new("source.room", "must be a Janus room number above 0"));
            }
            Ok(Source::Janus(JanusTarget {
                url: url.clone(),
                room: *room,
                pin: pin.clone().map(Into::into),
                token: token.clone().map(Into::into),
            }))
        }
        SourceRequest::Whep { streams, room } => {
            if streams.is_empty() || streams.len() > MAX_WHEP_STREAMS {
                return Err(SpecError::new(
                    "source.streams",
                    format!("must list 1 to {MAX_WHEP_STREAMS} streams"),
                ));
            }
            if let Some(room) = room {
                validate_room_name(room).map_err(|m| SpecError::new("source.room", m))?;
            }
            let streams = streams
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    validate_janus_url(&s.url).map_err(|m| SpecError::new(format!("source.streams[{i}].url"), m))?;
                    let url = reqwest::Url::parse(&s.url)
                        .map_err(|_| SpecError::new(format!("source.streams[{i}].url"), "is not a valid URL"))?;
                    let name = match &s.name {
                        None => format!("Stream {}", i + 1),
                        Some(raw) => crate::call::display_name::clean(raw).ok_or_else(|| {
                            SpecError::new(format!("source.streams[{i}].name"), "must have a visible character")
                        })?,
                    };
                    Ok(crate::call::whep_pull::WhepStream {
                        url,
                        token: s.token.clone().map(Into::into),
                        name,
                    })
                })
                .collect::<Result<_, SpecError>>()?;
            Ok(Source::Whep {
                streams,
                room: room.clone(),
            })
        }
    }
}

/// The video settings; `canvas` is the template's own size, the default when the request names none.
/// Why a recording and zero-transcode do not go together (errors of a request or of an output added live).
pub const LOW_LATENCY_NEEDS_COMPOSITING: &str = "a low_latency hls output needs `video.passthrough: false` (the \
default with one): zero-transcode changes the picture's size and codec parameters at each switch, which one \
init segment cannot follow";

/// A low-latency HLS output's board, when asked for and possible.
fn validate_low_latency(
    prefix: &str,
    low_latency: Option<bool>,
    ladder: Option<&crate::output::hls_ladder::Ladder>,
    upload: Option<bool>,
    media: BroadcastMedia<'_>,
) -> Result<Option<crate::output::ll_hls_board::LlHlsBoard>, SpecError> {
    if low_latency != Some(true) {
        return Ok(None);
    }
    let field = format!("{prefix}low_latency");
    let Some(video) = media.video else {
        return Err(SpecError::new(
            field,
            "needs video: parts are cut on the video's frames",
        ));
    };
    if upload == Some(true) {
        return Err(SpecError::new(field, "not with upload (not supported yet)"));
    }
    // With renditions, a board per rendition's folder (the main one first), each blocking on its own playlist.
    let folders = ladder.map_or_else(Vec::new, |l| {
        std::iter::once(l.main.height)
            .chain(l.renditions.iter().map(|r| r.height))
            .map(crate::output::hls_ladder::folder)
            .collect()
    });
    Ok(Some(crate::output::ll_hls_board::LlHlsBoard::ladder(
        video.keyframe_interval_s,
        folders,
    )))
}

/// A low-latency output's segments start on the encoder's keyframes and its target duration may never change
/// (RFC 8216bis), so every segment must be the same whole number of keyframe intervals.
fn check_low_latency_segments(prefix: &str, hls: &OutputConfig, media: BroadcastMedia<'_>) -> Result<(), SpecError> {
    let (
        OutputConfig::Hls {
            low_latency: Some(_),
            segment_seconds,
            ..
        },
        Some(video),
    ) = (hls, media.video)
    else {
        return Ok(());
    };
    if segment_seconds % video.keyframe_interval_s != 0 {
        return Err(SpecError::new(
            format!("{prefix}segment_seconds"),
            format!(
                "with low_latency, a multiple of video.keyframe_interval_s ({}): segments start on keyframes",
                video.keyframe_interval_s
            ),
        ));
    }
    Ok(())
}

pub const RECORD_NEEDS_COMPOSITING: &str = "a record output needs `video.passthrough: false` (the default with one): \
zero-transcode changes the picture's size and codec parameters at each switch, which a recording cannot follow";

fn validate_video(
    v: VideoRequest,
    canvas: Option<crate::layout::template::CanvasSize>,
) -> Result<VideoSpec, SpecError> {
    let video = VideoSpec {
        width: ranged(
            "video.width",
            v.width,
            canvas.map_or(DEFAULT_WIDTH, |c| c.width),
            crate::layout::CANVAS_SIDE,
        )?,
        height: ranged(
            "video.height",
            v.height,
            canvas.map_or(DEFAULT_HEIGHT, |c| c.height),
            crate::layout::CANVAS_SIDE,
        )?,
        fps: ranged("video.fps", v.fps, DEFAULT_FPS, 1..=60)?,
        bitrate_kbps: ranged("video.bitrate_kbps", v.bitrate_kbps, DEFAULT_VIDEO_KBPS, 100..=50_000)?,
        keyframe_interval_s: ranged(
            "video.keyframe_interval_s",
            v.keyframe_interval_s,
            DEFAULT_KEYFRAME_INTERVAL_S,
            1..=10,
        )?,
        preset: v.preset.unwrap_or_default(),
        passthrough: v.passthrough.unwrap_or(true),
    };
    for (field, value) in [("video.width", video.width), ("video.height", video.height)] {
        if value % 2 != 0 {
            return Err(SpecError::new(field, format!("must be even, got {value}")));
        }
    }
    Ok(video)
}

fn validate_outputs(outputs: Vec<OutputRequest>, media: BroadcastMedia<'_>) -> Result<Vec<OutputConfig>, SpecError> {
    if outputs.is_empty() {
        return Err(SpecError::new("outputs", "at least one output is required"));
    }
    if outputs.len() > MAX_OUTPUTS {
        return Err(SpecError::new("outputs", format!("at most {MAX_OUTPUTS} outputs")));
    }
    let mut seen_hls = false;
    let mut seen_whep = false;
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, out)| {
            let prefix = format!("outputs[{i}].");
            if matches!(out, OutputRequest::Hls { .. }) && std::mem::replace(&mut seen_hls, true) {
                return Err(SpecError::new(
                    format!("{prefix}kind"),
                    "only one hls output per broadcast",
                ));
            }
            if matches!(out, OutputRequest::Whep { .. }) && std::mem::replace(&mut seen_whep, true) {
                return Err(SpecError::new(
                    format!("{prefix}kind"),
                    "only one whep output per broadcast",
                ));
            }
            validate_output(&prefix, out, media)
        })
        .collect()
}

/// One output; `prefix` goes before the field names in errors (`outputs[1].`, or nothing for a single one).
pub fn validate_output(prefix: &str, out: OutputRequest, media: BroadcastMedia<'_>) -> Result<OutputConfig, SpecError> {
    match out {
        OutputRequest::Rtmp {
            url,
            max_reconnect_s,
            reconnect_initial_ms,
            reconnect_max_interval_s,
            tls_verify,
        } => {
            let url = RtmpUrl::parse(&url).map_err(|m| SpecError::new(format!("{prefix}url"), m))?;
            if tls_verify.is_some() && !url.is_tls() {
                return Err(SpecError::new(
                    format!("{prefix}tls_verify"),
                    "applies to rtmps:// URLs only",
                ));
            }
            let (reconnect_initial, reconnect_max_interval) =
                validate_backoff(prefix, reconnect_initial_ms, reconnect_max_interval_s)?;
            let max_reconnect = max_reconnect_s
                .map(|s| seconds(&format!("{prefix}max_reconnect_s"), Some(s), s, 1..=7 * 24 * 3600))
                .transpose()?;
            Ok(OutputConfig::Rtmp {
                url,
                max_reconnect,
                reconnect_initial,
                reconnect_max_interval,
                tls_verify: tls_verify.unwrap_or(true),
            })
        }
        OutputRequest::Srt {
            url,
            max_reconnect_s,
            reconnect_initial_ms,
            reconnect_max_interval_s,
        } => {
            let url = SrtUrl::parse(&url).map_err(|m| SpecError::new(format!("{prefix}url"), m))?;
            let (reconnect_initial, reconnect_max_interval) =
                validate_backoff(prefix, reconnect_initial_ms, reconnect_max_interval_s)?;
            let max_reconnect = max_reconnect_s
                .map(|s| seconds(&format!("{prefix}max_reconnect_s"), Some(s), s, 1..=7 * 24 * 3600))
                .transpose()?;
            Ok(OutputConfig::Srt {
                url,
                max_reconnect,
                reconnect_initial,
                reconnect_max_interval,
            })
        }
        OutputRequest::Hls {
            segment_seconds,
            window,
            upload,
            renditions,
            low_latency,
        } => {
            let ladder = super::ladder_spec::validate(prefix, renditions, upload.unwrap_or(false), media)?;
            let hls = OutputConfig::Hls {
                low_latency: validate_low_latency(prefix, low_latency, ladder.as_ref(), upload, media)?,
                ladder,
                upload: upload.unwrap_or(false),
                segment_seconds: ranged(
                    &format!("{prefix}segment_seconds"),
                    segment_seconds,
                    DEFAULT_SEGMENT_SECONDS,
                    1..=10,
                )?,
                window: match window {
                    // Keep every segment (HLS as VOD).
                    Some(0) => 0,
                    w => ranged(&format!("{prefix}window"), w, DEFAULT_HLS_WINDOW, 2..=1000)?,
                },
            };
            check_low_latency_segments(prefix, &hls, media)?;
            Ok(hls)
        }
        OutputRequest::Tracks { upload, keep } => Ok(OutputConfig::Tracks {
            upload: file_upload(prefix, upload, keep)?,
        }),
        OutputRequest::Whep { max_viewers } => Ok(OutputConfig::Whep {
            station: crate::output::whep::WhepStation::new(ranged(
                &format!("{prefix}max_viewers"),
                max_viewers,
                crate::output::whep::DEFAULT_MAX_VIEWERS,
                1..=crate::output::whep::MAX_VIEWERS_LIMIT,
            )?),
        }),
        OutputRequest::Record {
            format,
            max_file_s,
            max_file_mb,
            upload,
            keep,
        } => Ok(OutputConfig::Record {
            split: RecordSplit {
                after: optional_ranged(&format!("{prefix}max_file_s"), max_file_s, MAX_FILE_S)?
                    .map(|s| Duration::from_secs(s.into())),
                bytes: optional_ranged(&format!("{prefix}max_file_mb"), max_file_mb, MAX_FILE_MB)?
                    .map(|mb| u64::from(mb) * 1_000_000),
            },
            upload: file_upload(prefix, upload, keep)?,
            format: match format.as_deref() {
                None => RecordFormat::Mp4,
                Some(name) => RecordFormat::parse(name).ok_or_else(|| {
                    SpecError::new(
                        format!("{prefix}format"),
                        format!("unknown format {name:?}; expected \"mp4\" or \"mkv\""),
                    )
                })?,
            },
        }),
    }
}

/// A recording's or tracks output's `upload` and `keep`; `keep` means nothing without `upload`.
fn file_upload(
    prefix: &str,
    upload: Option<bool>,
    keep: Option<bool>,
) -> Result<Option<crate::output::config::RecordUpload>, SpecError> {
    match (upload.unwrap_or(false), keep) {
        (true, keep) => Ok(Some(crate::output::config::RecordUpload {
            keep: keep.unwrap_or(false),
        })),
        (false, None) => Ok(None),
        (false, Some(_)) => Err(SpecError::new(
            format!("{prefix}keep"),
            "applies to outputs with upload: true",
        )),
    }
}

/// An RTMP output's retry backoff: the first wait and the longest, doubling in between.
fn validate_backoff(
    prefix: &str,
    initial_ms: Option<u32>,
    max_interval_s: Option<u32>,
) -> Result<(std::time::Duration, std::time::Duration), SpecError> {
    let initial_ms = ranged(
        &format!("{prefix}reconnect_initial_ms"),
        initial_ms,
        DEFAULT_RECONNECT_INITIAL_MS,
        100..=60_000,
    )?;
    let max_interval_s = ranged(
        &format!("{prefix}reconnect_max_interval_s"),
        max_interval_s,
        DEFAULT_RECONNECT_MAX_INTERVAL_S.max(initial_ms.div_ceil(1000)),
        1..=600,
    )?;
    if u64::from(max_interval_s) * 1000 < u64::from(initial_ms) {
        return Err(SpecError::new(
            format!("{prefix}reconnect_max_interval_s"),
            "must not be shorter than reconnect_initial_ms",
        ));
    }
    Ok((
        std::time::Duration::from_millis(u64::from(initial_ms)),
        std::time::Duration::from_secs(u64::from(max_interval_s)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<BroadcastSpec, SpecError> {
        let req: BroadcastRequest = serde_json::from_str(json).expect("request parses");
        BroadcastSpec::from_request(req, &Templates::builtin())
    }

    #[test]
    fn defaults_fill_everything_but_source_and_outputs() {
        let s = spec(r#"{"source":{"kind":"room","room":"demo"},"outputs":[{"kind":"hls"}]}"#).unwrap();
        assert_eq!(s.video.unwrap().width, DEFAULT_WIDTH);
        assert_eq!(s.video.unwrap().fps, DEFAULT_FPS);
        assert_eq!(s.layout.template, "grid");
        assert!(matches!(
            s.outputs[0],
            OutputConfig::Hls {
                segment_seconds: 2,
                window: 6,
                upload: false,
                ladder: None,
                low_latency: None
            }
        ));
    }

    #[test]
    fn low_latency_hls_is_a_boolean_turns_passthrough_off_takes_renditions_and_names_what_it_cannot_go_with() {
        let room = r#""source":{"kind":"room","room":"d"}"#;
        let s = spec(&format!(
            r#"{{{room},"outputs":[{{"kind":"hls","low_latency":true}}]}}"#
        ))
        .unwrap();
        assert!(matches!(
            s.outputs[0],
            OutputConfig::Hls {
                low_latency: Some(_),
                ..
            }
        ));
        assert!(
            !s.video.unwrap().passthrough,
            "one init segment: no zero-transcode switching"
        );
        let plain = spec(&format!(
            r#"{{{room},"outputs":[{{"kind":"hls","low_latency":false}}]}}"#
        ))
        .unwrap();
        assert!(matches!(plain.outputs[0], OutputConfig::Hls { low_latency: None, .. }));
        // With renditions: a board per rendition, by folder, the main one (the broadcast's 720 lines) first.
        let ladder = spec(&format!(
            r#"{{{room},"outputs":[{{"kind":"hls","low_latency":true,"renditions":[{{"height":180,"bitrate_kbps":250}},{{"height":360,"bitrate_kbps":600}}]}}]}}"#
        ))
        .unwrap();
        let OutputConfig::Hls {
            low_latency: Some(board),
            ladder: Some(_),
            ..
        } = &ladder.outputs[0]
        else {
            panic!("{:?}", ladder.outputs[0]);
        };
        let folders: Vec<&str> = board.renditions().iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(folders, ["720p", "360p", "180p"]);
        for (body, field) in [
            (
                r#"{"kind":"hls","low_latency":true,"upload":true}"#,
                "outputs[0].low_latency",
            ),
            (
                r#"{"kind":"hls","low_latency":true,"upload":true,"renditions":[{"height":180,"bitrate_kbps":250}]}"#,
                "outputs[0].renditions",
            ),
        ] {
            let e = spec(&format!(r#"{{{room},"outputs":[{body}]}}"#)).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e:?}");
        }
        let e = spec(&format!(
            r#"{{{room},"video":{{"keyframe_interval_s":2}},"outputs":[{{"kind":"hls","low_latency":true,"segment_seconds":3}}]}}"#
        ))
        .unwrap_err();
        assert_eq!(e.field, "outputs[0].segment_seconds", "{e:?}");
        let four =
            r#""video":{"keyframe_interval_s":2},"outputs":[{"kind":"hls","low_latency":true,"segment_seconds":4}]"#;
        assert!(spec(&format!("{{{room},{four}}}")).is_ok());
        let e = spec(&format!(
            r#"{{{room},"video":{{"passthrough":true}},"outputs":[{{"kind":"hls","low_latency":true}}]}}"#
        ))
        .unwrap_err();
        assert_eq!(e.field, "video.passthrough", "{e:?}");
        assert!(e.message.contains("low_latency"), "{e:?}");
        let e = spec(&format!(
            r#"{{{room},"video":null,"outputs":[{{"kind":"hls","low_latency":true}}]}}"#
        ))
        .unwrap_err();
        assert_eq!(e.field, "outputs[0].low_latency", "{e:?}");
        let not_a_boolean = format!(r#"{{{room},"outputs":[{{"kind":"hls","low_latency":"yes"}}]}}"#);
        assert!(serde_json::from_str::<BroadcastRequest>(&not_a_boolean).is_err());
    }

    #[test]
    fn whep_outputs_take_max_viewers_and_come_one_per_broadcast() {
        let s = spec(r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"whep"}]}"#).unwrap();
        let OutputConfig::Whep { station } = &s.outputs[0] else {
            panic!("{:?}", s.outputs[0]);
        };
        assert_eq!(station.max_viewers(), 20);
        for (body, field) in [
            (r#"[{"kind":"whep"},{"kind":"whep"}]"#, "outputs[1].kind"),
            (r#"[{"kind":"whep","max_viewers":0}]"#, "outputs[0].max_viewers"),
            (r#"[{"kind":"whep","max_viewers":501}]"#, "outputs[0].max_viewers"),
        ] {
            let e = spec(&format!(
                r#"{{"source":{{"kind":"room","room":"d"}},"outputs":{body}}}"#
            ))
            .unwrap_err();
            assert_eq!(e.field, field, "{body}: {e:?}");
        }
        let audio_only = r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[{"kind":"whep"}]}"#;
        assert!(
            spec(audio_only).is_ok(),
            "an audio-only broadcast's viewers get its sound"
        );
    }

    #[test]
    fn whep_sources_are_checked_by_field_and_shown_without_secrets() {
        let with = |source: &str| spec(&format!(r#"{{"source":{source},"outputs":[{{"kind":"hls"}}]}}"#));
        for (source, field) in [
            (r#"{"kind":"whep","streams":[]}"#, "source.streams"),
            (
                r#"{"kind":"whep","streams":[{"url":"ftp://h/whep"}]}"#,
                "source.streams[0].url",
            ),
            (
                r#"{"kind":"whep","streams":[{"url":"http://h/a"},{"url":"https://u:p@h/whep"}]}"#,
                "source.streams[1].url",
            ),
            (
                r#"{"kind":"whep","streams":[{"url":"http://h/a","name":"\u0007 "}]}"#,
                "source.streams[0].name",
            ),
            (
                r#"{"kind":"whep","streams":[{"url":"http://h/a"}],"room":"a b"}"#,
                "source.room",
            ),
        ] {
            assert_eq!(with(source).unwrap_err().field, field, "{source}");
        }
        let many = vec![r#"{"url":"http://h/a"}"#; 17].join(",");
        let e = with(&format!(r#"{{"kind":"whep","streams":[{many}]}}"#)).unwrap_err();
        assert_eq!(e.field, "source.streams");
        let ok = with(
            r#"{"kind":"whep","room":"studio","streams":[{"url":"https://cdn.example:8443/k3y/whep?s=1","token":"t0k"},{"url":"http://h/b","name":"Stage"}]}"#,
        )
        .unwrap();
        assert_eq!(
            ok.source.public_json(),
            serde_json::json!({"kind": "whep", "room": "studio", "streams": [
                {"url": "https://cdn.example:8443/***", "name": "Stream 1", "token": "***", "state": "connecting", "error": null},
                {"url": "http://h/***", "name": "Stage", "token": null, "state": "connecting", "error": null},
            ]})
        );
    }

    #[test]
    fn a_record_output_turns_zero_transcode_off_and_refuses_it_asked_for() {
        let s = spec(r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"record"}]}"#).unwrap();
        assert!(!s.video.unwrap().passthrough);
        let s = spec(r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls"}]}"#).unwrap();
        assert!(s.video.unwrap().passthrough, "without a recording the default stays on");
        let e = spec(
            r#"{"source":{"kind":"room","room":"d"},"video":{"passthrough":true},"outputs":[{"kind":"hls"},{"kind":"record"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "video.passthrough", "{e:?}");
    }

    #[test]
    fn a_recording_splits_after_the_seconds_and_megabytes_asked() {
        let s = spec(
            r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"record","max_file_s":600,"max_file_mb":50}]}"#,
        )
        .unwrap();
        let OutputConfig::Record { split, .. } = &s.outputs[0] else {
            panic!("{:?}", s.outputs[0]);
        };
        assert_eq!(split.after, Some(Duration::from_secs(600)));
        assert_eq!(split.bytes, Some(50_000_000));
    }

    #[test]
    fn upload_and_keep_are_read_and_keep_needs_upload() {
        let s = spec(
            r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls","upload":true},
                {"kind":"record","upload":true},{"kind":"record","upload":true,"keep":true},
                {"kind":"tracks","upload":true},{"kind":"tracks","upload":true,"keep":true},{"kind":"tracks"}]}"#,
        )
        .unwrap();
        assert!(matches!(s.outputs[0], OutputConfig::Hls { upload: true, .. }));
        let keeps: Vec<_> = s.outputs[1..]
            .iter()
            .map(|o| match o {
                OutputConfig::Record { upload, .. } | OutputConfig::Tracks { upload } => upload.map(|u| u.keep),
                _ => panic!("{o:?}"),
            })
            .collect();
        assert_eq!(keeps, [Some(false), Some(true), Some(false), Some(true), None]);
        for kind in ["record", "tracks"] {
            let request = format!(
                r#"{{"source":{{"kind":"room","room":"d"}},"outputs":[{{"kind":"hls"}},{{"kind":"{kind}","keep":true}}]}}"#
            );
            let e = spec(&request).unwrap_err();
            assert_eq!(e.field, "outputs[1].keep", "{kind}: {e:?}");
        }
    }

    #[test]
    fn hls_window_0_keeps_every_segment_and_record_defaults_to_mp4() {
        let s =
            spec(r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls","window":0},{"kind":"record"}]}"#)
                .unwrap();
        assert!(
            matches!(s.outputs[0], OutputConfig::Hls { window: 0, .. }),
            "{:?}",
            s.outputs[0]
        );
        assert!(
            matches!(
                s.outputs[1],
                OutputConfig::Record {
                    format: RecordFormat::Mp4,
                    split: RecordSplit {
                        after: None,
                        bytes: None
                    },
                    upload: None
                }
            ),
            "{:?}",
            s.outputs[1]
        );
    }

    #[test]
    fn video_null_is_audio_only_and_absent_video_the_default_picture() {
        let s =
            spec(r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[{"kind":"hls"},{"kind":"record"}]}"#)
                .unwrap();
        assert!(s.video.is_none() && s.is_audio_only());
        assert!(s.mix_settings(100).is_none());
        assert_eq!(s.audio_mix_settings(100).bitrate_kbps, DEFAULT_AUDIO_KBPS);
        assert_eq!(s.outputs.len(), 2);
        let s = spec(r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls"}]}"#).unwrap();
        assert_eq!(
            s.video.map(|v| (v.width, v.height)),
            Some((DEFAULT_WIDTH, DEFAULT_HEIGHT))
        );
        let s = spec(r#"{"source":{"kind":"room","room":"d"},"video":{},"outputs":[{"kind":"hls"}]}"#).unwrap();
        assert!(!s.is_audio_only());
    }

    #[test]
    fn audio_only_refuses_rtmp_and_what_is_about_the_picture_by_name() {
        let cases = [
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[{"kind":"hls"},{"kind":"rtmp","url":"rtmp://h/app/key"}]}"#,
                "outputs[1].kind",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[{"kind":"rtmp","url":"rtmp://h/app/key"}]}"#,
                "outputs[0].kind",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[{"kind":"hls"},{"kind":"tracks"}]}"#,
                "outputs[1].kind",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"layout":{"template":"grid"},"outputs":[{"kind":"hls"}]}"#,
                "layout",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"video_timeout_s":5,"outputs":[{"kind":"hls"}]}"#,
                "video_timeout_s",
            ),
            // The rest is validated as in any broadcast.
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"audio":{"bitrate_kbps":8},"outputs":[{"kind":"hls"}]}"#,
                "audio.bitrate_kbps",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[{"kind":"hls","window":1}]}"#,
                "outputs[0].window",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[]}"#,
                "outputs",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(spec(json).unwrap_err().field, field, "{json}");
        }
        let e = spec(
            r#"{"source":{"kind":"room","room":"d"},"video":null,"outputs":[{"kind":"rtmp","url":"rtmp://h/app/key"}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("audio-only") && e.message.contains("rtmp"), "{e}");
    }

    #[test]
    fn a_tracks_output_takes_no_options_and_keeps_zero_transcode() {
        let s = spec(r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"tracks"}]}"#).unwrap();
        assert!(
            matches!(s.outputs[..], [OutputConfig::Tracks { upload: None }]),
            "{:?}",
            s.outputs
        );
        assert!(
            s.video.is_some_and(|v| v.passthrough),
            "tracks are the participants' own: zero-transcode stays on"
        );
        let unknown = r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"tracks","format":"mp4"}]}"#;
        assert!(serde_json::from_str::<BroadcastRequest>(unknown).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"source":{"kind":"room","room":"demo"},"video":{"width":0},"outputs":[{"kind":"hls"}]}"#,
                "video.width",
            ),
            (
                r#"{"source":{"kind":"room","room":"demo"},"video":{"width":641},"outputs":[{"kind":"hls"}]}"#,
                "video.width",
            ),
            (
                r#"{"source":{"kind":"room","room":"../x"},"outputs":[{"kind":"hls"}]}"#,
                "source.room",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls"},{"kind":"rtmp","url":"http://x/a/b"}]}"#,
                "outputs[1].url",
            ),
            (r#"{"source":{"kind":"room","room":"d"},"outputs":[]}"#, "outputs"),
            (
                r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls"},{"kind":"hls"}]}"#,
                "outputs[1].kind",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"layout":{"template":"nope"},"outputs":[{"kind":"hls"}]}"#,
                "layout.template",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls"},{"kind":"record","format":"avi"}]}"#,
                "outputs[1].format",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"record","max_file_s":1}]}"#,
                "outputs[0].max_file_s",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"record","max_file_mb":0}]}"#,
                "outputs[0].max_file_mb",
            ),
            (
                r#"{"source":{"kind":"room","room":"d"},"outputs":[{"kind":"hls","window":1}]}"#,
                "outputs[0].window",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(spec(json).unwrap_err().field, field, "{json}");
        }
    }
}
