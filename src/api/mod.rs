//! The HTTP API: `router(state)` and thin handlers.

pub mod auth;
mod broadcasts;
pub mod error;
mod events;
mod files;
pub mod json_body;
mod layouts;
mod metrics;
mod whip;

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
}

/// One route: method, path (axum syntax) and who may call it.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

fn table() -> Vec<(RouteInfo, MethodRouter<AppState>)> {
    use Access::*;
    let r = |method: Method, path: &'static str, access: Access, handler: MethodRouter<AppState>| {
        (RouteInfo { method, path, access }, handler)
    };
    vec![
        r(Method::GET, "/healthz", Public, get(|| async { "ok" })),
        r(Method::GET, "/readyz", Public, get(metrics::readyz)),
        r(Method::GET, "/metrics", Read, get(metrics::metrics)),
        r(Method::GET, "/v1/rooms/{room}", Read, get(whip::room_participants)),
        r(Method::POST, "/v1/rooms/{room}/whip", Publish, post(whip::publish)),
        r(
            Method::DELETE,
            "/v1/rooms/{room}/whip/{participant}",
            Publish,
            delete(whip::unpublish),
        ),
        r(Method::POST, "/v1/broadcasts", Control, post(broadcasts::create)),
        r(Method::GET, "/v1/broadcasts", Read, get(broadcasts::list)),
        r(Method::GET, "/v1/broadcasts/{id}", Watch, get(broadcasts::get_one)),
        r(Method::DELETE, "/v1/broadcasts/{id}", Control, delete(broadcasts::stop)),
        r(Method::PATCH, "/v1/broadcasts/{id}", Control, patch(broadcasts::patch)),
        r(
            Method::POST,
            "/v1/broadcasts/{id}/outputs",
            Control,
            post(broadcasts::add_output),
        ),
        r(
            Method::DELETE,
            "/v1/broadcasts/{id}/outputs/{output_id}",
            Control,
            delete(broadcasts::remove_output),
        ),
        r(Method::GET, "/v1/events", Read, get(events::stream)),
        r(Method::GET, "/v1/layouts", Read, get(layouts::list)),
        r(
            Method::GET,
            "/v1/layouts/{name}/preview.png",
            Read,
            get(layouts::preview),
        ),
        r(Method::GET, "/v1/broadcasts/{id}/hls/{file}", Watch, get(files::hls)),
        r(Method::GET, "/watch/{id}", Public, get(files::watch_page)),
        r(Method::GET, "/assets/hls.min.js", Public, get(files::hls_js)),
    ]
}

/// Every route of the API, for documentation and for tests that must cover them all.
pub fn routes() -> Vec<RouteInfo> {
    table().into_iter().map(|(info, _)| info).collect()
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (info, handler) in table() {
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            (state.clone(), info.access),
            auth::check,
        ));
        router = router.route(info.path, guarded);
    }
    router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(state)
}
