//! The JSON body of `POST /v1/broadcasts` as it arrives, before validation. Also the job-file schema.

use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    pub source: SourceRequest,
    /// Who is on the canvas and how (not for an audio-only broadcast, `video: null`).
    #[serde(default)]
    pub layout: Option<LayoutRequest>,
    /// The picture. `null` makes an audio-only broadcast: no compositor and no video encode, only the mix in
    /// AAC; for `hls`, `record` and `srt` outputs (not `rtmp`: ingest servers expect video), with no `layout`
    /// (a layout PATCH is refused) and participants' video not decoded. Absent: the defaults.
    #[serde(default = "video_by_default", deserialize_with = "video_or_null")]
    #[schema(nullable)]
    pub video: Option<VideoRequest>,
    #[serde(default)]
    pub audio: AudioRequest,
    pub outputs: Vec<OutputRequest>,
    /// Titles and logos over the canvas (at most 16; later ones on top). `PATCH` replaces the list.
    #[serde(default)]
    pub overlays: Vec<super::overlays::OverlayRequest>,
    /// Playback (HLS, the watch page, this broadcast's status) without a token.
    #[serde(default)]
    pub public: bool,
    /// The broadcast ends (reason `limit_reached`) after this long. Default 3 hours.
    pub max_duration_s: Option<u32>,
    /// The broadcast ends (reason `idle`) after the call has had nobody in it this long. Default 300 s.
    pub idle_timeout_s: Option<u32>,
    /// A participant whose video stops shows their last frame this long, then their placeholder. Default 3 s.
    pub video_timeout_s: Option<u32>,
    /// Also POST this broadcast's events here (http/https), signed with the server's webhook secret.
    pub webhook_url: Option<String>,
}

/// An absent `video` is the default picture; only an explicit `null` means none.
fn video_by_default() -> Option<VideoRequest> {
    Some(VideoRequest::default())
}

fn video_or_null<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<VideoRequest>, D::Error> {
    Option::<VideoRequest>::deserialize(de)
}

/// serde reports a wrong type inside a `kind`-tagged enum at the enum (`outputs[0]`), not at the field: the
/// message names it instead, and `api::json_body` points at it.
fn low_latency_flag<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<bool>, D::Error> {
    Option::<bool>::deserialize(de).map_err(|_| serde::de::Error::custom("`low_latency` must be true or false"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceRequest {
    /// A call in the built-in WHIP room of this server.
    Room { room: String },
    /// A Janus VideoRoom, joined over Janus' HTTP API as a hidden subscriber.
    Janus {
        url: String,
        room: u64,
        pin: Option<String>,
        token: Option<String>,
    },
    /// Streams pulled from WHEP servers (MediaMTX, Cloudflare Stream, SRS, another callcast's `whep` output):
    /// each one a participant, pulled again when it drops. With `room`, that built-in room's participants join
    /// the same picture.
    Whep {
        streams: Vec<WhepStreamRequest>,
        room: Option<String>,
    },
}

/// One WHEP stream to pull.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhepStreamRequest {
    /// The WHEP endpoint (http/https, no credentials in it: use `token`). Shown as its origin only.
    pub url: String,
    /// Bearer token for the endpoint (secret: never shown).
    pub token: Option<String>,
    /// The participant's name on screen (default "Stream 1", "Stream 2", ...).
    pub name: Option<String>,
}

pub use super::layout_spec::LayoutRequest;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoRequest {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    pub bitrate_kbps: Option<u32>,
    pub keyframe_interval_s: Option<u32>,
    /// x264 speed preset: ultrafast | superfast (default) | veryfast | faster | fast.
    pub preset: Option<crate::mix::preset::X264Preset>,
    /// Forward a lone full-screen participant's H.264 as is, without decoding and encoding it again, while
    /// nothing is drawn over them (default true). The output then has their resolution and frame rate.
    pub passthrough: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioRequest {
    pub bitrate_kbps: Option<u32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputRequest {
    Rtmp {
        url: String,
        /// Give up (output `failed`) after failing to reconnect for this long. Default: retry while the
        /// broadcast lives.
        max_reconnect_s: Option<u32>,
        /// First wait before reconnecting, in ms (default 1000); it doubles after each failed attempt...
        reconnect_initial_ms: Option<u32>,
        /// ...up to this many seconds (default 10).
        reconnect_max_interval_s: Option<u32>,
        /// `rtmps://` only: verify the server's certificate (default true). `false` is logged as a warning.
        tls_verify: Option<bool>,
    },
    /// The broadcast's own H.264 and AAC (no encode) in MPEG-TS over SRT, to
    /// `srt://host:port?streamid=...&passphrase=...&latency=...`: callcast calls the receiver (`mode=caller`, the
    /// default and only mode so far). `passphrase` (10-79 characters) and `streamid` are secrets, shown as `***`;
    /// `latency` is SRT's receive buffer in ms (20-60000, default 125). Reconnects like `rtmp`, with the same
    /// options.
    Srt {
        url: String,
        /// Give up (output `failed`) after failing to reconnect for this long. Default: retry while the
        /// broadcast lives.
        max_reconnect_s: Option<u32>,
        /// First wait before reconnecting, in ms (default 1000); it doubles after each failed attempt...
        reconnect_initial_ms: Option<u32>,
        /// ...up to this many seconds (default 10).
        reconnect_max_interval_s: Option<u32>,
    },
    Hls {
        segment_seconds: Option<u32>,
        /// Segments listed in the playlist (2-1000, default 6); 0 keeps every segment: an `EVENT` playlist
        /// while live, `VOD` with its end list at the stop.
        window: Option<u32>,
        /// Also upload to the server's object storage (`storage_url`), under `{prefix}/{broadcast id}/hls/`:
        /// each segment as it is cut, the playlist after the segments it lists (default false).
        upload: Option<bool>,
        /// Extra sizes for players on weak networks (at most 4, not with `upload`): `index.m3u8` becomes a
        /// multivariant playlist over the broadcast's own encode (`{height}p/index.m3u8`) and one media
        /// playlist per rendition (`{height}p/index.m3u8`), each scaled from the broadcast's picture and
        /// encoded once, with keyframes and segments at the same times as the main one.
        #[serde(default)]
        renditions: Vec<RenditionRequest>,
        /// Low-latency HLS (default false): fMP4 (CMAF) segments made of parts of about a third of a second,
        /// listed as they are written (`EXT-X-PART`, `EXT-X-PRELOAD-HINT`), and blocking playlist reload
        /// (`index.m3u8?_HLS_msn=N&_HLS_part=P` waits for that part, up to three target durations). Players
        /// in low-latency mode play about a second behind. Needs video, `video.passthrough: false` (the
        /// default with it) and `segment_seconds` a multiple of `video.keyframe_interval_s`; not with
        /// `renditions` or `upload`.
        #[serde(default, deserialize_with = "low_latency_flag")]
        low_latency: Option<bool>,
    },
    /// The broadcast's own H.264 and AAC (no encode) into a file under the data dir,
    /// `broadcasts/{id}/recordings/{output id}-{UTC start}.mp4` (or `.mkv`): an MP4's index is kept up to date at
    /// the front of the file every second, a Matroska file is written a cluster a second, so a crash loses about
    /// the last second and the file still plays.
    Record {
        /// Container: `mp4` (the default; index kept at the front) or `mkv` (Matroska, a cluster a second).
        #[schema(value_type = Option<RecordFormatName>)]
        format: Option<String>,
        /// Go on in a new file (a part: `recording.ready` for each) at the first keyframe at or after this many
        /// seconds of video in the current one (2-43200). Parts follow one another with nothing lost or doubled.
        /// Without it a file runs for the whole show (up to 12 h, then a new part).
        max_file_s: Option<u32>,
        /// Go on in a new file at the next keyframe once the current one holds this many megabytes (10^6 bytes,
        /// 1-1000000); a part overshoots by up to about a second and a keyframe interval of media.
        max_file_mb: Option<u32>,
        /// Upload each finalised file to the server's object storage (`storage_url`), under
        /// `{prefix}/{broadcast id}/recordings/{file name}` (default false).
        upload: Option<bool>,
        /// With `upload`: keep the local file after its upload is confirmed (default false: deleted then).
        keep: Option<bool>,
    },
    /// Every participant's video and sound as received, never transcoded (VP8, VP9, Opus in WebM; H.264 in
    /// Matroska), one file per track and appearance (leaving and joining again starts a new set), under
    /// `broadcasts/{id}/tracks/{output id}/` with a `manifest.json` placing each file on the outputs' timeline.
    Tracks {
        /// Upload each file to the server's object storage (`storage_url`) once closed (a participant left, or
        /// the output stopped), under `{prefix}/{broadcast id}/tracks/{output id}/{file name}`, and the
        /// `manifest.json` last, after every file it lists (default false).
        upload: Option<bool>,
        /// With `upload`: keep the local files after their upload is confirmed (default false: deleted then).
        keep: Option<bool>,
    },
    /// WebRTC viewers (WHEP, sub-second): `POST /v1/broadcasts/{id}/whep` with an offer. They get the
    /// broadcast's own H.264 and one shared Opus encode of its sound. At most one per broadcast.
    Whep {
        /// Viewers at once (1-500, default 20); one more gets 503.
        max_viewers: Option<u32>,
    },
}

/// The container formats a `record` output writes.
#[derive(utoipa::ToSchema)]
#[schema(as = RecordFormatName)]
#[allow(dead_code)] // A schema only: requests carry the name as a string, checked in `spec`.
pub enum RecordFormatName {
    #[schema(rename = "mp4")]
    Mp4,
    #[schema(rename = "mkv")]
    Mkv,
}

/// One extra rendition of an HLS output.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenditionRequest {
    /// Pixels, even, at least 90 and below the broadcast's `video.height`; the width keeps the picture's shape.
    pub height: u32,
    /// Video bitrate in kbit/s (100-20000).
    pub bitrate_kbps: u32,
}
