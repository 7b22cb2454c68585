//! What a running output tells its owner. Outputs never write anyone's state: they report, the broadcast
//! decides. Reports may be sent from a streaming thread (byte counts), so the channel never blocks.

use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    /// The destination took the stream: HLS wrote its first data; an RTMP server completed the handshake and
    /// `publish` and the first packet went out (a server that only accepts TCP never makes an output live).
    Live,
    /// An attempt failed; the next one starts at `retry_at_ms` (ms since the epoch).
    Reconnecting { error: String, retry_at_ms: u64 },
    /// It gave up (`max_reconnect` passed without going live).
    Failed { error: String },
    /// Bytes written over the output's whole life so far (reported about once a second).
    Bytes(u64),
    /// A recording's file, its size on disk and the seconds of video in it so far (sent as it opens, then about
    /// once a second). A recording's byte count is its file's size: what reaches its sink counts the index
    /// rewrites too, so its `Bytes` reports are not used.
    Recording { path: String, bytes: u64, duration_ms: u64 },
    /// A recording's file is finalised (EOS went through: its index is complete and at the front).
    RecordingReady { path: String, bytes: u64, duration_ms: u64 },
    /// A tracks output's manifest, the files it lists and their bytes (sent as it starts, then about once a
    /// second and as files close).
    Tracks { path: String, files: u64, bytes: u64 },
    /// A tracks output finalised one participant's appearance: these files (names in the manifest's folder).
    TracksReady {
        participant_id: String,
        name: String,
        appearance: u32,
        files: Vec<String>,
    },
    /// A tracks output could not write one file (the output goes on with the others).
    TrackFailed {
        participant_id: String,
        name: String,
        /// The file's name in the manifest's folder.
        file: String,
        error: String,
    },
    /// HLS: a segment was cut and the served playlist now lists it (sent from the streaming thread, after the
    /// playlist was written).
    PlaylistWritten,
    /// It finished (stopped, removed, or the broadcast drained).
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReport {
    pub output_id: String,
    pub event: OutputEvent,
}

/// Where an output sends its reports.
#[derive(Debug, Clone)]
pub struct Reporter {
    output_id: String,
    tx: mpsc::UnboundedSender<OutputReport>,
}

impl Reporter {
    pub fn new(output_id: String, tx: mpsc::UnboundedSender<OutputReport>) -> Self {
        Self { output_id, tx }
    }

    pub fn output_id(&self) -> &str {
        &self.output_id
    }

    /// Never blocks; a report to an owner that is gone is dropped.
    pub fn send(&self, event: OutputEvent) {
        let _ = self.tx.send(OutputReport {
            output_id: self.output_id.clone(),
            event,
        });
    }
}
