//! `/v1/layouts`: the templates operators can choose, and a preview of each.

use super::error::ApiError;
use super::extract::{Path, Query};
use super::AppState;
use crate::broadcast::template_preview::render_png;
use crate::layout::Canvas;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

const PREVIEW_WIDTH: i32 = 640;
const MAX_PREVIEW_PARTICIPANTS: usize = 64;

pub async fn list(State(state): State<AppState>) -> Json<serde_json::Value> {
    let templates: Vec<serde_json::Value> = state
        .broadcasts
        .templates()
        .all()
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "description": t.description,
                "preview": format!("/v1/layouts/{}/preview.png?participants=4", t.name),
                "template": t,
            })
        })
        .collect();
    Json(serde_json::json!({ "layouts": templates }))
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    participants: Option<usize>,
}

pub async fn preview(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, ApiError> {
    let template = state
        .broadcasts
        .templates()
        .get(&name)
        .ok_or_else(|| ApiError::not_found("layout"))?
        .clone();
    let participants = query.participants.unwrap_or(4);
    if participants > MAX_PREVIEW_PARTICIPANTS {
        return Err(ApiError::bad_request(
            "participants",
            format!("at most {MAX_PREVIEW_PARTICIPANTS}"),
        ));
    }
    // The template's own canvas shape (portrait) or 16:9, PREVIEW_WIDTH wide.
    let (w, h) = template.canvas.map_or((16, 9), |c| (c.width as i32, c.height as i32));
    let canvas = Canvas {
        width: PREVIEW_WIDTH,
        height: (PREVIEW_WIDTH * h / w) & !1,
    };
    let assets = state.broadcasts.overlay_assets();
    let png = tokio::task::spawn_blocking(move || render_png(&template, canvas, participants, &assets))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}
