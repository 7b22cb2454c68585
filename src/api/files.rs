//! Files served over HTTP: HLS playlists and segments, the watch page and hls.js.

use super::error::ApiError;
use super::extract::Path;
use super::AppState;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

async fn send_file(
    path: std::path::PathBuf,
    content_type: &'static str,
    cache: &'static str,
) -> Result<Response, ApiError> {
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok((
            [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)],
            bytes,
        )
            .into_response()),
        Err(_) => Err(ApiError::not_found("file")),
    }
}

/// A low-latency output's playlist may be asked for with `_HLS_msn`/`_HLS_part` (blocking reload: `ll_hls`).
pub async fn hls(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    // With renditions, `index.m3u8` here is the multivariant playlist: nothing to block on.
    if let Some(board) = state
        .broadcasts
        .ll_hls(&id)
        .filter(|b| b.renditions().is_empty() && crate::output::hls::is_servable(&file))
    {
        super::ll_hls::hold(&board, &state.broadcasts.hls_dir(&id), &file, query.as_deref()).await?;
    }
    serve_hls(&state, &id, None, &file).await
}

/// A file of one rendition of an HLS output with renditions (its folder, `{height}p/`); a low-latency
/// rendition's playlist blocks on that rendition's own progress.
pub async fn hls_rendition(
    State(state): State<AppState>,
    Path((id, rendition, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(board) = state
        .broadcasts
        .ll_hls(&id)
        .and_then(|b| b.rendition(&rendition))
        .filter(|_| crate::output::hls::is_servable(&file))
    {
        let dir = state.broadcasts.hls_dir(&id).join(&rendition);
        super::ll_hls::hold(&board, &dir, &file, query.as_deref()).await?;
    }
    serve_hls(&state, &id, Some(&rendition), &file).await
}

async fn serve_hls(state: &AppState, id: &str, folder: Option<&str>, file: &str) -> Result<Response, ApiError> {
    // Only names we write, under an id we issued: nothing else on disk is reachable (path parameters arrive
    // percent-decoded, so each part is checked whole).
    let folder_ok = folder.is_none_or(crate::output::hls_ladder::is_folder);
    if !crate::ids::is_valid_id("bc", id) || !folder_ok || !crate::output::hls::is_servable(file) {
        return Err(ApiError::not_found("file"));
    }
    let (content_type, cache) = if file.ends_with(".m3u8") {
        ("application/vnd.apple.mpegurl", "no-cache")
    } else if file.ends_with(".mp4") || file.ends_with(".m4s") {
        ("video/mp4", "max-age=60")
    } else {
        ("video/mp2t", "max-age=60")
    };
    let dir = state.broadcasts.hls_dir(id);
    let dir = folder.map_or_else(|| dir.clone(), |f| dir.join(f));
    send_file(dir.join(file), content_type, cache).await
}

pub async fn watch_page(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if !crate::ids::is_valid_id("bc", &id) {
        return Err(ApiError::not_found("broadcast"));
    }
    send_file(
        state.assets_dir.join("watch.html"),
        "text/html; charset=utf-8",
        "no-cache",
    )
    .await
}

/// The operator page; it asks for the API token itself and keeps it in the browser.
pub async fn operator_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    send_file(
        state.assets_dir.join("index.html"),
        "text/html; charset=utf-8",
        "no-cache",
    )
    .await
}

pub async fn hls_js(State(state): State<AppState>) -> Result<Response, ApiError> {
    let path = state.assets_dir.join("node_modules/hls.js/dist/hls.min.js");
    send_file(path, "text/javascript", "max-age=3600").await
}
