//! WHEP output: WebRTC viewers of the broadcast. One shared station per output, fed from the hub like any other
//! output: the broadcast's own H.264 (parsed, SPS/PPS before every keyframe, never encoded again) and its AAC
//! decoded once and encoded once to Opus. Each viewer is its own small pipeline (`whep_viewer`) the station
//! pushes into without ever waiting; viewers join and leave over the API while the output runs.

use super::whep_offer;
use super::whep_viewer::Viewer;
use super::{sources, OutputPipeline};
use crate::call::webrtc::IceConfig;
use crate::gst_util::{add_and_link, make, make_with};
use anyhow::Result;
use gst::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Viewers of one WHEP output when the request names no `max_viewers`.
pub const DEFAULT_MAX_VIEWERS: u32 = 20;
/// The most `max_viewers` may be.
pub const MAX_VIEWERS_LIMIT: u32 = 500;
/// Keyframes asked of the broadcast's encoder (or forwarded participant) on behalf of viewers at most this
/// often: joins and PLIs in a burst cost one keyframe, and a joining viewer still waits at most this long.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// A viewer's own keyframe requests (PLI/FIR after loss) are served at most this often: the keyframe is the
/// whole broadcast's (every output and viewer pays its bits), and one lossy or hostile viewer must not make it
/// dear for the others.
const VIEWER_PLI_INTERVAL: Duration = Duration::from_secs(3);
/// Opus bitrate of the shared encode.
const OPUS_BITRATE: i32 = 64_000;
/// Milliseconds of sound in each Opus packet (opusenc's `frame-size`; 20 by default). A viewer's cost is per packet
/// more than per byte (each one crosses its payloader, RTP session, SRTP and socket on its own), so 60 ms frames
/// make its sound cost about a third of 20 ms ones. The price: the sound leaves up to 40 ms later (a frame is
/// whole before it is sent, and a browser syncing picture to sound holds the picture as long), and one lost
/// packet is 60 ms to conceal. Browsers decode any Opus frame size (RFC 7587).
const OPUS_FRAME_MS: &str = "60";

/// Why a viewer was not added.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    #[error("the whep output is not running")]
    Closed,
    #[error("this broadcast already has its {0} WHEP viewers (max_viewers)")]
    Full(u32),
    /// The offer offers nothing we send (a 400 naming it).
    #[error("{0:#}")]
    Offer(anyhow::Error),
    /// Our side failed to answer (a 500).
    #[error("{0:#}")]
    Answer(anyhow::Error),
}

type KeyframeRequest = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct StationState {
    /// True while the output runs (its pipeline may be between attempts).
    open: bool,
    viewers: Vec<Arc<Viewer>>,
    /// Viewers being answered: counted against `max_viewers` already.
    joining: u32,
    video_caps: Option<gst::Caps>,
    audio_caps: Option<gst::Caps>,
    /// Asks the hub's video source for a keyframe (set while the output runs).
    keyframe: Option<KeyframeRequest>,
    /// A joining viewer waits for a keyframe.
    keyframe_wanted: bool,
    /// A viewer asked for one (PLI/FIR).
    pli_wanted: bool,
    last_keyframe_request: Option<Instant>,
}

/// The shared part of a WHEP output, held by its config (the runner feeds it) and by the broadcast (the API
/// adds viewers through it).
#[derive(Clone)]
pub struct WhepStation {
    max_viewers: u32,
    state: Arc<Mutex<StationState>>,
}

impl std::fmt::Debug for WhepStation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhepStation")
            .field("max_viewers", &self.max_viewers)
            .field("viewers", &self.viewers())
            .finish()
    }
}

impl WhepStation {
    pub fn new(max_viewers: u32) -> Self {
        Self {
            max_viewers,
            state: Arc::default(),
        }
    }

    pub fn max_viewers(&self) -> u32 {
        self.max_viewers
    }

    /// Viewers connected now.
    pub fn viewers(&self) -> usize {
        self.state.lock().unwrap().viewers.len()
    }

    pub fn is_open(&self) -> bool {
        self.state.lock().unwrap().open
    }

    /// The output started: viewers may join; `keyframe` asks the broadcast's video source for a keyframe.
    pub(super) fn open(&self, keyframe: impl Fn() + Send + Sync + 'static) {
        let mut state = self.state.lock().unwrap();
        state.open = true;
        state.keyframe = Some(Arc::new(keyframe));
    }

    /// The output ended: every viewer is let go.
    pub(super) fn close(&self) {
        let viewers = {
            let mut state = self.state.lock().unwrap();
            state.open = false;
            state.keyframe = None;
            std::mem::take(&mut state.viewers)
        };
        close_all(viewers);
    }

    /// Adds a viewer for `offer`; returns its id and our answer (with candidates).
    pub async fn add_viewer(&self, offer: &str, ice: &IceConfig) -> Result<(String, String), ViewerError> {
        let (id, video_caps, audio_caps) = {
            let mut state = self.state.lock().unwrap();
            if !state.open {
                return Err(ViewerError::Closed);
            }
            if state.viewers.len() as u32 + state.joining >= self.max_viewers {
                return Err(ViewerError::Full(self.max_viewers));
            }
            state.joining += 1;
            // Unguessable: anyone who may watch may DELETE a viewer, so only its own player may know its id.
            (
                crate::ids::new_id("v"),
                state.video_caps.clone(),
                state.audio_caps.clone(),
            )
        };
        let result = self.connect(id, offer, ice, video_caps, audio_caps).await;
        let mut state = self.state.lock().unwrap();
        state.joining -= 1;
        let (viewer, answer) = result.inspect_err(|e| tracing::warn!("a WHEP viewer could not be answered: {e}"))?;
        if !state.open {
            drop(state);
            close_all(vec![viewer]);
            return Err(ViewerError::Closed);
        }
        let id = viewer.id.clone();
        // Caps may have changed while it was answered.
        viewer.set_caps(state.video_caps.as_ref(), state.audio_caps.as_ref());
        state.viewers.push(viewer);
        state.keyframe_wanted = true;
        Ok((id, answer))
    }

    async fn connect(
        &self,
        id: String,
        offer: &str,
        ice: &IceConfig,
        video_caps: Option<gst::Caps>,
        audio_caps: Option<gst::Caps>,
    ) -> Result<(Arc<Viewer>, String), ViewerError> {
        let profile = video_caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<String>("profile").ok());
        let chosen = whep_offer::read(offer, profile.as_deref()).map_err(ViewerError::Offer)?;
        let station = self.clone();
        let viewer = Viewer::new(id, ice, video_caps.as_ref(), audio_caps.as_ref(), &chosen, move || {
            station.viewer_asked_for_a_keyframe()
        })
        .map_err(ViewerError::Answer)?;
        let viewer = Arc::new(viewer);
        match viewer.answer(offer, &chosen).await {
            Ok(answer) => Ok((viewer, answer)),
            Err(e) => {
                close_all(vec![viewer]);
                Err(ViewerError::Answer(e))
            }
        }
    }

    /// Ends viewer `id`; false if there is no such viewer.
    pub fn remove_viewer(&self, id: &str) -> bool {
        let removed = {
            let mut state = self.state.lock().unwrap();
            let before = state.viewers.len();
            let (gone, kept) = std::mem::take(&mut state.viewers).into_iter().partition(|v| v.id == id);
            state.viewers = kept;
            (state.viewers.len() != before).then_some(gone)
        };
        match removed {
            Some(gone) => {
                close_all(gone);
                true
            }
            None => false,
        }
    }

    fn viewer_asked_for_a_keyframe(&self) {
        self.state.lock().unwrap().pli_wanted = true;
    }

    /// One access unit of the broadcast's H.264 to every viewer (called on the output's streaming thread).
    fn push_video(&self, sample: &gst::Sample) {
        let Some(buffer) = sample.buffer_owned() else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        if let Some(caps) = sample
            .caps()
            .filter(|c| state.video_caps.as_ref().map(|k| k.as_ref()) != Some(*c))
        {
            let caps = caps.to_owned();
            for viewer in &state.viewers {
                viewer.set_caps(Some(&caps), None);
            }
            state.video_caps = Some(caps);
        }
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mut gone = Vec::new();
        for viewer in &state.viewers {
            viewer.push_video(&buffer);
            if keyframe && viewer.gone() {
                gone.push(viewer.id.clone());
            }
        }
        if !gone.is_empty() {
            let (dead, kept) = std::mem::take(&mut state.viewers)
                .into_iter()
                .partition(|v| gone.contains(&v.id));
            state.viewers = kept;
            close_all(dead);
        }
        if keyframe {
            state.keyframe_wanted = false;
            state.pli_wanted = false;
        } else if !state.keyframe_wanted {
            state.keyframe_wanted = state.viewers.iter().any(|v| v.waiting_for_keyframe());
        }
        let since_last = state.last_keyframe_request.map(|at| at.elapsed());
        let due = (state.keyframe_wanted && since_last.is_none_or(|d| d >= KEYFRAME_REQUEST_INTERVAL))
            || (state.pli_wanted && since_last.is_none_or(|d| d >= VIEWER_PLI_INTERVAL));
        let request = due.then(|| state.keyframe.clone()).flatten();
        if request.is_some() {
            state.keyframe_wanted = false;
            state.pli_wanted = false;
            state.last_keyframe_request = Some(Instant::now());
        }
        drop(state);
        // Outside our lock: the request travels up the mixer's pipeline.
        if let Some(request) = request {
            request();
        }
    }

    /// One Opus packet of the shared encode to every viewer.
    fn push_audio(&self, sample: &gst::Sample) {
        let Some(buffer) = sample.buffer_owned() else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        if let Some(caps) = sample
            .caps()
            .filter(|c| state.audio_caps.as_ref().map(|k| k.as_ref()) != Some(*c))
        {
            let caps = caps.to_owned();
            for viewer in &state.viewers {
                viewer.set_caps(None, Some(&caps));
            }
            state.audio_caps = Some(caps);
        }
        for viewer in &state.viewers {
            viewer.push_audio(&buffer);
        }
    }

    fn listen(&self, sink: &gst_app::AppSink, video: bool) {
        let station = self.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if video {
                        station.push_video(&sample);
                    } else {
                        station.push_audio(&sample);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
}

/// Stops viewers' pipelines on a thread of their own: a state change to NULL waits for the viewers' threads, and
/// callers are API handlers, the runner's task or the station's streaming thread, none of which may wait.
fn close_all(viewers: Vec<Arc<Viewer>>) {
    if viewers.is_empty() {
        return;
    }
    std::thread::spawn(move || {
        for viewer in viewers {
            viewer.close();
        }
    });
}

fn station_sink(name: &str) -> gst_app::AppSink {
    gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .enable_last_sample(false)
        .build()
}

/// The output's pipeline: the H.264 parsed into whole access units with SPS/PPS before each keyframe, the AAC
/// decoded and encoded to Opus at 48 kHz, both into the station.
pub fn build(station: &WhepStation) -> Result<OutputPipeline> {
    let pipeline = gst::Pipeline::with_name("whep-output");
    let (video, h264parse, audio, aacparse) = sources(&pipeline)?;
    h264parse.set_property("config-interval", -1i32);
    let h264_caps = make("capsfilter")?;
    h264_caps.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
    );
    let video_sink = station_sink("whep-video");
    add_and_link(&pipeline, &[&h264_caps, video_sink.upcast_ref()])?;
    h264parse.link(&h264_caps)?;

    let decode = make("avdec_aac")?;
    let convert = make("audioconvert")?;
    let resample = make("audioresample")?;
    let raw_caps = make_with("capsfilter", &[("caps", "audio/x-raw,rate=48000,channels=2")])?;
    let opus = make("opusenc")?;
    opus.set_property("bitrate", OPUS_BITRATE);
    opus.set_property_from_str("frame-size", OPUS_FRAME_MS);
    let audio_sink = station_sink("whep-audio");
    add_and_link(
        &pipeline,
        &[&decode, &convert, &resample, &raw_caps, &opus, audio_sink.upcast_ref()],
    )?;
    aacparse.link(&decode)?;
    station.listen(&video_sink, true);
    station.listen(&audio_sink, false);
    Ok(OutputPipeline {
        pipeline,
        video: Some(video),
        audio,
        sink: video_sink.upcast(),
        recording: None,
    })
}
