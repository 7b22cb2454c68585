//! `callcast serve`: the HTTP control API with its rooms and broadcasts, until SIGINT/SIGTERM.

use crate::api::{router, AppState};
use crate::broadcast::Broadcasts;
use crate::call::room::{RoomSettings, Rooms};
use crate::call::webrtc::IceConfig;
use crate::layout::template::Templates;
use anyhow::{Context, Result};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_LATENCY_MS: u32 = 150;
pub const DEFAULT_MEDIA_TIMEOUT_S: u64 = 5;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where broadcasts write HLS segments.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Static files: the watch page and hls.js (installed by deploy/install-deps.sh).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/assets"))]
    pub assets_dir: PathBuf,
    /// Local IP addresses WebRTC may use (repeatable). Default: loopback only; add your public interface's
    /// address to accept participants from other machines.
    #[arg(long = "ice-address", default_value = "127.0.0.1")]
    pub ice_addresses: Vec<String>,
    /// STUN server for participants behind NAT, e.g. stun://stun.example.org:3478.
    #[arg(long)]
    pub stun_server: Option<String>,
    /// Jitter-buffer latency for participants' media, in ms (low on a LAN, higher over the internet).
    #[arg(long, default_value_t = DEFAULT_LATENCY_MS)]
    pub latency_ms: u32,
    /// Extra layout templates (`*.toml`); a file named like a built-in template replaces it.
    #[arg(long)]
    pub layouts_dir: Option<PathBuf>,
    /// A participant sending no media for this many seconds is removed from the call.
    #[arg(long, default_value_t = DEFAULT_MEDIA_TIMEOUT_S)]
    pub media_timeout_s: u64,
}

/// The running service's shared parts.
pub fn build_state(args: &ServeArgs) -> AppState {
    let rooms = Rooms::start(RoomSettings {
        ice: IceConfig {
            local_addresses: args.ice_addresses.clone(),
            stun_server: args.stun_server.clone(),
        },
        latency_ms: args.latency_ms,
        media_timeout: Duration::from_secs(args.media_timeout_s),
    });
    let (templates, errors) = Templates::load(args.layouts_dir.as_deref());
    for error in &errors {
        // A bad template is skipped; the server runs with the good ones.
        tracing::warn!("layout template rejected: {error}");
    }
    let broadcasts = Arc::new(Broadcasts::new(
        rooms.clone(),
        Arc::new(templates),
        args.data_dir.clone(),
        args.latency_ms,
    ));
    AppState {
        rooms,
        broadcasts,
        assets_dir: args.assets_dir.clone(),
    }
}

/// Binds the listener and prints `callcast listening on http://ADDR` (tests and scripts read that line).
pub async fn bind(args: &ServeArgs) -> Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("callcast listening on http://{addr}");
    std::io::stdout().flush()?;
    Ok(listener)
}

/// Serves until `shutdown` resolves, then stops every broadcast cleanly.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let broadcasts = state.broadcasts.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server")?;
    tracing::info!("shutting down: stopping {} broadcast(s)", broadcasts.running_count());
    broadcasts.stop_all().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub async fn run(args: ServeArgs) -> Result<()> {
    crate::gst_util::init()?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let state = build_state(&args);
    let listener = bind(&args).await?;
    serve(listener, state, shutdown_signal()).await
}
