//! The HTTP API: `router(state)` and thin handlers.

pub mod auth;
mod broadcasts;
pub mod cors;
pub mod error;
mod events;
pub mod extract;
mod files;
pub mod json_body;
mod layouts;
mod ll_hls;
mod metrics;
pub mod openapi;
pub mod rate_limit;
mod room_join;
mod rtp;
pub mod turn;
mod whep;
mod whip;
mod whip_session;

use crate::broadcast::Broadcasts;
use crate::call::room::Rooms;
pub use auth::{Access, Tokens};
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware;
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest request body we read (JSON or SDP).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub rooms: Arc<Rooms>,
    pub broadcasts: Arc<Broadcasts>,
    pub assets_dir: PathBuf,
    pub tokens: Arc<Tokens>,
    /// WHIP requests per second per client address.
    pub whip_rate: Arc<rate_limit::RateLimit>,
    /// Web origins whose pages may call us.
    pub cors: Arc<cors::Origins>,
    /// ICE servers announced to WHIP clients (`stun://host:port`).
    pub ice_servers: Vec<String>,
    /// TURN servers announced to WHIP clients, each with a credential made for the session.
    pub turn: Option<turn::TurnServers>,
}

/// One route: method, path (axum syntax) and who may call it.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

fn table() -> Vec<(RouteInfo, MethodRouter<AppState>)> {
    use Access::*;
    let r = |method: Method, path: &'static str, access: Access, summary: &'static str, handler| {
        let info = RouteInfo {
            method,
            path,
            access,
            summary,
        };
        (info, handler)
    };
    vec![
        r(Method::GET, "/healthz", Public, "Alive", get(|| async { "ok" })),
        r(
            Method::GET,
            "/readyz",
            Public,
            "Ready to take a broadcast",
            get(metrics::readyz),
        ),
        r(
            Method::GET,
            "/metrics",
            Read,
            "Prometheus metrics",
            get(metrics::metrics),
        ),
        r(
            Method::GET,
            "/v1/openapi.json",
            Public,
            "This description",
            get(openapi::serve),
        ),
        r(
            Method::GET,
            "/v1/rooms/{room}",
            Read,
            "Participants of a built-in room",
            get(whip::room_participants),
        ),
        r(
            Method::POST,
            "/v1/rooms/{room}/whip",
            Publish,
            "Join a built-in room (WHIP)",
            post(whip::publish),
        ),
        r(
            Method::GET,
            "/v1/rooms/{room}/whip/{participant}",
            Publish,
            "Whether a WHIP session still exists (404 once it is gone)",
            get(whip_session::session),
        ),
        r(
            Method::PATCH,
            "/v1/rooms/{room}/whip/{participant}",
            Publish,
            "Trickle ICE candidates to a WHIP session, or restart its ICE (application/trickle-ice-sdpfrag)",
            patch(whip::trickle),
        ),
        r(
            Method::DELETE,
            "/v1/rooms/{room}/whip/{participant}",
            Publish,
            "Leave a built-in room (WHIP)",
            delete(whip::unpublish),
        ),
        r(
            Method::POST,
            "/v1/rooms/{room}/rtp",
            Publish,
            "Join a built-in room over plain RTP (JSON tracks in, ports out)",
            post(rtp::join),
        ),
        r(
            Method::DELETE,
            "/v1/rooms/{room}/rtp/{participant}",
            Publish,
            "Leave a built-in room (plain RTP)",
            delete(rtp::leave),
        ),
        r(
            Method::POST,
            "/v1/broadcasts",
            Control,
            "Start a broadcast",
            post(broadcasts::create),
        ),
        r(
            Method::GET,
            "/v1/broadcasts",
            Read,
            "List broadcasts",
            get(broadcasts::list),
        ),
        r(
            Method::GET,
            "/v1/broadcasts/{id}",
            Watch,
            "A broadcast's status",
            get(broadcasts::get_one),
        ),
        r(
            Method::DELETE,
            "/v1/broadcasts/{id}",
            Control,
            "Stop a broadcast",
            delete(broadcasts::stop),
        ),
        r(
            Method::PATCH,
            "/v1/broadcasts/{id}",
            Control,
            "Change a live broadcast's layout",
            patch(broadcasts::patch),
        ),
        r(
            Method::POST,
            "/v1/broadcasts/{id}/outputs",
            Control,
            "Add an output to a live broadcast",
            post(broadcasts::add_output),
        ),
        r(
            Method::DELETE,
            "/v1/broadcasts/{id}/outputs/{output_id}",
            Control,
            "End one output of a live broadcast",
            delete(broadcasts::remove_output),
        ),
        r(
            Method::GET,
            "/v1/events",
            Read,
            "Events as Server-Sent Events",
            get(events::stream),
        ),
        r(Method::GET, "/v1/layouts", Read, "Layout templates", get(layouts::list)),
        r(
            Method::GET,
            "/v1/layouts/{name}/preview.png",
            Read,
            "Preview of a layout template",
            get(layouts::preview),
        ),
        r(
            Method::GET,
            "/v1/broadcasts/{id}/hls/{file}",
            Watch,
            "HLS playlist and segments (a low_latency output's playlist takes `_HLS_msn`/`_HLS_part`: blocking reload)",
            get(files::hls),
        ),
        r(
            Method::GET,
            "/v1/broadcasts/{id}/hls/{rendition}/{file}",
            Watch,
            "A rendition's HLS playlist and segments (an hls output with renditions)",
            get(files::hls_rendition),
        ),
        r(
            Method::POST,
            "/v1/broadcasts/{id}/whep",
            Watch,
            "Watch a broadcast over WebRTC (WHEP): an SDP offer in, the answer out",
            post(whep::view),
        ),
        r(
            Method::PATCH,
            "/v1/broadcasts/{id}/whep/{viewer}",
            Watch,
            "Trickle ICE candidates to a WHEP viewer (application/trickle-ice-sdpfrag)",
            patch(whep::trickle),
        ),
        r(
            Method::DELETE,
            "/v1/broadcasts/{id}/whep/{viewer}",
            Watch,
            "End a WHEP viewer",
            delete(whep::stop),
        ),
        r(Method::GET, "/", Public, "The operator page", get(files::operator_page)),
        r(
            Method::GET,
            "/watch/{id}",
            Public,
            "A page that plays a broadcast",
            get(files::watch_page),
        ),
        r(
            Method::GET,
            "/assets/hls.min.js",
            Public,
            "hls.js for the watch page",
            get(files::hls_js),
        ),
    ]
}

/// Every route of the API, for documentation and for tests that must cover them all.
pub fn routes() -> Vec<RouteInfo> {
    table().into_iter().map(|(info, _)| info).collect()
}

/// The WHIP and WHEP routes, which pages on other origins may use.
fn is_whip(path: &str) -> bool {
    path.starts_with("/v1/rooms/{room}/whip") || path.starts_with("/v1/broadcasts/{id}/whep")
}

pub fn router(state: AppState) -> Router {
    let (mut whip, mut api) = (Router::new(), Router::new());
    for (info, handler) in table() {
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            (state.clone(), info.access),
            auth::check,
        ));
        if is_whip(info.path) {
            whip = whip.route(info.path, guarded);
        } else {
            api = api.route(info.path, guarded);
        }
    }
    // CORS answers preflights before the token check (a preflight carries no token); RFC 9725 §4.1: WHIP
    // endpoints say they take SDP.
    let whip = whip.layer(cors::whip_layer(&state.cors)).layer(
        tower_http::set_header::SetResponseHeaderLayer::if_not_present(
            axum::http::HeaderName::from_static("accept-post"),
            axum::http::HeaderValue::from_static("application/sdp"),
        ),
    );
    if let Some(layer) = cors::api_layer(&state.cors) {
        api = api.layer(layer);
    }
    api.merge(whip)
        .fallback(|| async { error::ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}
