//! The Janus HTTP API (REST + long-poll), just what we use of it: sessions, VideoRoom handles, messages,
//! trickle, keep-alives and events. Every answer is parsed here, once, into `messages::Message`.

use super::messages::{Message, VideoRoom};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
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

fn parse(json: Value) -> Result<Message, JanusError> {
    serde_json::from_value(json).map_err(|e| JanusError::Protocol(e.to_string()))
}

/// A core error as a `JanusError`.
fn core_error(message: Message) -> Result<Message, JanusError> {
    match message {
        Message::Error { error } => Err(JanusError::Janus {
            code: error.code,
            reason: error.reason,
        }),
        other => Ok(other),
    }
}

/// A reply to a request as a `JanusError` when the core or the plugin refused it.
fn check(reply: Message) -> Result<Message, JanusError> {
    let reply = core_error(reply)?;
    if let Some((code, reason)) = reply.videoroom().and_then(VideoRoom::error) {
        return Err(JanusError::Janus {
            code,
            reason: reason.to_string(),
        });
    }
    Ok(reply)
}

fn created_id(reply: Message, what: &str) -> Result<u64, JanusError> {
    match reply {
        Message::Success { data: Some(data), .. } => Ok(data.id),
        _ => Err(JanusError::Protocol(format!("{what}: no id"))),
    }
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

    async fn post(&self, path: &str, mut body: Value) -> Result<Message, JanusError> {
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
        check(parse(reply)?)
    }

    pub async fn create_session(&self) -> Result<u64, JanusError> {
        let reply = self.post("", json!({"janus": "create"})).await?;
        created_id(reply, "create")
    }

    pub async fn attach(&self, session: u64) -> Result<u64, JanusError> {
        let reply = self
            .post(&format!("/{session}"), json!({"janus": "attach", "plugin": VIDEOROOM}))
            .await?;
        created_id(reply, "attach")
    }

    /// Sends a plugin message (a `messages::Request`, or JSON); returns Janus' reply (`Success` with plugindata
    /// for synchronous requests, `Ack` for asynchronous ones whose result arrives as an event).
    pub async fn message(
        &self,
        session: u64,
        handle: u64,
        body: impl Serialize,
        jsep: Option<Value>,
    ) -> Result<Message, JanusError> {
        let body = serde_json::to_value(body).map_err(|e| JanusError::Protocol(e.to_string()))?;
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

    /// Long-polls for the session's events, keep-alives left out (none when the poll times out quietly); a core
    /// error (e.g. the session is gone) is an `Err`, plugin errors stay in their events.
    pub async fn events(&self, session: u64) -> Result<Vec<Message>, JanusError> {
        let mut events = Vec::new();
        for json in self.poll_json(session).await? {
            // One odd event must not cost the session: it is skipped, loudly.
            let event = match parse(json) {
                Ok(event) => core_error(event)?,
                Err(e) => {
                    tracing::warn!("skipping a Janus event: {e}");
                    continue;
                }
            };
            if !matches!(event, Message::Keepalive) {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// `events` as raw JSON, for the synthetic publisher.
    pub async fn poll(&self, session: u64) -> Result<Vec<Value>, JanusError> {
        let mut events = self.poll_json(session).await?;
        for json in events.iter().filter(|e| e["janus"] == "error") {
            core_error(parse(json.clone())?)?;
        }
        events.retain(|e| e["janus"] != "keepalive");
        Ok(events)
    }

    async fn poll_json(&self, session: u64) -> Result<Vec<Value>, JanusError> {
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
        Ok(match reply {
            Value::Array(events) => events,
            single => vec![single],
        })
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

/// The VideoRoom data of a plugin event or reply as raw JSON, for the synthetic publisher.
pub fn plugin_data(event: &Value) -> &Value {
    &event["plugindata"]["data"]
}
