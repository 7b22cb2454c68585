//! Cross-origin access for pages on other origins (a web app publishing over WHIP from its own site): the WHIP
//! routes answer any origin unless `whip_allowed_origins` names some (room tokens guard them); the control API
//! answers only `api_allowed_origins`, none by default. tower-http's `CorsLayer` answers the preflights.

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Allowed web origins, as configured.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// For the WHIP routes; empty: any.
    pub whip: Vec<String>,
    /// For every other route; empty: none.
    pub api: Vec<String>,
}

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
pub fn check_origin(origin: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(origin).map_err(|e| format!("{origin:?} is not an origin: {e}"))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && !origin.ends_with('/');
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare || !url.username().is_empty() {
        return Err(format!(
            "{origin:?} is not an origin (scheme://host[:port], e.g. https://app.example.com)"
        ));
    }
    Ok(())
}

fn allow(origins: &[String]) -> AllowOrigin {
    AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
}

/// What browsers need for WHIP (RFC 9725): the offer and trickle PATCH with a token, and the headers a client
/// reads back (the session's `Location`, ICE servers in `Link`, the `ETag` of trickle requests).
pub fn whip_layer(origins: &Origins) -> CorsLayer {
    let allowed = if origins.whip.is_empty() {
        AllowOrigin::any()
    } else {
        allow(&origins.whip)
    };
    CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::GET,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::ETAG,
            HeaderName::from_static("accept-post"),
            header::RETRY_AFTER,
        ])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// The control API's CORS, only for the configured origins.
pub fn api_layer(origins: &Origins) -> Option<CorsLayer> {
    if origins.api.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(allow(&origins.api))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::LOCATION, header::RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::check_origin;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "https://app.example.com",
            "http://127.0.0.1:5173",
            "https://xn--bcher-kva.example",
        ] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/page",
            "https://app.example.com?x=1",
            "ftp://app.example.com",
            "https://user@app.example.com",
            "*",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
