//! `callcast bench --cold-start`: a batch job's cold start, as a container would run it. A call is already in
//! progress (participants publishing into a real Janus VideoRoom on loopback); each run spawns `callcast run
//! job.json` (a grid of the call to the local nginx-rtmp) and times from the spawn to the first complete FLV video
//! tag the ingest wrote. Runs one after another, each a fresh process; prints the median and every run.

use super::ingest::NginxRtmp;
use super::janus::{JanusServer, ROOM, ROOM_PIN};
use super::peer::{free_port, wait_until, Peer};
use super::scenario::{has_video_tag, Publisher};
use super::server::janus_publisher;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a job may take to put its first video tag on the ingest.
const FIRST_TAG_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ColdStartRun {
    pub participants: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub publisher: Publisher,
    pub runs: u32,
}

pub fn run(exe: &Path, run: &ColdStartRun) -> Result<Value> {
    let janus = JanusServer::start()?;
    let mut flags = vec!["--pattern", "ball", "--tone", "440"];
    if run.publisher == Publisher::Replay {
        flags.push("--replay");
    }
    let _publishers = (1..=run.participants)
        .map(|i| janus_publisher(exe, &janus, &format!("p {i}"), &flags))
        .collect::<Result<Vec<Peer>>>()?;
    let n = run.participants as usize;
    wait_until("the publishers in Janus", Duration::from_secs(60), || {
        let listed = janus.list_participants().ok()?;
        (listed.iter().filter(|(_, publishing)| *publishing).count() >= n).then_some(())
    })?;
    let ingest = NginxRtmp::try_start_on(free_port())?;
    let dir = tempfile::tempdir().context("temporary directory for the jobs")?;
    let mut times = Vec::new();
    for i in 0..run.runs.max(1) {
        let key = format!("cold{i}");
        let job = json!({
            "source": {"kind": "janus", "url": janus.url(), "room": ROOM, "pin": ROOM_PIN},
            "layout": {"template": "grid"},
            "video": {"width": run.width, "height": run.height, "fps": run.fps,
                      "keyframe_interval_s": super::scenario::KEYFRAME_INTERVAL_S},
            "outputs": [{"kind": "rtmp", "url": ingest.url(&key)}],
        });
        let job_path = dir.path().join(format!("{key}.json"));
        std::fs::write(&job_path, serde_json::to_vec(&job)?)?;
        let ms = first_tag_ms(exe, &job_path, &dir.path().join(&key), &ingest.recording(&key))?;
        eprintln!("cold start {}: {ms} ms to the first FLV video tag", i + 1);
        times.push(ms);
    }
    let mut sorted = times.clone();
    sorted.sort_unstable();
    let n = sorted.len();
    Ok(json!({
        "cold_start_ms_median": (sorted[(n - 1) / 2] + sorted[n / 2]) / 2,
        "cold_start_ms_min": sorted[0],
        "cold_start_ms_max": sorted[sorted.len() - 1],
        "runs_ms": times,
        "participants": run.participants,
        "width": run.width,
        "height": run.height,
        "fps": run.fps,
        "publisher": run.publisher,
        "source": "janus",
    }))
}

/// Spawns `callcast run job` and polls the ingest's recording every 5 ms for its first video tag.
fn first_tag_ms(exe: &Path, job: &Path, data_dir: &Path, recording: &Path) -> Result<u64> {
    let spawned = Instant::now();
    let _job = Peer(
        Command::new(exe)
            .arg("run")
            .arg(job)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting callcast run")?,
    );
    while spawned.elapsed() < FIRST_TAG_TIMEOUT {
        if std::fs::read(recording).is_ok_and(|b| has_video_tag(&b)) {
            return Ok(spawned.elapsed().as_millis() as u64);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    anyhow::bail!("callcast run put no video on the ingest in {FIRST_TAG_TIMEOUT:?}")
}
