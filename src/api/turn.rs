//! TURN servers announced to WHIP clients with credentials of their own (RFC 9725 §4.6), made the way coturn's
//! `use-auth-secret` and most TURN services check them (the "TURN REST API" draft, draft-uberti-behave-turn-rest):
//! the username is the credential's expiry (Unix seconds) and the participant's id, the password the base64 of
//! HMAC-SHA1(shared secret, username). The shared secret never leaves the server; a credential handed to one
//! client stops working at its expiry.

use crate::secret::Secret;
use base64::Engine;
use hmac::{Hmac, Mac};

/// How long a credential works: TURN re-checks it on every allocation refresh, so it must outlast the longest
/// call a participant stays in.
pub const CREDENTIAL_TTL_S: u64 = 24 * 3600;

/// The configured TURN URIs (`turn:host:port?transport=udp`, `turns:...`) and their shared secret.
#[derive(Debug, Clone)]
pub struct TurnServers {
    pub urls: Vec<String>,
    pub secret: Secret,
}

impl TurnServers {
    /// One `Link` header value per TURN URI, with a credential for `user` expiring `CREDENTIAL_TTL_S` after
    /// `now_s`.
    pub fn links(&self, user: &str, now_s: u64) -> Vec<String> {
        let username = format!("{}:{user}", now_s + CREDENTIAL_TTL_S);
        let credential = credential(self.secret.expose(), &username);
        self.urls
            .iter()
            .map(|url| {
                format!(
                    "<{url}>; rel=\"ice-server\"; username=\"{username}\"; credential=\"{credential}\"; \
                     credential-type=\"password\""
                )
            })
            .collect()
    }
}

/// base64(HMAC-SHA1(secret, username)): the password a TURN server with the same secret expects.
fn credential(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A TURN URI as RFC 7065 writes it: `turn:` or `turns:`, a host (an IPv6 address in brackets), an optional
/// port and `?transport=udp|tcp`. Errors never quote the URI: an operator may have put a password in it.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("turn:")
        .or_else(|| url.strip_prefix("turns:"))
        .ok_or("must start with turn: or turns: (RFC 7065)")?;
    let (host_port, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !matches!(query, "" | "transport=udp" | "transport=tcp") {
        return Err("the only query is ?transport=udp or ?transport=tcp".into());
    }
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6.split_once(']').ok_or("an IPv6 address needs its closing ]")?;
            address
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| "not an IPv6 address in [ ]")?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or("after the ] comes :port or nothing")?),
            };
            ("v6", port)
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let host_ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !host_ok {
        return Err("needs a host name or address (letters, digits, dots, dashes), with no user or path".into());
    }
    if let Some(port) = port {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("the port must be a number from 1 to 65535")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answer, computed apart from this code: `python3 -c "import hmac,hashlib,base64;
    /// print(base64.b64encode(hmac.new(b'north-wind', b'1700086400:p_0123456789abcdef', hashlib.sha1).digest()))"`.
    #[test]
    fn the_credential_is_the_hmac_sha1_of_the_username() {
        assert_eq!(
            credential("north-wind", "1700086400:p_0123456789abcdef"),
            "MtqoWR5JOtKz8IQNJe997zxHoCw="
        );
    }

    #[test]
    fn each_uri_is_linked_with_a_credential_that_expires_a_day_on() {
        let turn = TurnServers {
            urls: vec![
                "turn:turn.example.net:3478?transport=udp".into(),
                "turns:turn.example.net".into(),
            ],
            secret: Secret::new("north-wind"),
        };
        let links = turn.links("p_0123456789abcdef", 1_700_000_000);
        assert_eq!(
            links,
            [
                "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; \
                 username=\"1700086400:p_0123456789abcdef\"; credential=\"MtqoWR5JOtKz8IQNJe997zxHoCw=\"; \
                 credential-type=\"password\"",
                "<turns:turn.example.net>; rel=\"ice-server\"; username=\"1700086400:p_0123456789abcdef\"; \
                 credential=\"MtqoWR5JOtKz8IQNJe997zxHoCw=\"; credential-type=\"password\"",
            ]
        );
        assert!(
            links.iter().all(|l| !l.contains("north-wind")),
            "the secret is in a link"
        );
    }

    #[test]
    fn uris_are_checked() {
        for good in [
            "turn:127.0.0.1:3478",
            "turn:turn.example.net?transport=tcp",
            "turns:[::1]:5349",
            "turns:[2001:db8::1]",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for bad in [
            "stun:turn.example.net",
            "turn://turn.example.net",
            "turn:user:pass@turn.example.net",
            "turn:",
            "turn::3478",
            "turn:::1",
            "turn:turn.example.net:99999",
            "turn:turn.example.net:abc",
            "turn:[::1",
            "turn:[::1]3478",
            "turn:turn.example.net?transport=sctp",
        ] {
            let error = check_url(bad).expect_err(bad);
            assert!(
                !error.contains("pass") && !error.contains("example"),
                "{bad}: the error quotes it: {error}"
            );
        }
    }
}
