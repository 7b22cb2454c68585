//! One measured window of the server under test: its cores (and where they went by thread kind), its memory and
//! threads at the end, and how busy the whole machine was meanwhile (a busy machine reads as an upper bound).

use crate::procstat::{cores_by_thread_name, machine_busy, threads_cpu, usage};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One broadcast of a room's participants, measured after a warmup for a window (the single-broadcast modes).
pub struct OneBroadcast {
    pub participants: u32,
    /// The composited canvas.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub warmup: Duration,
    pub window: Duration,
}

impl OneBroadcast {
    pub fn from_args(args: &super::BenchArgs) -> Self {
        Self {
            participants: args.participants.first().copied().unwrap_or(4),
            width: args.width,
            height: args.height,
            fps: args.fps,
            warmup: Duration::from_secs(args.warmup_s),
            window: Duration::from_secs(args.window_s),
        }
    }

    /// A server with `participants` synthetic participants in `room` (one publisher process, a 440 Hz tone and
    /// `flags`), all joined.
    pub fn start_room(
        &self,
        exe: &std::path::Path,
        room: &str,
        flags: &[&str],
    ) -> Result<(super::server::BenchServer, super::peer::Peer)> {
        let server = super::server::BenchServer::start(exe)?;
        let copies = self.participants.to_string();
        let mut all = vec!["--tone", "440", "--copies", &copies];
        all.extend_from_slice(flags);
        let publisher = super::server::publisher(exe, &server.whip_url(room), "p", &all)?;
        server.wait_participants(room, self.participants as usize, Duration::from_secs(60))?;
        Ok((server, publisher))
    }
}

pub fn measure(pid: &str, window: Duration) -> Result<Value> {
    let (_, busy0) = machine_busy(None);
    let u0 = usage(pid).context("server usage")?;
    let threads0 = threads_cpu(pid);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let u1 = usage(pid).context("server usage")?;
    let threads1 = threads_cpu(pid);
    let secs = t0.elapsed().as_secs_f64();
    let (busy, _) = machine_busy(Some(busy0));
    Ok(json!({
        "cores": round3((u1.cpu_s - u0.cpu_s) / secs),
        "rss_mb": (u1.rss_bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        "threads": u1.threads,
        "machine_busy": round3(busy),
        "cores_by_thread": cores_by_thread_name(&threads0, &threads1, secs),
    }))
}

/// Waits until broadcast `id` is live.
pub fn wait_live(server: &super::server::BenchServer, id: &str) -> Result<()> {
    super::peer::wait_until("the broadcast live", Duration::from_secs(30), || {
        let s = server.send("GET", &format!("/v1/broadcasts/{id}"), None).ok()?;
        (s["state"] == "live").then_some(())
    })
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
