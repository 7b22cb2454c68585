//! `callcast demo`: the server, N synthetic participants in room `demo`, and a grid broadcast to HLS (and RTMP
//! if given), until Ctrl-C.

use crate::broadcast::request::{BroadcastRequest, LayoutRequest, OutputRequest, SourceRequest};
use crate::broadcast::spec::BroadcastSpec;
use crate::config::Settings;
use crate::secret::Secret;
use crate::server::{self, ServeArgs};
use anyhow::{Context, Result};
use std::time::Duration;

pub const DEMO_ROOM: &str = "demo";

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Synthetic participants to publish into the room.
    #[arg(long, default_value_t = 4)]
    pub participants: usize,
    /// Also stream to this RTMP(S) URL.
    #[arg(long)]
    pub rtmp: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Distinct look and sound per synthetic participant.
const LOOKS: &[(&str, f64)] = &[
    ("ball", 440.0),
    ("smpte", 0.0),
    ("color:d43f3a", 0.0),
    ("color:2e86de", 0.0),
    ("pinwheel", 0.0),
    ("color:27ae60", 0.0),
    ("spokes", 0.0),
    ("color:f39c12", 0.0),
];

/// A demo reachable from other machines gets a control token of its own, written (not printed) to a file
/// only this user can read.
fn ensure_token(settings: &mut Settings) -> Result<()> {
    if settings.listen.ip().is_loopback() || !settings.api_tokens.is_empty() {
        return Ok(());
    }
    let token: String = {
        use rand::Rng;
        let bytes: [u8; 24] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let path = settings.data_dir.join("api-token");
    {
        use std::io::Write;
        // A new file (tempfile makes it mode 600) renamed over the old one: a token file left by an earlier run
        // keeps its mode when rewritten in place, and a symlink there would be written through.
        let mut file = tempfile::NamedTempFile::new_in(&settings.data_dir)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(token.as_bytes())?;
        file.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "the API needs a bearer token on {}: it is in {}",
        settings.listen,
        path.display()
    );
    settings.api_tokens.push(Secret::new(token));
    Ok(())
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let mut settings = args.serve.settings()?;
    server::prepare(&settings)?;
    ensure_token(&mut settings)?;
    server::check_exposure(settings.listen, &settings.tokens())?;
    let request = BroadcastRequest {
        source: SourceRequest::Room { room: DEMO_ROOM.into() },
        layout: Some(LayoutRequest::default()),
        video: Some(Default::default()),
        audio: Default::default(),
        outputs: std::iter::once(OutputRequest::Hls {
            segment_seconds: None,
            window: None,
            upload: None,
            renditions: Vec::new(),
            low_latency: None,
        })
        .chain(args.rtmp.clone().map(|url| OutputRequest::Rtmp {
            url,
            max_reconnect_s: None,
            reconnect_initial_ms: None,
            reconnect_max_interval_s: None,
            tls_verify: None,
        }))
        .collect(),
        // Anyone who can reach the demo may watch it; controlling it needs the token.
        public: true,
        // A demo runs until stopped, even with nobody in it.
        max_duration_s: Some(7 * 24 * 3600),
        idle_timeout_s: Some(24 * 3600),
        video_timeout_s: None,
        webhook_url: None,
        overlays: Vec::new(),
    };
    let state = server::build_state(&settings);
    let spec = BroadcastSpec::from_request(request, state.broadcasts.templates())
        .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
    let listener = server::bind(&settings).await?;
    let addr = listener.local_addr()?;
    let broadcasts = state.broadcasts.clone();
    let server = tokio::spawn(server::serve(listener, state, server::shutdown_signal()));

    let exe = std::env::current_exe().context("locating the callcast binary")?;
    let whip = format!("http://{addr}/v1/rooms/{DEMO_ROOM}/whip");
    let mut publishers = Vec::new();
    for i in 0..args.participants {
        let (pattern, tone) = LOOKS[i % LOOKS.len()];
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(["publish", "--whip", &whip, "--name", &format!("Guest {}", i + 1)])
            .args(["--pattern", pattern, "--tone", &tone.to_string()])
            .kill_on_drop(true);
        // Through the environment, not the command line, which any local user can read.
        if let Some(token) = settings.api_tokens.first() {
            command.env("CALLCAST_PUBLISH_TOKEN", token.expose());
        }
        // SAFETY: prctl is async-signal-safe; it makes the participant exit with us even if we are SIGKILLed.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().context("starting a synthetic participant")?;
        publishers.push(child);
    }
    let status = broadcasts.start(spec)?;
    println!(
        "demo broadcast {} started with {} participants",
        status.id, args.participants
    );
    println!("watch it at http://{addr}/watch/{}", status.id);
    println!(
        "HLS playlist: http://{addr}{}",
        status.outputs[0].playlist.as_deref().unwrap_or_default()
    );
    println!("press Ctrl-C to stop");
    let result = server.await.context("server task")?;
    for mut p in publishers {
        let _ = tokio::time::timeout(Duration::from_secs(1), p.kill()).await;
    }
    result
}
