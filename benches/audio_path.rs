//! What a broadcast's audio path costs, in CPU time (holds on a busy machine, unlike wall-clock shares): cores at
//! real time = CPU seconds per second of audio. Not a test: figures for docs/benchmarks.md.
//!
//!     cargo bench --bench audio_path -- [LIVE_SECONDS] [ROUNDS]
//!
//! Four participants send Opus (20 ms frames of 440/554/659/880 Hz tones, as `callcast publish` sends a tone),
//! encoded and decoded once up front (opusdec ! audioconvert ! audioresample, as `call::decode` builds it), then
//! mixed live the way a broadcast runs (`mix::live_mixer`, `mix::input_src` per participant, `encode::build_audio_with`,
//! its appsink read by the outputs' hub, `output::hub::EncodedHub`, feeding two outputs' `appsrc ! aacparse` as an
//! HLS and an RTMP output have), decoded buffers pushed every 20 ms by one thread per participant: cores per thread
//! kind over LIVE_SECONDS, variants alternating ROUNDS times.

use callcast::call::decode::MIX_AUDIO_CAPS;
use callcast::mix::encode::{self, AacEncoder, AudioBuffers};
use callcast::output::hub::EncodedHub;
use callcast::procstat;
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_millis(20);
const TONES: [u32; 4] = [440, 554, 659, 880];
/// Seconds of audio each participant has (looped in the live runs).
const SECONDS: u32 = 60;

fn pipeline(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .expect("bench pipeline")
        .downcast()
        .expect("a pipeline")
}

/// Runs `pipeline` to end-of-stream, collecting what its appsink named `out` got.
fn run_collect(pipeline: &gst::Pipeline) -> Vec<gst::Buffer> {
    let sink: gst_app::AppSink = pipeline.by_name("out").expect("out").downcast().expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut buffers = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        buffers.push(sample.buffer_owned().expect("buffer"));
    }
    pipeline.set_state(gst::State::Null).expect("null");
    buffers
}

/// A participant's Opus packets (20 ms each) and their caps.
fn opus_packets(tone: u32) -> (Vec<gst::Buffer>, gst::Caps) {
    let p = pipeline(&format!(
        "audiotestsrc num-buffers={n} samplesperbuffer=960 freq={tone} volume=0.3 ! {MIX_AUDIO_CAPS} ! \
         opusenc ! appsink name=out sync=false",
        n = SECONDS * 50
    ));
    let sink = p.by_name("out").unwrap();
    let packets = run_collect(&p);
    let caps = sink.static_pad("sink").unwrap().current_caps();
    (
        packets,
        caps.unwrap_or_else(|| "audio/x-opus,channel-mapping-family=0".parse().unwrap()),
    )
}

/// Pushes `buffers` into the appsrc named `name` of `pipeline` (stamped one after the other), then EOS.
fn feed(pipeline: &gst::Pipeline, name: &str, buffers: &[gst::Buffer], caps: &gst::Caps, each: Duration) {
    let src: gst_app::AppSrc = pipeline.by_name(name).expect("src").downcast().expect("appsrc");
    src.set_caps(Some(caps));
    src.set_format(gst::Format::Time);
    src.set_block(true);
    src.set_max_buffers(50);
    for (i, buffer) in buffers.iter().enumerate() {
        let mut b = buffer.copy();
        let b_mut = b.get_mut().unwrap();
        b_mut.set_pts(gst::ClockTime::from_nseconds(i as u64 * each.as_nanos() as u64));
        b_mut.set_duration(gst::ClockTime::from_nseconds(each.as_nanos() as u64));
        if src.push_buffer(b).is_err() {
            return;
        }
    }
    let _ = src.end_of_stream();
}

fn src(name: &str) -> String {
    format!("appsrc name={name} format=time")
}

fn decode_chain() -> String {
    format!("opusdec ! audioconvert ! audioresample ! {MIX_AUDIO_CAPS}")
}

/// Each participant's sound, Opus-encoded then decoded (20 ms buffers of the mix's S16).
fn decoded_participants() -> Vec<Vec<gst::Buffer>> {
    TONES
        .iter()
        .map(|tone| {
            let (packets, caps) = opus_packets(*tone);
            let p = pipeline(&format!(
                "{} ! {} ! appsink name=out sync=false",
                src("in"),
                decode_chain()
            ));
            std::thread::scope(|s| {
                s.spawn(|| feed(&p, "in", &packets, &caps, FRAME));
                run_collect(&p)
            })
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    buffers: AudioBuffers,
    aac: AacEncoder,
}

/// An output's audio input as `output::audio_source` builds it (`appsrc ! aacparse`), ending in an appsink that
/// counts AAC frames; `name` names its appsrc's thread.
fn output(name: &str, frames: Arc<AtomicU64>) -> (gst::Pipeline, gst_app::AppSrc) {
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder().name(name).format(gst::Format::Time).build();
    let parse = gst::ElementFactory::make("aacparse").build().unwrap();
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .enable_last_sample(false)
        .build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let _ = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                frames.fetch_add(1, Ordering::Relaxed);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline
        .add_many([src.upcast_ref(), &parse, sink.upcast_ref()])
        .unwrap();
    gst::Element::link_many([src.upcast_ref(), &parse, sink.upcast_ref()]).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    (pipeline, src)
}

/// Cores by thread kind of one live run of `variant` over `secs` (after 2 s of warm-up), and AAC frames out.
fn live(variant: Variant, decoded: &[Vec<gst::Buffer>], secs: u64) -> (Vec<(String, f64)>, u64) {
    let pipeline = gst::Pipeline::new();
    let audiomixer = callcast::mix::live_mixer("audiomixer").unwrap();
    let out = encode::build_audio_with(&pipeline, &audiomixer, 128, variant.buffers, variant.aac).unwrap();
    // The outputs' hub reads the appsink and feeds two outputs; the first one's frames are counted.
    let frames = Arc::new(AtomicU64::new(0));
    let hub = EncodedHub::new(gst::ClockTime::from_seconds(1));
    hub.attach_audio_only(&out);
    let outputs: Vec<_> = ["out-a", "out-b"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let counted = if i == 0 { frames.clone() } else { Arc::default() };
            let (p, src) = output(name, counted);
            (p, hub.add_feed(None, src))
        })
        .collect();
    let mix_caps: gst::Caps = MIX_AUDIO_CAPS.parse().unwrap();
    let srcs: Vec<gst_app::AppSrc> = (0..decoded.len())
        .map(|i| {
            let src = callcast::mix::input_src(format!("audio-p{i}"), gst::ClockTime::from_mseconds(260), 10);
            src.set_caps(Some(&mix_caps));
            pipeline.add(&src).unwrap();
            let pad = audiomixer.request_pad_simple("sink_%u").unwrap();
            src.static_pad("src").unwrap().link(&pad).unwrap();
            src
        })
        .collect();
    pipeline.set_state(gst::State::Playing).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let pushers: Vec<_> = srcs
        .iter()
        .zip(decoded)
        .enumerate()
        .map(|(i, (src, buffers))| {
            let (src, buffers, stop, pipeline) = (src.clone(), buffers.clone(), stop.clone(), pipeline.clone());
            std::thread::Builder::new()
                .name(format!("pusher{i}"))
                .spawn(move || {
                    let start = Instant::now();
                    for n in 0u32.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let mut b = buffers[n as usize % buffers.len()].copy();
                        let b_mut = b.get_mut().unwrap();
                        // Stamped on arrival in the mixer's running time, as the tap re-times a participant's sound.
                        b_mut.set_pts(pipeline.current_running_time());
                        b_mut.set_duration(gst::ClockTime::from_nseconds(FRAME.as_nanos() as u64));
                        let _ = src.push_buffer(b);
                        let next = start + FRAME * (n + 1);
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                })
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let before = procstat::threads_cpu("self");
    let frames_before = frames.load(Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let after = procstat::threads_cpu("self");
    let window = started.elapsed().as_secs_f64();
    let frames_out = frames.load(Ordering::Relaxed) - frames_before;
    stop.store(true, Ordering::Relaxed);
    for p in pushers {
        p.join().unwrap();
    }
    if let Some(gst::MessageView::Error(e)) = pipeline
        .bus()
        .unwrap()
        .pop_filtered(&[gst::MessageType::Error])
        .as_ref()
        .map(|m| m.view())
    {
        panic!("{variant_name}: {}", e.error(), variant_name = variant.name);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    for (p, feed) in outputs {
        drop(feed);
        p.set_state(gst::State::Null).unwrap();
    }
    let mut cores = procstat::cores_by_thread_name(&before, &after, window);
    cores.retain(|(name, _)| name != "main");
    (cores, (frames_out as f64 / window * 1000.0).round() as u64)
}

fn main() {
    gst::init().expect("gstreamer");
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let secs = args.first().copied().unwrap_or(20);
    let rounds = args.get(1).copied().unwrap_or(2);
    let decoded = decoded_participants();
    let frames = |silence, mixed| AudioBuffers { silence, mixed };
    let variants = [
        Variant {
            name: "now: 960/480 (20/10 ms)",
            buffers: AudioBuffers::WITH_PICTURE,
            aac: AacEncoder::Libav,
        },
        Variant {
            name: "one AAC frame: 1024/1024",
            buffers: frames(1024, 1024),
            aac: AacEncoder::Libav,
        },
        Variant {
            name: "voaacenc, 960/480",
            buffers: AudioBuffers::WITH_PICTURE,
            aac: AacEncoder::VoAac,
        },
    ];
    println!(
        "live, {secs} s windows (cores by thread kind; pusher = this bench's stand-in for the decoders; \
         silence/mixer buffers in samples at 48 kHz; out-a/out-b = the outputs' appsrc threads):"
    );
    for round in 0..rounds {
        for v in variants {
            let (cores, mframes) = live(v, &decoded, secs);
            let total: f64 = cores
                .iter()
                .filter(|(n, _)| !n.starts_with("pusher"))
                .map(|(_, c)| c)
                .sum();
            let listed: Vec<String> = cores.iter().map(|(n, c)| format!("{n} {c:.3}")).collect();
            println!(
                "  round {round}: {:<27} total {total:.3} [{}] aac frames/s {:.1}",
                v.name,
                listed.join(", "),
                mframes as f64 / 1000.0
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
}
