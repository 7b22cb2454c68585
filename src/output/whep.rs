//! WHEP output: WebRTC viewers of the broadcast. One shared station per output, fed from the hub like any other
//! output: the broadcast's own H.264 (parsed, SPS/PPS before every keyframe, never encoded again) and its AAC
//! decoded once and encoded once to Opus. Each viewer is its own small pipeline (`whep_viewer`) the station's
//! streaming threads push into directly once its keys are set (nothing on its send path waits from then on),
//! spread over the cores when there are many (`whep_fanout`); viewers join and leave over the API while the
//! output runs.

use super::whep_offer;
use super::whep_viewer::Viewer;
use super::{OutputPipeline, Tracks};
use crate::call::trickle::{check_if_match, Fragment, TrickleRefusal};
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
    last_keyframe_request: Option<Instant>,
    /// The broadcast has no picture: viewers get the sound alone, from its first packet.
    audio_only: bool,
}

/// The shared part of a WHEP output, held by its config (the runner feeds it) and by the broadcast (the API
/// adds viewers through it).
#[derive(Clone)]
pub struct WhepStation {
    max_viewers: u32,
    state: Arc<Mutex<StationState>>,
    /// A viewer asked for a keyframe (PLI/FIR). Outside `state`: the request comes up a viewer's pipeline from
    /// its RTP session, which may hold its own locks meanwhile, while the station holds `state` pushing into
    /// that same pipeline.
    pli_wanted: Arc<std::sync::atomic::AtomicBool>,
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
            pli_wanted: Arc::default(),
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

    /// Set by each build of the output's pipeline: whether the broadcast has no picture.
    fn set_audio_only(&self, audio_only: bool) {
        self.state.lock().unwrap().audio_only = audio_only;
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

    /// Adds a viewer for `offer`; returns its id, our answer (with candidates) and its ETag.
    pub async fn add_viewer(&self, offer: &str, ice: &IceConfig) -> Result<(String, String, String), ViewerError> {
        let (id, video_caps, audio_caps, audio_only) = {
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
                state.audio_only,
            )
        };
        let result = self.connect(id, offer, ice, video_caps, audio_caps, audio_only).await;
        let mut state = self.state.lock().unwrap();
        state.joining -= 1;
        let (viewer, answer) = result.inspect_err(|e| tracing::warn!("a WHEP viewer could not be answered: {e}"))?;
        if !state.open {
            drop(state);
            close_all(vec![viewer]);
            return Err(ViewerError::Closed);
        }
        let (id, etag) = (viewer.id.clone(), viewer.etag());
        // Caps may have changed while it was answered.
        viewer.set_caps(state.video_caps.as_ref(), state.audio_caps.as_ref());
        // It asks for its keyframe once its keys are set (`waiting_for_keyframe`): one sent before would be lost.
        state.viewers.push(viewer);
        Ok((id, answer, etag))
    }

    async fn connect(
        &self,
        id: String,
        offer: &str,
        ice: &IceConfig,
        video_caps: Option<gst::Caps>,
        audio_caps: Option<gst::Caps>,
        audio_only: bool,
    ) -> Result<(Arc<Viewer>, String), ViewerError> {
        let profile = video_caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<String>("profile").ok());
        let mut chosen = whep_offer::read(offer, profile.as_deref()).map_err(ViewerError::Offer)?;
        if audio_only {
            // The offer's video section is answered inactive: there is no picture to send.
            chosen.video = None;
            if chosen.audio.is_none() {
                return Err(ViewerError::Offer(anyhow::anyhow!(
                    "this broadcast is audio-only and the offer has no Opus audio to receive"
                )));
            }
        }
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

    /// Candidates viewer `id` trickled (RFC 9725 §4.3), an `If-Match` checked against its ETag; how many. Unlike
    /// WHIP's, `If-Match` may be left out: WHEP players in use (whip-whep's `WHEPClient`) never read the ETag
    /// and send none, and the viewer's unguessable id in the URL already names the session.
    pub fn trickle(&self, id: &str, if_match: Option<&str>, fragment: &Fragment) -> Result<usize, TrickleRefusal> {
        let viewer = {
            let state = self.state.lock().unwrap();
            state.viewers.iter().find(|v| v.id == id).cloned()
        };
        let viewer = viewer.ok_or(TrickleRefusal::NotFound)?;
        if if_match.is_some() {
            check_if_match(if_match, &viewer.etag())?;
        }
        Ok(viewer.trickle(fragment)?)
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
        self.pli_wanted.store(true, std::sync::atomic::Ordering::Relaxed);
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
        // Pushed without our lock: the API (joins, trickles, counts) never waits for the viewers' sends.
        let viewers = state.viewers.clone();
        drop(state);
        if keyframe {
            // Before the pushes: a PLI for a loss in this very keyframe, while it goes out, is kept.
            self.pli_wanted.store(false, std::sync::atomic::Ordering::Relaxed);
        }
        super::whep_fanout::for_each_spread(&viewers, |viewer| viewer.push_video(&buffer));
        let mut state = self.state.lock().unwrap();
        if keyframe {
            let_go_of_gone(&mut state);
            state.keyframe_wanted = false;
        } else if !state.keyframe_wanted {
            state.keyframe_wanted = state.viewers.iter().any(|v| v.waiting_for_keyframe());
        }
        let since_last = state.last_keyframe_request.map(|at| at.elapsed());
        let due = (state.keyframe_wanted && since_last.is_none_or(|d| d >= KEYFRAME_REQUEST_INTERVAL))
            || (self.pli_wanted.load(std::sync::atomic::Ordering::Relaxed)
                && since_last.is_none_or(|d| d >= VIEWER_PLI_INTERVAL));
        let request = due.then(|| state.keyframe.clone()).flatten();
        if request.is_some() {
            state.keyframe_wanted = false;
            self.pli_wanted.store(false, std::sync::atomic::Ordering::Relaxed);
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
        let viewers = state.viewers.clone();
        drop(state);
        super::whep_fanout::for_each_spread(&viewers, |viewer| viewer.push_audio(&buffer));
        let mut state = self.state.lock().unwrap();
        if state.audio_only {
            // No keyframes to look at them on: every packet (60 ms) will do.
            let_go_of_gone(&mut state);
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

/// Takes the viewers that are gone (see `Viewer::gone`) out of the station and stops them.
fn let_go_of_gone(state: &mut StationState) {
    if !state.viewers.iter().any(|v| v.gone()) {
        return;
    }
    let (dead, kept) = std::mem::take(&mut state.viewers).into_iter().partition(|v| v.gone());
    state.viewers = kept;
    close_all(dead);
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

/// The output's pipeline: the H.264 parsed into whole access units with SPS/PPS before each keyframe (none when
/// the broadcast is `audio_only`), the AAC decoded and encoded to Opus at 48 kHz, both into the station.
pub fn build(station: &WhepStation, audio_only: bool) -> Result<OutputPipeline> {
    let pipeline = gst::Pipeline::with_name("whep-output");
    let tracks = Tracks::add(&pipeline, audio_only)?;
    let video_sink = match &tracks.video {
        Some((_, h264parse)) => Some(video_branch(&pipeline, h264parse)?),
        None => None,
    };
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
    tracks.audio.1.link(&decode)?;
    station.set_audio_only(audio_only);
    station.listen(&audio_sink, false);
    if let Some(video_sink) = &video_sink {
        station.listen(video_sink, true);
    }
    Ok(OutputPipeline {
        pipeline,
        video: tracks.video_src(),
        audio: tracks.audio.0.clone(),
        // The track that times the output: the picture, or the sound when there is none.
        sink: video_sink.unwrap_or(audio_sink).upcast(),
        recording: None,
    })
}

/// `h264parse ! capsfilter(byte-stream, au) ! appsink`: whole access units for the viewers' payloaders.
fn video_branch(pipeline: &gst::Pipeline, h264parse: &gst::Element) -> Result<gst_app::AppSink> {
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
    add_and_link(pipeline, &[&h264_caps, video_sink.upcast_ref()])?;
    h264parse.link(&h264_caps)?;
    Ok(video_sink)
}
