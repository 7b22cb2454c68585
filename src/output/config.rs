//! What one output is asked to do, as the output layer needs it (the broadcast validates requests into this).

use crate::secret::RtmpUrl;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum OutputConfig {
    Rtmp {
        url: RtmpUrl,
        /// Give up after failing this long without going live in between (None: retry for ever).
        max_reconnect: Option<Duration>,
        /// Backoff between attempts: the first wait, doubling up to the longest.
        reconnect_initial: Duration,
        reconnect_max_interval: Duration,
        /// Verify an `rtmps://` server's certificate (always true for `rtmp://`, where there is none).
        tls_verify: bool,
    },
    /// MPEG-TS over SRT (`output::srt`), retried like RTMP.
    Srt {
        url: super::srt_url::SrtUrl,
        /// As for RTMP: give up after failing this long without going live in between (None: retry for ever).
        max_reconnect: Option<Duration>,
        reconnect_initial: Duration,
        reconnect_max_interval: Duration,
    },
    Hls {
        segment_seconds: u32,
        /// Segments listed in the playlist; 0 keeps every segment (an EVENT playlist, VOD at the end).
        window: u32,
        /// Uploaded to object storage as it is written (by the broadcast; this layer only reports cuts).
        upload: bool,
        /// Extra renditions: the output then writes a multivariant playlist over one folder per rendition.
        ladder: Option<super::hls_ladder::Ladder>,
        /// Low-latency HLS (`ll_hls`): fMP4 parts and blocking reload; the board is where the HTTP server
        /// learns what is listed. None: MPEG-TS segments as ever.
        low_latency: Option<super::ll_hls_board::LlHlsBoard>,
    },
    Record {
        format: super::record::Format,
        /// When the recording goes on in a new file.
        split: super::record::Split,
        /// Uploaded to object storage once finalised (by the broadcast, from `RecordingReady`).
        upload: Option<RecordUpload>,
    },
    /// Every participant's tracks as received, one file per track and appearance (`output::tracks`).
    Tracks {
        /// Each file uploaded once closed, the manifest after all of them (by the broadcast, from the output's
        /// `TracksReady` and `Ended`).
        upload: Option<RecordUpload>,
    },
    /// WebRTC viewers over WHEP (`output::whep`); the station is what the API adds viewers through.
    Whep { station: super::whep::WhepStation },
}

/// A recording's or a tracks output's upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordUpload {
    /// Keep the local file once its upload is confirmed.
    pub keep: bool,
}

impl OutputConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            OutputConfig::Rtmp { .. } => "rtmp",
            OutputConfig::Srt { .. } => "srt",
            OutputConfig::Hls { .. } => "hls",
            OutputConfig::Record { .. } => "record",
            OutputConfig::Tracks { .. } => "tracks",
            OutputConfig::Whep { .. } => "whep",
        }
    }

    /// Whether this output's files go to object storage.
    pub fn uploads(&self) -> bool {
        match self {
            OutputConfig::Rtmp { .. } | OutputConfig::Srt { .. } | OutputConfig::Whep { .. } => false,
            OutputConfig::Hls { upload, .. } => *upload,
            OutputConfig::Record { upload, .. } | OutputConfig::Tracks { upload } => upload.is_some(),
        }
    }

    /// Whether this output's local files stay once uploaded.
    pub fn keeps_uploaded(&self) -> bool {
        matches!(self, OutputConfig::Record { upload: Some(u), .. } | OutputConfig::Tracks { upload: Some(u) } if u.keep)
    }

    pub fn is_record(&self) -> bool {
        matches!(self, OutputConfig::Record { .. })
    }

    /// Whether this output needs one set of codec parameters for all its video (a recording's file, a
    /// low-latency HLS init segment), which zero-transcode switching would change.
    pub fn needs_fixed_parameters(&self) -> bool {
        matches!(
            self,
            OutputConfig::Record { .. }
                | OutputConfig::Hls {
                    low_latency: Some(_),
                    ..
                }
        )
    }

    /// Whether this output can carry a stream with no video (RTMP ingest servers expect video; MPEG-TS over SRT
    /// carries AAC alone; WHEP viewers get the Opus alone). Tracks are refused there for now: a tracks output
    /// places files on the mixer's video timeline.
    pub fn carries_audio_only(&self) -> bool {
        // Low-latency HLS cuts its parts on the video's frames.
        !matches!(
            self,
            OutputConfig::Rtmp { .. }
                | OutputConfig::Tracks { .. }
                | OutputConfig::Hls {
                    low_latency: Some(_),
                    ..
                }
        )
    }
}
