//! Secrets as a type: they print as `***` everywhere, so logs, API responses and errors cannot leak them.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// An RTMP(S) ingest URL. Everything after the application name (the stream key, which may itself contain `/`),
/// any query or fragment and any user info are secret: only `scheme://host:port/app/***` is ever shown.
#[derive(Clone)]
pub struct RtmpUrl {
    full: SecretString,
    redacted: String,
    /// The secret parts as they may appear in an element's message (raw and percent-decoded), longest first.
    secret_parts: Vec<SecretString>,
}

/// Shorter secret fragments are not scrubbed on their own: replacing `a` everywhere would garble messages
/// while hiding nothing (the whole key is scrubbed whatever its length).
const MIN_SCRUBBED_PART: usize = 3;

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
            secret_parts: secret_parts(&url).into_iter().map(SecretString::from).collect(),
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
        let mut out = text.replace(self.expose(), &self.redacted);
        for part in &self.secret_parts {
            out = out.replace(part.expose_secret(), "***");
        }
        out
    }
}

/// The application name: the first non-empty path segment. Everything after it is the stream key.
fn split_app(url: &url::Url) -> (&str, Vec<&str>) {
    let mut segments = url.path_segments().into_iter().flatten().skip_while(|s| s.is_empty());
    let app = segments.next().unwrap_or_default();
    (app, segments.collect())
}

fn redact(url: &url::Url) -> String {
    let (app, _key) = split_app(url);
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let userinfo = if url.username().is_empty() && url.password().is_none() {
        ""
    } else {
        "***@"
    };
    format!(
        "{}://{userinfo}{}{port}/{app}/***",
        url.scheme(),
        url.host_str().unwrap_or_default()
    )
}

/// Every secret piece of `url` (key, its segments, query, fragment, user info), raw and percent-decoded,
/// longest first so a whole key is replaced before its parts.
fn secret_parts(url: &url::Url) -> Vec<String> {
    let (_app, key) = split_app(url);
    let mut raw: Vec<String> = vec![key.join("/")];
    raw.extend(key.iter().map(|s| s.to_string()));
    raw.extend(url.query().map(str::to_string));
    for pair in url.query().into_iter().flat_map(|q| q.split('&')) {
        raw.push(pair.to_string());
        raw.extend(pair.split_once('=').map(|(_, value)| value.to_string()));
    }
    raw.extend(url.fragment().map(str::to_string));
    raw.push(url.username().to_string());
    raw.extend(url.password().map(str::to_string));
    let tail = match (url.query(), url.fragment()) {
        (Some(q), _) => Some(format!("{}?{q}", key.join("/"))),
        (None, Some(f)) => Some(format!("{}#{f}", key.join("/"))),
        _ => None,
    };
    raw.extend(tail);
    let decoded: Vec<String> = raw
        .iter()
        .map(|p| {
            url::form_urlencoded::parse(format!("x={p}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .chain(raw.iter().map(|p| percent_decode(p)))
        .collect();
    let mut parts: Vec<String> = raw
        .into_iter()
        .chain(decoded)
        .filter(|p| p.len() >= MIN_SCRUBBED_PART)
        .collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    parts.dedup();
    parts
}

/// `%2F` -> `/` (but `+` stays `+`, unlike form decoding).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        assert_eq!(url.redacted(), "rtmps://***@host/app/***");
    }

    /// Everything after the application name is the key, whatever it contains.
    #[test]
    fn everything_after_the_app_is_secret() {
        let cases = [
            ("rtmp://host/app/a/b/KEY", "rtmp://host/app/***"),
            ("rtmp://host:1936/live/sk/part2?x=1&y=2", "rtmp://host:1936/live/***"),
            ("rtmp://host/app/sk%2Fslash%2Fkey", "rtmp://host/app/***"),
            ("rtmp://host/app/k?e=y/with/slash", "rtmp://host/app/***"),
            ("rtmps://u@host//app//double//key#frag", "rtmps://***@host/app/***"),
            ("rtmp://host/app/key/", "rtmp://host/app/***"),
        ];
        for (raw, redacted) in cases {
            let url = RtmpUrl::parse(raw).unwrap();
            assert_eq!(url.redacted(), redacted, "{raw}");
            assert_eq!(format!("{url} {url:?}"), format!("{redacted} RtmpUrl({redacted})"));
        }
    }

    #[test]
    fn scrub_hides_every_part_of_a_key_with_slashes_and_queries() {
        let url = RtmpUrl::parse("rtmp://h/app/seg1/seg2/sk_KEY%2Fenc?tok=qsecret&z=vsecret").unwrap();
        let message = "failed: rtmp://h/app/seg1/seg2/sk_KEY%2Fenc?tok=qsecret&z=vsecret; stream \
                       seg1/seg2/sk_KEY/enc (app app, stream seg2/sk_KEY%2Fenc, query tok=qsecret, vsecret)";
        let scrubbed = url.scrub(message);
        for secret in ["seg1", "seg2", "sk_KEY", "enc", "qsecret", "vsecret", "tok="] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.starts_with("failed: rtmp://h/app/***;"), "{scrubbed}");
        assert!(scrubbed.contains("(app app,"), "{scrubbed}");
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
