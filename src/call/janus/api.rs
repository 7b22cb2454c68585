//! The Janus HTTP API (REST + long-poll), just what we use of it: sessions, VideoRoom handles, messages,
//! trickle, keep-alives and events.

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::time::Duration;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Janus holds a long-poll for up to 30 s; give it a little more.
const POLL_TIMEOUT: Duration = Duration::from_secs(35);
pub const VIDEOROOM: &str = "janus.plugin.videoroom";

#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    /// Nothing answered at the URL (refused, DNS, timeout).
    #[error("cannot reach Janus: {0}")]
    Unreachable(String),
    /// Janus answered with an error of its own (core or plugin).
    #[error("Janus error {code}: {reason}")]
    Janus { code: i64, reason: String },
    #[error("unexpected answer from Janus: {0}")]
    Protocol(String),
}

impl JanusError {
    /// The session is gone (Janus restarted or timed it out): a new session is the way back.
    pub fn session_lost(&self) -> bool {
        matches!(self, JanusError::Unreachable(_)) || matches!(self, JanusError::Janus { code: 458, .. })
    }
}

#[derive(Clone)]
pub struct JanusApi {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
}

fn transaction() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// Turns a Janus reply into its useful part or a `JanusError`.
fn check(reply: Value) -> Result<Value, JanusError> {
    if reply["janus"] == "error" {
        return Err(JanusError::Janus {
            code: reply["error"]["code"].as_i64().unwrap_or(0),
            reason: reply["error"]["reason"].as_str().unwrap_or("unknown").to_string(),
        });
    }
    if let Some(code) = reply["plugindata"]["data"]["error_code"].as_i64() {
        return Err(JanusError::Janus {
            code,
            reason: reply["plugindata"]["data"]["error"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
        });
    }
    Ok(reply)
}

impl JanusApi {
    pub fn new(base: &str, token: Option<SecretString>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(POLL_TIMEOUT)
                .build()
                .expect("HTTP client"),
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    async fn post(&self, path: &str, mut body: Value) -> Result<Value, JanusError> {
        body["transaction"] = json!(transaction());
        if let Some(token) = &self.token {
            body["token"] = json!(token.expose_secret());
        }
        let reply = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| JanusError::Unreachable(describe(&e)))?;
        let reply: Value = reply.json().await.map_err(|e| JanusError::Protocol(e.to_string()))?;
        check(reply)
    }

    pub async fn create_session(&self) -> Result<u64, JanusError> {
        let reply = self.post("", json!({"janus": "create"})).await?;
        reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| JanusError::Protocol("create: no session id".into()))
    }

    pub async fn attach(&self, session: u64) -> Result<u64, JanusError> {
        let reply = self
            .post(&format!("/{session}"), json!({"janus": "attach", "plugin": VIDEOROOM}))
            .await?;
        reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| JanusError::Protocol("attach: no handle id".into()))
    }

    /// Sends a plugin message; returns Janus' reply (`success` with plugindata for synchronous requests,
    /// `ack` for asynchronous ones whose result arrives as an event).
    pub async fn message(
        &self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value, JanusError> {
        let mut msg = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            msg["jsep"] = jsep;
        }
        self.post(&format!("/{session}/{handle}"), msg).await
    }

    pub async fn trickle_complete(&self, session: u64, handle: u64) -> Result<(), JanusError> {
        self.post(
            &format!("/{session}/{handle}"),
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )
        .await
        .map(|_| ())
    }

    pub async fn keepalive(&self, session: u64) -> Result<(), JanusError> {
        self.post(&format!("/{session}"), json!({"janus": "keepalive"}))
            .await
            .map(|_| ())
    }

    pub async fn destroy(&self, session: u64) -> Result<(), JanusError> {
        self.post(&format!("/{session}"), json!({"janus": "destroy"}))
            .await
            .map(|_| ())
    }

    /// Long-polls for the session's events (an empty list when the poll times out quietly).
    pub async fn poll(&self, session: u64) -> Result<Vec<Value>, JanusError> {
        let mut url = format!("{}/{session}?maxev=10", self.base);
        if let Some(token) = &self.token {
            url.push_str("&token=");
            url.push_str(token.expose_secret());
        }
        let reply = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| JanusError::Unreachable(describe(&e)))?;
        let reply: Value = reply.json().await.map_err(|e| JanusError::Protocol(e.to_string()))?;
        let events = match reply {
            Value::Array(events) => events,
            single => vec![single],
        };
        if let Some(err) = events.iter().find(|e| e["janus"] == "error") {
            return Err(check(err.clone()).expect_err("error event"));
        }
        Ok(events.into_iter().filter(|e| e["janus"] != "keepalive").collect())
    }
}

/// A reqwest error as a person reads it, without the URL (which may carry a token).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_connect() {
        "connection refused or host unreachable"
    } else if err.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// The VideoRoom data of a plugin event or reply.
pub fn plugin_data(event: &Value) -> &Value {
    &event["plugindata"]["data"]
}
