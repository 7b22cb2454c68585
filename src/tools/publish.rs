//! `callcast publish`: a synthetic participant (test video 640x360@30 and a tone) published over WHIP, into a
//! Janus VideoRoom, or as plain RTP into a built-in room (`publish_rtp.rs`).

use crate::call::webrtc::{self, IceConfig};
use crate::gst_util::{add_and_link, make, make_with};
use crate::tools::orphan;
use anyhow::{bail, Context, Result};
use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiverDirection, WebRTCSDPType};
use secrecy::{ExposeSecret, SecretString};

pub const WIDTH: i32 = 640;
pub const HEIGHT: i32 = 360;
pub const FPS: i32 = 30;
const VIDEO_KBPS: u32 = 500;
/// What a publisher prints, then the wall clock in ms, as it sends its join request (the WHIP offer's or the RTP
/// join's `POST`): the bench times a join from it (`bench --join-time`).
pub const JOIN_REQUEST_LINE: &str = "join request sent at ms ";

/// Prints [`JOIN_REQUEST_LINE`] with the wall clock now (stdout is line-buffered: it leaves at once).
pub(super) fn note_join_request() {
    println!("{JOIN_REQUEST_LINE}{}", crate::wall_clock::now_ms());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    Vp8,
    Vp9,
    H264,
}

fn secret_arg(raw: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(raw.to_string()))
}

#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// WHIP endpoint, e.g. http://127.0.0.1:8080/v1/rooms/demo/whip
    #[arg(long, required_unless_present_any = ["janus", "rtp"], conflicts_with_all = ["janus", "rtp"])]
    pub whip: Option<String>,
    /// Plain RTP join endpoint of a built-in room, e.g. http://127.0.0.1:8080/v1/rooms/demo/rtp: joins with the
    /// tracks described as JSON and sends RTP (and RTCP, answering keyframe requests) to the ports it is given.
    #[arg(long, conflicts_with = "janus")]
    pub rtp: Option<String>,
    /// Janus HTTP API, e.g. http://127.0.0.1:8088/janus (with --room)
    #[arg(long, requires = "room")]
    pub janus: Option<String>,
    /// Janus VideoRoom number.
    #[arg(long)]
    pub room: Option<u64>,
    /// Janus room pin.
    #[arg(long, value_parser = secret_arg)]
    pub pin: Option<SecretString>,
    /// Janus API token, or the bearer token a WHIP endpoint asks for.
    #[arg(long, env = "CALLCAST_PUBLISH_TOKEN", hide_env_values = true, value_parser = secret_arg)]
    pub token: Option<SecretString>,
    /// Display name in the call.
    #[arg(long)]
    pub name: Option<String>,
    /// ball | smpte | color:RRGGBB (or any videotestsrc pattern name).
    #[arg(long, default_value = "ball")]
    pub pattern: String,
    /// Frequency of the test tone; 0 for silence.
    #[arg(long, default_value_t = 440.0)]
    pub tone: f64,
    /// Publish audio only (no camera).
    #[arg(long)]
    pub no_video: bool,
    /// Start silent; each line `on` or `off` on standard input switches the tone (to script who speaks).
    #[arg(long)]
    pub tone_on_stdin: bool,
    #[arg(long, value_enum, default_value_t = Codec::Vp8)]
    pub codec: Codec,
    /// Picture size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x360", value_parser = parse_size)]
    pub size: (i32, i32),
    /// Most frames between the keyframes VP8 makes on its own; a large value leaves keyframes to the receivers'
    /// requests (PLI), as tests of those requests need.
    #[arg(long, default_value_t = 60)]
    pub keyframe_max_dist: u32,
    /// Video bitrate.
    #[arg(long, default_value_t = VIDEO_KBPS, value_parser = clap::value_parser!(u32).range(50..=20_000))]
    pub video_kbps: u32,
    /// Local address for ICE.
    #[arg(long, default_value = "127.0.0.1")]
    pub ice_address: String,
    /// Joins as this many participants ("NAME 1", "NAME 2", ...) sending the same encoded media: N participants
    /// for the cost of one encode (benchmarks). WHIP and RTP only.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32), conflicts_with = "janus")]
    pub copies: u32,
    /// Flash the picture white and beep at the same instant once a second (to measure A/V offset end to end).
    #[arg(long)]
    pub sync_marks: bool,
    /// Paints the wall clock into the top-left of every frame (to measure glass-to-ingest latency).
    #[arg(long)]
    pub clock_stamp: bool,
    /// Stops sending video (audio goes on) this many seconds after starting, as a camera that dies would.
    #[arg(long)]
    pub video_stops_after_s: Option<u64>,
    /// Drops this fraction (0..1) of outgoing RTP packets at random, to test how receivers cope with loss.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Sends a clip encoded once at start (10 s of VP8 and Opus, looped with continuous RTP sequence numbers and
    /// timestamps) instead of encoding live: a publisher that costs next to nothing (benchmarks). Its clock stamp
    /// reads as the send time modulo 10 s; keyframes come every second, not on request.
    #[arg(long, conflicts_with_all = ["sync_marks", "tone_on_stdin", "video_stops_after_s"])]
    pub replay: bool,
}

fn parse_size(raw: &str) -> Result<(i32, i32), String> {
    let parsed = raw
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<i32>().ok()?, h.parse::<i32>().ok()?)));
    match parsed {
        Some((w, h)) if (16..=3840).contains(&w) && (16..=3840).contains(&h) && w % 2 == 0 && h % 2 == 0 => Ok((w, h)),
        _ => Err(format!(
            "`{raw}`: expected WIDTHxHEIGHT, even, 16 to 3840 (e.g. 1280x720)"
        )),
    }
}

const TONE: &str = "tone";
const TONE_VOLUME: f64 = 0.3;

/// Switches the tone on and off from lines on standard input.
fn follow_stdin_tone(pipeline: &gst::Pipeline) {
    let Some(tone) = pipeline.by_name(TONE) else { return };
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match line.trim() {
                "on" => tone.set_property("volume", TONE_VOLUME),
                "off" => tone.set_property("volume", 0.0f64),
                other => eprintln!("ignoring `{other}` on stdin (on | off)"),
            }
        }
    });
}

pub(super) const OPUS_RTP_CAPS: &str =
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2";

pub(super) fn video_rtp_caps(codec: Codec) -> gst::Caps {
    let (name, payload) = match codec {
        Codec::Vp8 => ("VP8", 96),
        Codec::Vp9 => ("VP9", 98),
        Codec::H264 => ("H264", 102),
    };
    let mut caps = gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("encoding-name", name)
        .field("payload", payload)
        .field("clock-rate", 90000);
    if codec == Codec::H264 {
        caps = caps
            .field("packetization-mode", "1")
            .field("profile-level-id", "42e01f");
    }
    caps.build()
}

/// Sets videotestsrc properties for `ball`, `smpte`, `color:RRGGBB`, ...
pub(crate) fn video_source(pattern: &str) -> Result<gst::Element> {
    let src = make_with("videotestsrc", &[("is-live", "true")])?;
    if let Some(hex) = pattern.strip_prefix("color:") {
        let rgb = u32::from_str_radix(hex.trim_start_matches('#'), 16)
            .ok()
            .filter(|_| hex.trim_start_matches('#').len() == 6)
            .with_context(|| format!("--pattern color:{hex}: expected six hex digits RRGGBB"))?;
        src.set_property_from_str("pattern", "solid-color");
        src.set_property("foreground-color", 0xff00_0000 | rgb);
    } else {
        let pspec = src.find_property("pattern").expect("videotestsrc has pattern");
        let valid = pspec
            .downcast_ref::<gst::glib::ParamSpecEnum>()
            .map(|e| e.enum_class().to_value_by_nick(pattern).is_some())
            .unwrap_or(false);
        if !valid {
            bail!("--pattern {pattern}: not a videotestsrc pattern (try ball, smpte, color:RRGGBB)");
        }
        src.set_property_from_str("pattern", pattern);
    }
    Ok(src)
}

fn video_branch(
    pipeline: &gst::Pipeline,
    args: &PublishArgs,
    grid: &crate::tools::sync_marks::FrameGrid,
) -> Result<gst::Element> {
    let src = video_source(&args.pattern)?;
    let caps = make("capsfilter")?;
    let mut raw = gst::Caps::builder("video/x-raw")
        .field("width", args.size.0)
        .field("height", args.size.1)
        .field("framerate", gst::Fraction::new(FPS, 1));
    let raw_src = caps.static_pad("src").expect("capsfilter src");
    if args.sync_marks || args.clock_stamp {
        raw = raw.field("format", "I420");
    }
    if args.sync_marks {
        crate::tools::sync_marks::mark_video(&raw_src, grid.clone());
    }
    // After the sync marks, which paint the whole frame.
    if args.clock_stamp {
        crate::tools::clock_stamp::stamp_video(&raw_src, args.size.0 as usize, args.size.1 as usize);
    }
    caps.set_property("caps", raw.build());
    let convert = make("videoconvert")?;
    let encoding: Vec<gst::Element> = match args.codec {
        Codec::Vp8 => {
            let enc = make_with("vp8enc", &[("deadline", "1"), ("cpu-used", "8")])?;
            enc.set_property("keyframe-max-dist", args.keyframe_max_dist as i32);
            enc.set_property("target-bitrate", (args.video_kbps * 1000) as i32);
            vec![enc, make_with("rtpvp8pay", &[("pt", "96")])?]
        }
        Codec::Vp9 => {
            let enc = make_with("vp9enc", &[("deadline", "1"), ("cpu-used", "8")])?;
            enc.set_property("keyframe-max-dist", args.keyframe_max_dist as i32);
            enc.set_property("target-bitrate", (args.video_kbps * 1000) as i32);
            vec![enc, make_with("rtpvp9pay", &[("pt", "98")])?]
        }
        Codec::H264 => {
            let enc = make_with(
                "x264enc",
                &[
                    ("tune", "zerolatency"),
                    ("speed-preset", "ultrafast"),
                    ("key-int-max", "60"),
                ],
            )?;
            enc.set_property("bitrate", args.video_kbps);
            let baseline = make("capsfilter")?;
            baseline.set_property(
                "caps",
                "video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au"
                    .parse::<gst::Caps>()?,
            );
            let pay = make_with("rtph264pay", &[("pt", "102"), ("config-interval", "-1")])?;
            vec![enc, baseline, pay]
        }
    };
    let mut chain = vec![src, caps, convert];
    chain.extend(encoding);
    add_and_link(pipeline, &chain.iter().collect::<Vec<_>>())?;
    Ok(chain.pop().expect("chain ends in a payloader"))
}

fn audio_branch(
    pipeline: &gst::Pipeline,
    args: &PublishArgs,
    grid: &crate::tools::sync_marks::FrameGrid,
) -> Result<gst::Element> {
    let src = make_with("audiotestsrc", &[("is-live", "true")])?;
    src.set_property("name", TONE);
    if args.tone > 0.0 {
        src.set_property("freq", args.tone);
        src.set_property("volume", if args.tone_on_stdin { 0.0 } else { TONE_VOLUME });
    } else {
        src.set_property_from_str("wave", "silence");
    }
    let raw = make("capsfilter")?;
    if args.sync_marks {
        src.set_property("freq", 1000.0f64);
        src.set_property("volume", 0.5f64);
        src.set_property_from_str("wave", "sine");
        raw.set_property(
            "caps",
            "audio/x-raw,format=S16LE,rate=48000,channels=1".parse::<gst::Caps>()?,
        );
        crate::tools::sync_marks::mark_audio(&raw.static_pad("src").expect("capsfilter src"), 48_000, grid.clone());
    }
    let convert = make("audioconvert")?;
    let resample = make("audioresample")?;
    let encoder = make("opusenc")?;
    let payloader = make_with("rtpopuspay", &[("pt", "111")])?;
    add_and_link(pipeline, &[&src, &raw, &convert, &resample, &encoder, &payloader])?;
    Ok(payloader)
}

/// Keeps the packets leaving `payloader` for which `keep` says so. Payloaders push a frame of several packets
/// as one buffer list, so lists are filtered packet by packet.
fn filter_packets(payloader: &gst::Element, keep: impl Fn() -> bool + Send + Sync + 'static) {
    let pad = payloader.static_pad("src").expect("payloader src");
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| match &info.data {
            Some(gst::PadProbeData::Buffer(_)) if !keep() => crate::gst_util::swallow(info),
            Some(gst::PadProbeData::BufferList(list)) => {
                let mut kept = gst::BufferList::new();
                for packet in list.iter_owned() {
                    if keep() {
                        kept.get_mut().expect("new list").add(packet);
                    }
                }
                if kept.is_empty() {
                    return crate::gst_util::swallow(info);
                }
                info.data = Some(gst::PadProbeData::BufferList(kept));
                gst::PadProbeReturn::Ok
            }
            _ => gst::PadProbeReturn::Ok,
        },
    );
}

/// Loses `fraction` of the packets leaving `payloader`, at random, as a lossy network would.
fn drop_packets(payloader: &gst::Element, fraction: f64) {
    filter_packets(payloader, move || rand::random::<f64>() >= fraction);
}

/// Sends nothing from `payloader` from `after` on.
fn stop_after(payloader: &gst::Element, after: std::time::Duration) {
    let deadline = std::time::Instant::now() + after;
    filter_packets(payloader, move || std::time::Instant::now() < deadline);
}

/// The encoded tracks, once: a tee per track (video first unless `--no-video`) and its RTP caps.
pub(super) fn build_tracks(args: &PublishArgs) -> Result<(gst::Pipeline, Vec<(gst::Element, gst::Caps)>)> {
    if args.replay {
        if args.codec != Codec::Vp8 || args.loss > 0.0 {
            bail!("--replay sends VP8 (and Opus), without --loss");
        }
        return super::replay::build_tracks(args);
    }
    let pipeline = gst::Pipeline::with_name("publisher");
    let mut tracks: Vec<(gst::Element, gst::Caps)> = Vec::new();
    let grid = crate::tools::sync_marks::FrameGrid::new(FPS as u64);
    if !args.no_video {
        let payloader = video_branch(&pipeline, args, &grid)?;
        if let Some(after) = args.video_stops_after_s {
            stop_after(&payloader, std::time::Duration::from_secs(after));
        }
        tracks.push((payloader, video_rtp_caps(args.codec)));
    }
    tracks.push((audio_branch(&pipeline, args, &grid)?, OPUS_RTP_CAPS.parse()?));
    if args.loss > 0.0 {
        for (payloader, _) in &tracks {
            drop_packets(payloader, args.loss);
        }
    }
    let tees = tracks
        .iter()
        .map(|(payloader, _)| {
            let tee = make_with("tee", &[("allow-not-linked", "true")])?;
            pipeline.add(&tee)?;
            payloader.link(&tee)?;
            Ok(tee)
        })
        .collect::<Result<Vec<_>>>()?;
    let caps = tracks.into_iter().map(|(_, caps)| caps);
    Ok((pipeline, tees.into_iter().zip(caps).collect()))
}

/// The publisher pipeline: test video and tone, encoded once, into one send-only webrtcbin per copy.
fn build(args: &PublishArgs) -> Result<(gst::Pipeline, Vec<gst::Element>)> {
    let (pipeline, tracks) = build_tracks(args)?;
    let ice = IceConfig {
        local_addresses: vec![args.ice_address.clone()],
        stun_server: None,
    };
    let mut webrtcs = Vec::new();
    for copy in 0..args.copies {
        let webrtc = webrtc::new_webrtcbin(&format!("webrtc{copy}"), &ice, 50)?;
        pipeline.add(&webrtc)?;
        // Sender reports map RTP time to the capture time of the packets: with the default (send time) the
        // session adds a send latency it never learns here, and every report's RTP time ran ahead of the
        // packets by the time since the start, so receivers rejected the reports and could not line up audio
        // with video.
        if let Some(rtpbin) = webrtc.downcast_ref::<gst::Bin>().and_then(|b| b.by_name("rtpbin")) {
            rtpbin.set_property("rtcp-sync-send-time", false);
        }
        for (tee, _) in &tracks {
            let queue = make_with("queue", &[("leaky", "downstream"), ("max-size-buffers", "50")])?;
            pipeline.add(&queue)?;
            tee.link(&queue)?;
            queue.link(&webrtc)?;
        }
        // Codec preferences make the offer independent of when caps reach webrtcbin.
        for (index, (_, caps)) in tracks.iter().enumerate() {
            let index = index as i32;
            let transceiver = webrtc
                .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&index])
                .context("webrtcbin made no transceiver for a track")?;
            transceiver.set_direction(WebRTCRTPTransceiverDirection::Sendonly);
            transceiver.set_property("codec-preferences", caps);
        }
        webrtcs.push(webrtc);
    }
    Ok((pipeline, webrtcs))
}

/// Waits until every track's caps reached webrtcbin, so the offer names each track's SSRC: an SFU that
/// demuxes a bundle by SSRC (Janus) drops a track the offer did not announce.
async fn wait_for_track_caps(webrtc: &gst::Element) -> Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let pads = webrtc.sink_pads();
        if !pads.is_empty() && pads.iter().all(|p| p.current_caps().is_some()) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the publisher's tracks did not start within 5 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Resolves with the first error of the pipeline.
pub(super) async fn first_error(pipeline: &gst::Pipeline) -> String {
    use futures::StreamExt;
    let mut bus = pipeline.bus().expect("bus").stream();
    while let Some(msg) = bus.next().await {
        if let gst::MessageView::Error(e) = msg.view() {
            return crate::gst_util::describe_error(e);
        }
    }
    "bus closed".to_string()
}

/// Publishes until SIGINT/SIGTERM, then leaves the call.
pub async fn run(args: PublishArgs) -> Result<()> {
    crate::gst_util::init()?;
    if !(0.0..1.0).contains(&args.loss) {
        bail!("--loss {}: give a fraction from 0 to below 1 (0.05 is 5%)", args.loss);
    }
    if let Some(url) = &args.rtp {
        return super::publish_rtp::run(url, &args).await;
    }
    let (pipeline, webrtcs) = build(&args)?;
    pipeline.set_state(gst::State::Playing).context("starting publisher")?;
    for webrtc in &webrtcs {
        wait_for_track_caps(webrtc).await?;
    }
    if args.tone_on_stdin {
        follow_stdin_tone(&pipeline);
    }
    let name = args.name.clone().unwrap_or_else(|| "callcast publisher".into());
    let failed = std::sync::Arc::new(tokio::sync::Mutex::new(None::<String>));
    let until = {
        let failed = failed.clone();
        let pipeline = pipeline.clone();
        async move {
            tokio::select! {
                _ = crate::server::shutdown_signal() => {}
                err = first_error(&pipeline) => *failed.lock().await = Some(err),
            }
        }
    };
    let until = futures::FutureExt::shared(Box::pin(until));
    let webrtc = &webrtcs[0];
    let result = match (&args.whip, &args.janus) {
        (Some(whip), _) if webrtcs.len() > 1 => {
            let token = args.token.as_ref();
            let copies = webrtcs.iter().enumerate().map(|(i, webrtc)| {
                let copy_name = format!("{name} {}", i + 1);
                let until = until.clone();
                async move { whip_publish(whip, Some(&copy_name), token, webrtc, until).await }
            });
            futures::future::try_join_all(copies).await.map(|_| ())
        }
        (Some(whip), _) => whip_publish(whip, args.name.as_deref(), args.token.as_ref(), webrtc, until).await,
        (None, Some(url)) => {
            let target = crate::call::janus::JanusTarget {
                url: url.clone(),
                room: args.room.context("--room is required with --janus")?,
                pin: args.pin.clone(),
                token: args.token.clone(),
            };
            crate::tools::janus_publisher::publish(&target, &name, webrtc, until).await
        }
        (None, None) => Err(anyhow::anyhow!("give --whip URL or --janus URL --room N")),
    };
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(err) = failed.lock().await.take() {
        bail!("publisher pipeline: {err}");
    }
    result
}

/// WHIP: POST the offer, apply the answer, DELETE the resource when done.
async fn whip_publish(
    whip: &str,
    name: Option<&str>,
    token: Option<&SecretString>,
    webrtc: &gst::Element,
    until: impl std::future::Future<Output = ()>,
) -> Result<()> {
    webrtc::create_local(webrtc, WebRTCSDPType::Offer).await?;
    let offer = webrtc::gathered_local_sdp(webrtc).await?;
    let client = reqwest::Client::new();
    let mut url = reqwest::Url::parse(whip).context("--whip is not a URL")?;
    if let Some(name) = name {
        url.query_pairs_mut().append_pair("name", name);
    }
    let mut request = client
        .post(url.clone())
        .header("content-type", "application/sdp")
        .body(offer);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose_secret());
    }
    note_join_request();
    let response = request.send().await.context("WHIP request failed")?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::CREATED {
        bail!("WHIP endpoint answered {status}: {body}");
    }
    webrtc::set_remote(webrtc, &body, WebRTCSDPType::Answer).await?;
    println!("publishing to {whip}");
    let resource = location.and_then(|l| url.join(&l).ok());
    let outcome = tokio::select! {
        _ = until => Ok(()),
        reason = until_orphaned(&client, resource.as_ref(), token, webrtc) => Err(anyhow::anyhow!("{reason}")),
    };
    if let Some(resource) = resource {
        let mut request = client.delete(resource);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose_secret());
        }
        let _ = request.send().await;
    }
    outcome
}

/// How often a publisher looks whether its session and peer connection are still there.
const PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// A server slower than this to say whether a session exists is busy, not gone: no answer is no verdict.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Resolves, with the reason, once the session has been gone (404, connection refused) or the peer connection
/// failed for [`orphan::ORPHAN_GRACE`].
async fn until_orphaned(
    client: &reqwest::Client,
    resource: Option<&reqwest::Url>,
    token: Option<&SecretString>,
    webrtc: &gst::Element,
) -> String {
    let mut watch = orphan::OrphanWatch::default();
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    loop {
        tick.tick().await;
        let session = match resource {
            Some(resource) => session_trouble(client, resource, token).await,
            None => None,
        };
        let trouble = session.or_else(|| orphan::peer_trouble(webrtc));
        if let Some(reason) = watch.observe(std::time::Instant::now(), trouble) {
            return reason;
        }
    }
}

/// What the server says about the WHIP session at `resource`: gone (404) or no server at all is trouble;
/// anything else (alive, or a WHIP server that does not answer `GET` on its resources) is not.
async fn session_trouble(
    client: &reqwest::Client,
    resource: &reqwest::Url,
    token: Option<&SecretString>,
) -> Option<String> {
    let mut request = client.get(resource.clone()).timeout(PROBE_TIMEOUT);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose_secret());
    }
    match request.send().await {
        Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
            Some("the WHIP session is gone (404)".to_string())
        }
        Ok(_) => None,
        Err(e) if e.is_connect() => Some(format!("the WHIP server is unreachable ({})", e.without_url())),
        Err(_) => None,
    }
}
