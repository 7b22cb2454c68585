//! `callcast serve`: the HTTP control API with its rooms and broadcasts, until SIGINT/SIGTERM.

use crate::api::rate_limit::RateLimit;
use crate::api::{router, AppState, Tokens};
use crate::broadcast::admission::Limits;
use crate::broadcast::Broadcasts;
use crate::call::pending_joins::PendingLimits;
use crate::call::room::{RoomSettings, Rooms};
use crate::call::webrtc::IceConfig;
use crate::config::Settings;
use anyhow::{Context, Result};
use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `serve` (and of `run` and `demo`). Each overrides the same setting from `CALLCAST_*` and the config
/// file; see `crate::config` for the defaults. Token values are not shown by `Debug`.
#[derive(Clone, Default, clap::Args, serde::Serialize)]
pub struct ServeArgs {
    /// Config file (TOML). Default: ./callcast.toml if it exists.
    #[arg(long, env = "CALLCAST_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Where broadcasts write HLS segments [default: ./data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Static files: the operator page, the watch page and hls.js (installed by deploy/install-deps.sh).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assets_dir: Option<PathBuf>,
    /// Local IP addresses WebRTC may use (repeatable) [default: 127.0.0.1]; add your public interface's
    /// address to accept participants from other machines.
    #[arg(long = "ice-address")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ice_addresses: Vec<String>,
    /// STUN server for participants behind NAT, e.g. stun://stun.example.org:3478.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stun_server: Option<String>,
    /// A TURN server for participants no direct path reaches, `turn:host:port?transport=udp` or `turns:...`
    /// (repeatable); needs CALLCAST_TURN_SECRET (or `turn_secret` in the config file), the servers' shared secret.
    #[arg(long = "turn-url")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub turn_urls: Vec<String>,
    /// A web origin (`https://app.example.com`) whose pages may publish over WHIP (repeatable) [default: any
    /// origin, since room tokens guard the WHIP routes].
    #[arg(long = "whip-allowed-origin")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub whip_allowed_origins: Vec<String>,
    /// A web origin whose pages may call the control API (repeatable) [default: none].
    #[arg(long = "api-allowed-origin")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_allowed_origins: Vec<String>,
    /// Jitter-buffer latency for participants' media, in ms (low on a LAN, higher over the internet) [default: 150].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u32>,
    /// Extra layout templates (`*.toml`); a file named like a built-in template replaces it.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layouts_dir: Option<PathBuf>,
    /// A participant sending no media for this many seconds is removed from the call [default: 5].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_timeout_s: Option<u64>,
    /// UDP ports for plain RTP participants, `first-last`: a pair (RTP, RTCP) per track, on the first
    /// --ice-address [default: 40000-40999].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_port_range: Option<String>,
    /// Most broadcasts at once (0: only the CPU budget limits) [default: 0].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_broadcasts: Option<usize>,
    /// WHIP requests one client address may make per second, in bursts of as many; beyond, 429 with
    /// Retry-After (0: no limit) [default: 20].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whip_requests_per_s: Option<u32>,
    /// Most WHIP joins waiting to connect (answered, no media yet) on this server; beyond, 503 with
    /// Retry-After (0: no limit) [default: 48].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_joins: Option<usize>,
    /// Most WHIP joins waiting to connect in one room (0: no limit) [default: 24].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_joins_per_room: Option<usize>,
    /// Most WHIP joins waiting to connect from one client address (0: no limit) [default: 16].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_joins_per_address: Option<usize>,
    /// Cores all broadcasts may use together, by estimate; beyond it a new broadcast gets 503. Default: every
    /// core of this machine.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_budget: Option<f64>,
    /// Extra CA certificates (PEM) RTMPS outputs trust next to the system's (e.g. a private ingest's CA).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmp_ca_file: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    pub auth: AuthArgs,
    /// POST every event here, signed with the webhook secret (HMAC-SHA256, `X-Callcast-Signature`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Key of the webhook signature (prefer CALLCAST_WEBHOOK_SECRET or the config file: flags are visible
    /// to other local users).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl ServeArgs {
    /// The effective settings: defaults < config file < `CALLCAST_*` < these flags.
    pub fn settings(&self) -> Result<Settings> {
        let figment = self.figment()?;
        crate::config::extract(&figment).map_err(|e| anyhow::anyhow!("bad configuration: {e}"))
    }

    pub fn figment(&self) -> Result<figment::Figment> {
        crate::config::figment(self.config.as_deref(), self).map_err(anyhow::Error::msg)
    }
}

/// Bearer tokens given as flags (prefer the environment or the config file).
#[derive(Clone, Default, clap::Args, serde::Serialize)]
pub struct AuthArgs {
    /// Token for the control API (repeatable, or comma-separated). Required to listen on anything but loopback.
    #[arg(long = "api-token", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_tokens: Vec<String>,
    /// Read-only token: lists and status, layouts, playback.
    #[arg(long = "read-token", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_tokens: Vec<String>,
    /// Token WHIP publishers present to join any built-in room.
    #[arg(long = "whip-token", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub whip_tokens: Vec<String>,
    /// ROOM=TOKEN: a publisher token for one room (repeatable).
    #[arg(long = "room-token", value_parser = parse_room_token)]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "room_pairs")]
    pub room_tokens: Vec<(String, String)>,
}

fn room_pairs<S: serde::Serializer>(pairs: &[(String, String)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().map(|(room, token)| (room, token)))
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
pub fn build_state(args: &Settings) -> AppState {
    let rooms = Rooms::start(RoomSettings {
        ice: IceConfig {
            local_addresses: args.ice_addresses.clone(),
            stun_server: args.stun_server.clone(),
        },
        latency_ms: args.latency_ms,
        media_timeout: Duration::from_secs(args.media_timeout_s),
        pending: PendingLimits {
            per_address: args.max_pending_joins_per_address,
            per_room: args.max_pending_joins_per_room,
            total: args.max_pending_joins,
        },
        rtp_address: args
            .ice_addresses
            .first()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into()),
        // Checked when the settings were read.
        rtp_ports: args.rtp_ports().unwrap_or_else(|_| {
            crate::config::DEFAULT_RTP_PORT_RANGE
                .parse()
                .expect("default range parses")
        }),
    });
    let (templates, errors) = crate::broadcast::templates::load(args.layouts_dir.as_deref(), &args.assets_dir);
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
    let mut broadcasts = Broadcasts::new(
        rooms.clone(),
        Arc::new(templates),
        args.data_dir.clone(),
        args.latency_ms,
    )
    .with_limits(limits)
    .with_assets_dir(args.assets_dir.clone())
    .with_webhook_secret(args.webhook_secret.as_ref().map(crate::secret::Secret::secret_string));
    if let Some(uploader) = start_uploader(args) {
        broadcasts = broadcasts.with_uploader(uploader);
    }
    let broadcasts = Arc::new(broadcasts);
    if let Some(hook) = args.webhook() {
        crate::webhooks::spawn(broadcasts.events(), hook);
    }
    AppState {
        rooms,
        broadcasts,
        assets_dir: args.assets_dir.clone(),
        tokens: Arc::new(args.tokens()),
        whip_rate: Arc::new(RateLimit::new(args.whip_requests_per_s)),
        cors: Arc::new(crate::api::cors::Origins {
            whip: args.whip_allowed_origins.clone(),
            api: args.api_allowed_origins.clone(),
        }),
        ice_servers: args.stun_server.iter().cloned().collect(),
        turn: args.turn_servers().unwrap_or_else(|e| {
            // Checked when the settings were read: only settings made some other way get here.
            tracing::error!("TURN servers not announced: {e}");
            None
        }),
    }
}

/// The upload queue under the data dir, if object storage is configured (settings were checked when read).
fn start_uploader(args: &Settings) -> Option<crate::storage::Uploader> {
    let settings = match args.storage_settings() {
        Ok(settings) => settings?,
        Err(e) => {
            tracing::error!("object storage not used: {e}");
            return None;
        }
    };
    let store = crate::storage::Store::new(&settings)
        .map_err(|e| tracing::error!("object storage not used: {e}"))
        .ok()?;
    let dir = crate::storage::uploader::queue_dir(&args.data_dir);
    let ours = crate::broadcast::upload_key_prefixes(&store, &args.data_dir);
    match crate::storage::Uploader::start(store, &dir, ours) {
        Ok(uploader) => Some(uploader),
        Err(e) => {
            tracing::error!(
                "object storage not used: cannot open the upload queue in {}: {e}",
                dir.display()
            );
            None
        }
    }
}

/// Binds the listener and prints `callcast listening on http://ADDR` (tests and scripts read that line).
pub async fn bind(args: &Settings) -> Result<tokio::net::TcpListener> {
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
        // The client's address, for the per-address WHIP limits.
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
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

/// What every command that runs broadcasts does first: GStreamer, the data dir, RTMPS trust.
pub fn prepare(settings: &Settings) -> Result<()> {
    crate::gst_util::init()?;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    if let Some(ca) = &settings.rtmp_ca_file {
        crate::output::tls::trust_extra_ca(ca, &settings.data_dir.join("tls"))?;
    }
    Ok(())
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let args = args.settings()?;
    check_exposure(args.listen, &args.tokens())?;
    prepare(&args)?;
    let state = build_state(&args);
    let listener = bind(&args).await?;
    serve(listener, state, shutdown_signal()).await
}
