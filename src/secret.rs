//! Secrets as a type: they print as `***` everywhere, so logs, API responses and errors cannot leak them.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// An RTMP(S) ingest URL. The stream key (last path segment), any query and any user info are secret.
#[derive(Clone)]
pub struct RtmpUrl {
    full: SecretString,
    redacted: String,
}

impl RtmpUrl {
    /// Parses an `rtmp://` or `rtmps://` URL with a host and an application path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|_| "is not a valid URL".to_string())?;
        if url.scheme() != "rtmp" && url.scheme() != "rtmps" {
            return Err("must start with rtmp:// or rtmps://".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host".into());
        }
        let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        if segments.iter().filter(|s| !s.is_empty()).count() < 2 {
            return Err("must name an application and a stream key (rtmp://host/app/key)".into());
        }
        Ok(Self {
            full: SecretString::from(raw.to_string()),
            redacted: redact(&url),
        })
    }

    /// The URL with its secret parts, for the element that connects. Never log it.
    pub fn expose(&self) -> &str {
        self.full.expose_secret()
    }

    pub fn is_tls(&self) -> bool {
        self.expose().starts_with("rtmps:")
    }

    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Replaces every occurrence of the secret parts of this URL in `text` (e.g. an element's error message).
    pub fn scrub(&self, text: &str) -> String {
        let full = self.expose();
        let mut out = text.replace(full, &self.redacted);
        if let Some(key) = full.rsplit('/').next().filter(|k| k.len() >= 3) {
            out = out.replace(key, "***");
        }
        out
    }
}

fn redact(url: &url::Url) -> String {
    let mut segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    if let Some(last) = segments.iter_mut().rev().find(|s| !s.is_empty()) {
        *last = "***";
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let userinfo = if url.username().is_empty() { "" } else { "***@" };
    let query = if url.query().is_some() { "?***" } else { "" };
    format!(
        "{}://{userinfo}{}{port}/{}{query}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        segments.join("/")
    )
}

impl fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtmpUrl({})", self.redacted)
    }
}

impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// A configured secret (token, webhook key): read from a config file, the environment or a flag, shown as `***`
/// by `Debug`, `Display` and `Serialize` (what `callcast config check` prints).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn secret_string(&self) -> SecretString {
        self.0.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value.is_empty() {
            return Err(serde::de::Error::custom("is empty"));
        }
        Ok(Self::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_redacted_everywhere() {
        let url = RtmpUrl::parse("rtmp://live.example.com:1935/app/sk_live_abc123").unwrap();
        assert_eq!(url.redacted(), "rtmp://live.example.com:1935/app/***");
        assert!(!format!("{url:?} {url}").contains("sk_live_abc123"));
        assert_eq!(url.expose(), "rtmp://live.example.com:1935/app/sk_live_abc123");
    }

    #[test]
    fn query_and_user_are_redacted() {
        let url = RtmpUrl::parse("rtmps://user:pw@host/app/key?token=zzz").unwrap();
        assert_eq!(url.redacted(), "rtmps://***@host/app/***?***");
    }

    #[test]
    fn scrub_removes_key_from_messages() {
        let url = RtmpUrl::parse("rtmp://h/app/secretkey").unwrap();
        let msg = url.scrub("could not connect to rtmp://h/app/secretkey (stream secretkey)");
        assert!(!msg.contains("secretkey"), "{msg}");
    }

    #[test]
    fn rejects_other_schemes_and_missing_parts() {
        assert!(RtmpUrl::parse("http://h/app/key").is_err());
        assert!(RtmpUrl::parse("rtmp://h/app").is_err());
        assert!(RtmpUrl::parse("not a url").is_err());
    }
}
