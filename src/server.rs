//! `callcast serve`: the HTTP control API with its rooms and broadcasts, until SIGINT/SIGTERM.

use crate::api::{router, AppState, Tokens};
use crate::broadcast::admission::Limits;
use crate::broadcast::Broadcasts;
use crate::call::room::{RoomSettings, Rooms};
use crate::call::webrtc::IceConfig;
use crate::layout::template::Templates;
use anyhow::{Context, Result};
use secrecy::SecretString;
use std::future::IntoFuture;
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
    /// Most broadcasts at once (0: only the CPU budget limits).
    #[arg(long, default_value_t = 0)]
    pub max_broadcasts: usize,
    /// Cores all broadcasts may use together, by estimate; beyond it a new broadcast gets 503. Default: every
    /// core of this machine.
    #[arg(long)]
    pub cpu_budget: Option<f64>,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// POST every event here, signed with --webhook-secret (HMAC-SHA256, `X-Callcast-Signature`).
    #[arg(long, env = "CALLCAST_WEBHOOK_URL", requires = "webhook_secret")]
    pub webhook_url: Option<reqwest::Url>,
    /// Key of the webhook signature.
    #[arg(long, env = "CALLCAST_WEBHOOK_SECRET", hide_env_values = true, value_parser = secret_arg)]
    pub webhook_secret: Option<SecretString>,
}

fn secret_arg(raw: &str) -> Result<SecretString, String> {
    if raw.is_empty() {
        return Err("empty".into());
    }
    Ok(SecretString::from(raw.to_string()))
}

/// Bearer tokens. Values from the environment are not shown in `--help`, nor by `Debug`.
#[derive(Clone, Default, clap::Args)]
pub struct AuthArgs {
    /// Token for the control API (repeatable; the env var takes a comma-separated list). Required to listen
    /// on anything but loopback.
    #[arg(
        long = "api-token",
        env = "CALLCAST_API_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,
    /// Read-only token: lists and status, layouts, playback.
    #[arg(
        long = "read-token",
        env = "CALLCAST_READ_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub read_tokens: Vec<String>,
    /// Token WHIP publishers present to join any built-in room.
    #[arg(
        long = "whip-token",
        env = "CALLCAST_WHIP_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub whip_tokens: Vec<String>,
    /// ROOM=TOKEN: a publisher token for one room (repeatable).
    #[arg(long = "room-token", value_parser = parse_room_token)]
    pub room_tokens: Vec<(String, String)>,
}

impl std::fmt::Debug for AuthArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthArgs")
            .field("api_tokens", &self.api_tokens.len())
            .field("read_tokens", &self.read_tokens.len())
            .field("whip_tokens", &self.whip_tokens.len())
            .field(
                "room_tokens",
                &self.room_tokens.iter().map(|(r, _)| r).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn parse_room_token(raw: &str) -> Result<(String, String), String> {
    let (room, token) = raw.split_once('=').ok_or("expected ROOM=TOKEN")?;
    crate::broadcast::spec::validate_room_name(room)?;
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    Ok((room.to_string(), token.to_string()))
}

impl AuthArgs {
    pub fn tokens(&self) -> Tokens {
        let secrets = |v: &[String]| -> Vec<SecretString> {
            v.iter()
                .filter(|t| !t.is_empty())
                .map(|t| SecretString::from(t.clone()))
                .collect()
        };
        Tokens {
            control: secrets(&self.api_tokens),
            read: secrets(&self.read_tokens),
            whip: secrets(&self.whip_tokens),
            rooms: self
                .room_tokens
                .iter()
                .map(|(room, token)| (room.clone(), SecretString::from(token.clone())))
                .collect(),
        }
    }
}

/// An open API is for this machine only.
pub fn check_exposure(listen: SocketAddr, tokens: &Tokens) -> Result<()> {
    if !listen.ip().is_loopback() && tokens.control.is_empty() {
        anyhow::bail!(
            "refusing to listen on {listen} without an API token: set CALLCAST_API_TOKEN (or --api-token), \
             or listen on 127.0.0.1"
        );
    }
    Ok(())
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
    let mut limits = Limits {
        max_broadcasts: args.max_broadcasts,
        ..Limits::default()
    };
    if let Some(budget) = args.cpu_budget {
        limits.cpu_budget = budget;
    }
    let broadcasts = Arc::new(
        Broadcasts::new(
            rooms.clone(),
            Arc::new(templates),
            args.data_dir.clone(),
            args.latency_ms,
        )
        .with_limits(limits),
    );
    if let (Some(url), Some(secret)) = (&args.webhook_url, &args.webhook_secret) {
        crate::webhooks::spawn(
            broadcasts.events(),
            crate::webhooks::Webhook {
                url: url.clone(),
                secret: secret.clone(),
            },
        );
    }
    AppState {
        rooms,
        broadcasts,
        assets_dir: args.assets_dir.clone(),
        tokens: Arc::new(args.auth.tokens()),
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

/// How long open connections (event streams never end by themselves) may keep the process after shutdown.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(2);

/// Serves until `shutdown` resolves, then stops every broadcast cleanly: broadcasts first, so no client
/// (an operator page following /v1/events) can hold up their finalisation, then the HTTP server, briefly.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let broadcasts = state.broadcasts.clone();
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http = tokio::spawn(
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .into_future(),
    );
    tokio::select! {
        _ = shutdown => {}
        result = &mut http => {
            return result.context("HTTP server task")?.context("HTTP server");
        }
    }
    tracing::info!("shutting down: stopping {} broadcast(s)", broadcasts.running_count());
    broadcasts.stop_all().await;
    let _ = stop_http.send(());
    if tokio::time::timeout(CONNECTIONS_GRACE, &mut http).await.is_err() {
        tracing::info!("closing the connections still open");
        http.abort();
    }
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
    check_exposure(args.listen, &args.auth.tokens())?;
    crate::gst_util::init()?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let state = build_state(&args);
    let listener = bind(&args).await?;
    serve(listener, state, shutdown_signal()).await
}
