//! The HTTP API: `router(state)` and thin handlers.

mod broadcasts;
pub mod error;
mod files;
pub mod json_body;
mod layouts;
mod whip;

use crate::broadcast::Broadcasts;
use crate::call::room::Rooms;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
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
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/rooms/{room}", get(whip::room_participants))
        .route("/v1/rooms/{room}/whip", post(whip::publish))
        .route("/v1/rooms/{room}/whip/{participant}", delete(whip::unpublish))
        .route("/v1/broadcasts", post(broadcasts::create).get(broadcasts::list))
        .route(
            "/v1/broadcasts/{id}",
            get(broadcasts::get_one)
                .delete(broadcasts::stop)
                .patch(broadcasts::patch),
        )
        .route("/v1/layouts", get(layouts::list))
        .route("/v1/layouts/{name}/preview.png", get(layouts::preview))
        .route("/v1/broadcasts/{id}/hls/{file}", get(files::hls))
        .route("/watch/{id}", get(files::watch_page))
        .route("/assets/hls.min.js", get(files::hls_js))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
