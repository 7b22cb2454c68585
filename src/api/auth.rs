//! Who may call what: bearer tokens for the control API (control and read-only scopes), per-room tokens for
//! WHIP publishers, and public or token-protected playback. With no token configured the API is open, which
//! `serve` allows on loopback only.

use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, static assets).
    Public,
    /// A read or control token.
    Read,
    /// A control token.
    Control,
    /// A publisher: the room's token, a WHIP token, or a control token.
    Publish,
    /// A viewer of one broadcast: anyone if the broadcast is public, else a read or control token (header or
    /// `?token=`, since players cannot always set headers).
    Watch,
}

#[derive(Clone, Default)]
pub struct Tokens {
    pub control: Vec<SecretString>,
    pub read: Vec<SecretString>,
    /// May publish into any room.
    pub whip: Vec<SecretString>,
    /// May publish into one room.
    pub rooms: HashMap<String, SecretString>,
}

fn any_matches(tokens: &[SecretString], presented: &str) -> bool {
    // Every candidate is compared (no early exit), each in constant time for its length.
    tokens.iter().fold(false, |found, t| {
        found | bool::from(t.expose_secret().as_bytes().ct_eq(presented.as_bytes()))
    })
}

impl Tokens {
    /// No control or read token: the API is open (loopback only).
    pub fn open(&self) -> bool {
        self.control.is_empty() && self.read.is_empty()
    }

    fn publish_open(&self) -> bool {
        self.open() && self.whip.is_empty() && self.rooms.is_empty()
    }

    /// Decides `access` for a caller presenting `token`; `room` is the room of a WHIP route.
    pub fn allows(&self, access: Access, token: Option<&str>, room: Option<&str>) -> bool {
        let control = |t: &str| any_matches(&self.control, t);
        let read = |t: &str| control(t) || any_matches(&self.read, t);
        match access {
            Access::Public => true,
            Access::Read | Access::Watch => self.open() || token.is_some_and(read),
            Access::Control => self.open() || token.is_some_and(control),
            Access::Publish => {
                self.publish_open()
                    || token.is_some_and(|t| {
                        control(t)
                            || any_matches(&self.whip, t)
                            || room
                                .and_then(|r| self.rooms.get(r))
                                .is_some_and(|rt| any_matches(std::slice::from_ref(rt), t))
                    })
            }
        }
    }
}

/// `Authorization: Bearer <token>`; the scheme name is case-insensitive (RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `token=<value>` from a query string (playback URLs).
fn query_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The path segment after `after` (`/v1/rooms/{room}`, `/v1/broadcasts/{id}`).
fn segment_after<'a>(path: &'a str, after: &str) -> Option<&'a str> {
    let mut parts = path.split('/');
    parts.find(|p| *p == after)?;
    parts.next()
}

/// Middleware guarding one route with `access`.
pub async fn check(State((state, access)): State<(AppState, Access)>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let header_token = bearer(request.headers()).map(str::to_string);
    let allowed = match access {
        Access::Watch => {
            let public = segment_after(&path, "broadcasts")
                .or_else(|| segment_after(&path, "watch"))
                .is_some_and(|id| state.broadcasts.is_public(id));
            public || {
                let token = header_token.or_else(|| query_token(request.uri().query()));
                state.tokens.allows(access, token.as_deref(), None)
            }
        }
        Access::Publish => state
            .tokens
            .allows(access, header_token.as_deref(), segment_after(&path, "rooms")),
        _ => state.tokens.allows(access, header_token.as_deref(), None),
    };
    if allowed {
        next.run(request).await
    } else {
        axum::response::IntoResponse::into_response(ApiError::unauthorized())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            control: vec!["ctl-1".into(), "ctl-2".into()],
            read: vec!["reader".into()],
            whip: vec![],
            rooms: HashMap::from([("stage".to_string(), SecretString::from("room-key"))]),
        }
    }

    #[test]
    fn scopes() {
        let t = tokens();
        assert!(t.allows(Access::Control, Some("ctl-2"), None));
        assert!(!t.allows(Access::Control, Some("reader"), None));
        assert!(t.allows(Access::Read, Some("reader"), None));
        assert!(!t.allows(Access::Read, None, None));
        assert!(!t.allows(Access::Read, Some("ctl-"), None));
        assert!(t.allows(Access::Publish, Some("room-key"), Some("stage")));
        assert!(!t.allows(Access::Publish, Some("room-key"), Some("other")));
        assert!(t.allows(Access::Publish, Some("ctl-1"), Some("other")));
        assert!(t.allows(Access::Public, None, None));
    }

    #[test]
    fn no_tokens_means_open() {
        let t = Tokens::default();
        assert!(t.open());
        assert!(t.allows(Access::Control, None, None));
        assert!(t.allows(Access::Publish, None, Some("x")));
    }

    #[test]
    fn tokens_come_from_header_or_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        for value in ["bearer abc", "BEARER abc", "BeArEr  abc "] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&headers), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearerabc", "Bearer"] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&headers), None, "{value}");
        }
        assert_eq!(query_token(Some("a=1&token=x%2By")).as_deref(), Some("x+y"));
        assert_eq!(segment_after("/v1/rooms/demo/whip", "rooms"), Some("demo"));
    }
}
