//! The server's settings, layered with figment: built-in defaults, then the config file (`callcast.toml`),
//! then `CALLCAST_*` environment variables, then flags; each layer overrides the ones before it.

use crate::secret::Secret;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config file read when `--config` / `CALLCAST_CONFIG` names none (skipped if absent).
pub const DEFAULT_FILE: &str = "callcast.toml";
pub const DEFAULT_LATENCY_MS: u32 = 150;
/// The pages, scripts and fonts shipped with the source.
pub const DEFAULT_ASSETS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
pub const DEFAULT_MEDIA_TIMEOUT_S: u64 = 5;
/// 500 pairs: a track each.
pub const DEFAULT_RTP_PORT_RANGE: &str = "40000-40999";
/// Above what a meeting's publishers need (a bench publisher opens 16 at once from one address), far below what
/// exhausts a process: a waiting join of 16 unbundled media sections holds about 50 threads and 50 sockets.
pub const DEFAULT_WHIP_REQUESTS_PER_S: u32 = 20;
pub const DEFAULT_MAX_PENDING_JOINS_PER_ADDRESS: usize = 16;
pub const DEFAULT_MAX_PENDING_JOINS_PER_ROOM: usize = 24;
pub const DEFAULT_MAX_PENDING_JOINS: usize = 48;

/// Every setting of `serve` (also used by `run` and `demo`, which run the same service).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Where broadcasts write HLS segments and their records.
    pub data_dir: PathBuf,
    /// Static files: the operator page, the watch page and hls.js.
    pub assets_dir: PathBuf,
    /// Local IP addresses WebRTC may use.
    #[serde(deserialize_with = "list")]
    pub ice_addresses: Vec<String>,
    /// STUN server for participants behind NAT.
    pub stun_server: Option<String>,
    /// TURN servers for participants no direct path reaches (`turn:host:port?transport=udp`, `turns:...`),
    /// announced to WHIP clients with credentials made from `turn_secret`.
    #[serde(deserialize_with = "list")]
    pub turn_urls: Vec<String>,
    /// The TURN servers' shared secret (coturn's `static-auth-secret`); never sent: clients get credentials
    /// derived from it that expire.
    pub turn_secret: Option<Secret>,
    /// Web origins (`https://app.example.com`) whose pages may use the WHIP routes; empty: any origin (room
    /// tokens guard them).
    #[serde(deserialize_with = "list")]
    pub whip_allowed_origins: Vec<String>,
    /// Web origins whose pages may call the control API from a browser; empty: none.
    #[serde(deserialize_with = "list")]
    pub api_allowed_origins: Vec<String>,
    /// Jitter-buffer latency for participants' media, in ms.
    pub latency_ms: u32,
    /// Extra layout templates (`*.toml`).
    pub layouts_dir: Option<PathBuf>,
    /// A participant sending no media for this long is removed from the call.
    pub media_timeout_s: u64,
    /// UDP ports for plain RTP participants (`first-last`): a pair (RTP even, RTCP odd) per track, on the first
    /// of `ice_addresses`.
    pub rtp_port_range: String,
    /// Most broadcasts at once (0: only the CPU budget limits).
    pub max_broadcasts: usize,
    /// WHIP requests one client address may make per second, in bursts of as many (0: no limit).
    pub whip_requests_per_s: u32,
    /// Most WHIP joins waiting to connect (answered, no media yet) on this server (0: no limit).
    pub max_pending_joins: usize,
    /// Most WHIP joins waiting to connect in one room (0: no limit).
    pub max_pending_joins_per_room: usize,
    /// Most WHIP joins waiting to connect from one client address (0: no limit).
    pub max_pending_joins_per_address: usize,
    /// Cores all broadcasts may use together, by estimate (default: every core).
    pub cpu_budget: Option<f64>,
    /// Extra CA certificates (PEM) RTMPS outputs trust next to the system's.
    pub rtmp_ca_file: Option<PathBuf>,
    /// Where every event is POSTed (broadcasts may name their own URL too).
    pub webhook_url: Option<String>,
    /// Key of the webhook signature (HMAC-SHA256).
    pub webhook_secret: Option<Secret>,
    /// Control API tokens.
    #[serde(deserialize_with = "list")]
    pub api_tokens: Vec<Secret>,
    /// Read-only API tokens.
    #[serde(deserialize_with = "list")]
    pub read_tokens: Vec<Secret>,
    /// Publisher tokens for every built-in room.
    #[serde(deserialize_with = "list")]
    pub whip_tokens: Vec<Secret>,
    /// Publisher token per built-in room.
    #[serde(deserialize_with = "room_map")]
    pub room_tokens: BTreeMap<String, Secret>,
    /// Object storage for outputs with `upload: true`: `s3://bucket` or `s3://bucket/prefix`.
    pub storage_url: Option<String>,
    /// An S3-compatible server (`http://minio:9000`, R2's or GCS's S3 endpoint); default: AWS S3.
    pub storage_endpoint: Option<String>,
    /// The bucket's region (default `us-east-1`); also read from `AWS_REGION`.
    pub storage_region: Option<String>,
    /// Also read from `AWS_ACCESS_KEY_ID`.
    pub storage_access_key_id: Option<Secret>,
    /// Also read from `AWS_SECRET_ACCESS_KEY`.
    pub storage_secret_access_key: Option<Secret>,
    /// Temporary credentials' token (STS, SSO, an assumed role); also read from `AWS_SESSION_TOKEN`.
    pub storage_session_token: Option<Secret>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            assets_dir: PathBuf::from(DEFAULT_ASSETS_DIR),
            ice_addresses: vec!["127.0.0.1".into()],
            stun_server: None,
            turn_urls: Vec::new(),
            turn_secret: None,
            whip_allowed_origins: Vec::new(),
            api_allowed_origins: Vec::new(),
            latency_ms: DEFAULT_LATENCY_MS,
            layouts_dir: None,
            media_timeout_s: DEFAULT_MEDIA_TIMEOUT_S,
            rtp_port_range: DEFAULT_RTP_PORT_RANGE.into(),
            max_broadcasts: 0,
            whip_requests_per_s: DEFAULT_WHIP_REQUESTS_PER_S,
            max_pending_joins: DEFAULT_MAX_PENDING_JOINS,
            max_pending_joins_per_room: DEFAULT_MAX_PENDING_JOINS_PER_ROOM,
            max_pending_joins_per_address: DEFAULT_MAX_PENDING_JOINS_PER_ADDRESS,
            cpu_budget: None,
            rtmp_ca_file: None,
            webhook_url: None,
            webhook_secret: None,
            api_tokens: Vec::new(),
            read_tokens: Vec::new(),
            whip_tokens: Vec::new(),
            room_tokens: BTreeMap::new(),
            storage_url: None,
            storage_endpoint: None,
            storage_region: None,
            storage_access_key_id: None,
            storage_secret_access_key: None,
            storage_session_token: None,
        }
    }
}

/// Plain settings read from `CALLCAST_<KEY>` (figment parses their values: numbers, lists in `[...]`).
const PLAIN_ENV: [&str; 23] = [
    "listen",
    "data_dir",
    "assets_dir",
    "ice_addresses",
    "stun_server",
    "turn_urls",
    "whip_allowed_origins",
    "api_allowed_origins",
    "latency_ms",
    "layouts_dir",
    "media_timeout_s",
    "rtp_port_range",
    "max_broadcasts",
    "whip_requests_per_s",
    "max_pending_joins",
    "max_pending_joins_per_room",
    "max_pending_joins_per_address",
    "cpu_budget",
    "rtmp_ca_file",
    "webhook_url",
    "storage_url",
    "storage_endpoint",
    "storage_region",
];

/// Secret settings and their variables. Taken verbatim: figment would read a token `007` as the number 7.
pub const SECRET_ENV: [(&str, &str); 6] = [
    ("CALLCAST_API_TOKEN", "api_tokens"),
    ("CALLCAST_READ_TOKEN", "read_tokens"),
    ("CALLCAST_WHIP_TOKEN", "whip_tokens"),
    ("CALLCAST_ROOM_TOKEN", "room_tokens"),
    ("CALLCAST_WEBHOOK_SECRET", "webhook_secret"),
    ("CALLCAST_TURN_SECRET", "turn_secret"),
];

/// The standard AWS variables, read as storage settings: above the config file, below `CALLCAST_*`.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "storage_access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "storage_secret_access_key"),
    ("AWS_SESSION_TOKEN", "storage_session_token"),
    ("AWS_REGION", "storage_region"),
];

/// Where a value came from, for `config check`.
pub const FLAGS_SOURCE: &str = "flags";
const SECRET_ENV_SOURCE: &str = "environment";

/// The layers, in order. `file`: the file `--config` named (must exist), else `callcast.toml` if present.
pub fn figment(file: Option<&Path>, flags: impl Serialize) -> Result<Figment, String> {
    let mut figment = Figment::new();
    match file {
        Some(path) if !path.is_file() => return Err(format!("config file {} does not exist", path.display())),
        Some(path) => figment = figment.merge(Toml::file_exact(path)),
        None if Path::new(DEFAULT_FILE).is_file() => figment = figment.merge(Toml::file_exact(DEFAULT_FILE)),
        None => {}
    }
    let from_env = |vars: &[(&str, &'static str)]| -> BTreeMap<&'static str, String> {
        vars.iter()
            .filter_map(|(var, key)| std::env::var(var).ok().map(|v| (*key, v)))
            .collect()
    };
    let secrets = from_env(&SECRET_ENV);
    Ok(figment
        .merge(Named(SECRET_ENV_SOURCE, Serialized::defaults(from_env(&AWS_ENV))))
        .merge(Env::prefixed("CALLCAST_").only(&PLAIN_ENV))
        .merge(Named(SECRET_ENV_SOURCE, Serialized::defaults(secrets)))
        .merge(Named(FLAGS_SOURCE, Serialized::defaults(flags))))
}

/// Extracts and checks the settings; errors name the key and where its value came from.
pub fn extract(figment: &Figment) -> Result<Settings, String> {
    let settings: Settings = figment.extract().map_err(|e| {
        e.into_iter()
            // Every key lives in figment's default profile; its name would only confuse.
            .map(|e| e.to_string().replace("key \"default.", "key \""))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    settings.check()?;
    Ok(settings)
}

/// The layer a key's value came from: `default`, the config file's path, `environment` or `flags`.
pub fn source_of(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        None => "default".into(),
        Some(m) => match &m.source {
            Some(figment::Source::File(path)) => path.display().to_string(),
            _ if m.name == FLAGS_SOURCE => FLAGS_SOURCE.into(),
            _ => SECRET_ENV_SOURCE.into(),
        },
    }
}

/// A provider under a name of ours, so `config check` can say where a value came from.
struct Named<P>(&'static str, P);

impl<P: figment::Provider> figment::Provider for Named<P> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.0)
    }

    fn data(&self) -> figment::Result<figment::value::Map<figment::Profile, figment::value::Dict>> {
        self.1.data()
    }
}

impl Settings {
    fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.webhook_url {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook_url: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err("webhook_url: must be an http:// or https:// URL".into());
            }
            if self.webhook_secret.is_none() {
                return Err("webhook_url: needs webhook_secret (the key of the signature)".into());
            }
        }
        for room in self.room_tokens.keys() {
            crate::broadcast::spec::validate_room_name(room).map_err(|e| format!("room_tokens: {room}: {e}"))?;
        }
        self.rtp_ports()?;
        if self.cpu_budget.is_some_and(|b| b.is_nan() || b <= 0.0) {
            return Err("cpu_budget: must be a positive number of cores".into());
        }
        for (key, origins) in [
            ("whip_allowed_origins", &self.whip_allowed_origins),
            ("api_allowed_origins", &self.api_allowed_origins),
        ] {
            for origin in origins {
                crate::api::cors::check_origin(origin).map_err(|e| format!("{key}: {e}"))?;
            }
        }
        self.turn_servers()?;
        if let Some(settings) = self.storage_settings()? {
            crate::storage::Store::new(&settings)?;
        }
        Ok(())
    }

    /// TURN servers as configured (None without `turn_urls`).
    pub fn turn_servers(&self) -> Result<Option<crate::api::turn::TurnServers>, String> {
        for (i, url) in self.turn_urls.iter().enumerate() {
            crate::api::turn::check_url(url).map_err(|e| format!("turn_urls[{i}]: {e}"))?;
        }
        match (self.turn_urls.is_empty(), &self.turn_secret) {
            (true, None) => Ok(None),
            (true, Some(_)) => Err("turn_secret: needs turn_urls (the TURN servers it is the secret of)".into()),
            (false, None) => Err("turn_urls: needs turn_secret (the TURN servers' shared secret)".into()),
            (false, Some(secret)) => Ok(Some(crate::api::turn::TurnServers {
                urls: self.turn_urls.clone(),
                secret: secret.clone(),
            })),
        }
    }

    /// Object storage as configured (None without `storage_url`).
    pub fn storage_settings(&self) -> Result<Option<crate::storage::StoreSettings>, String> {
        let Some(url) = &self.storage_url else {
            if self.storage_endpoint.is_some() {
                return Err("storage_endpoint: needs storage_url (s3://bucket/prefix)".into());
            }
            return Ok(None);
        };
        let url = crate::storage::StorageUrl::parse(url).map_err(|e| format!("storage_url: {e}"))?;
        if self.storage_access_key_id.is_some() != self.storage_secret_access_key.is_some() {
            return Err(
                "storage_access_key_id and storage_secret_access_key (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) \
                 go together"
                    .into(),
            );
        }
        if self.storage_session_token.is_some() && self.storage_access_key_id.is_none() {
            return Err(
                "storage_session_token (AWS_SESSION_TOKEN): needs storage_access_key_id and \
                 storage_secret_access_key, the temporary credentials it goes with"
                    .into(),
            );
        }
        Ok(Some(crate::storage::StoreSettings {
            url,
            endpoint: self.storage_endpoint.clone(),
            region: self.storage_region.clone(),
            access_key_id: self.storage_access_key_id.as_ref().map(Secret::secret_string),
            secret_access_key: self.storage_secret_access_key.as_ref().map(Secret::secret_string),
            session_token: self.storage_session_token.as_ref().map(Secret::secret_string),
        }))
    }

    /// `rtp_port_range` parsed.
    pub fn rtp_ports(&self) -> Result<crate::call::rtp_ports::PortRange, String> {
        self.rtp_port_range.parse().map_err(|e| format!("rtp_port_range: {e}"))
    }

    pub fn webhook(&self) -> Option<crate::webhooks::Webhook> {
        let url = reqwest::Url::parse(self.webhook_url.as_deref()?).ok()?;
        let secret = self.webhook_secret.as_ref()?.secret_string();
        Some(crate::webhooks::Webhook { url, secret })
    }

    pub fn tokens(&self) -> crate::api::Tokens {
        let secrets = |v: &[Secret]| v.iter().map(Secret::secret_string).collect();
        crate::api::Tokens {
            control: secrets(&self.api_tokens),
            read: secrets(&self.read_tokens),
            whip: secrets(&self.whip_tokens),
            rooms: self
                .room_tokens
                .iter()
                .map(|(room, token)| (room.clone(), token.secret_string()))
                .collect(),
        }
    }
}

/// A list: an array, or one string of comma-separated items (how environment variables carry lists).
fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + From<String>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(String),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::<T>::deserialize(deserializer)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| T::from(s.to_string()))
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

/// Room tokens: a table `room = "token"`, or one string `room=token,room2=token2`.
fn room_map<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, Secret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum MapOrString {
        Map(BTreeMap<String, Secret>),
        Pairs(String),
    }
    match MapOrString::deserialize(deserializer)? {
        MapOrString::Map(m) => Ok(m),
        MapOrString::Pairs(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| match pair.trim().split_once('=') {
                Some((room, token)) if !token.is_empty() => Ok((room.to_string(), Secret::new(token))),
                _ => Err(serde::de::Error::custom(
                    "expected ROOM=TOKEN pairs separated by commas",
                )),
            })
            .collect(),
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}
