//! `/v1/broadcasts` handlers.

use super::error::ApiError;
use super::extract::{Body, Path};
use super::AppState;
use crate::broadcast::request::{BroadcastRequest, OutputRequest};
use crate::broadcast::spec::BroadcastSpec;
use crate::broadcast::status::{BroadcastStatus, OutputStatus};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;

/// How long a refused caller should wait: running broadcasts rarely end sooner.
const RETRY_AFTER_S: u32 = 30;

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        Ok(())
    } else {
        Err(ApiError::unsupported_media("Content-Type must be application/json"))
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<BroadcastStatus>), ApiError> {
    require_json(&headers)?;
    let request: BroadcastRequest = super::json_body::parse(&body)?;
    // Checking overlays decodes images and reads files: off the async threads.
    let broadcasts = state.broadcasts.clone();
    let spec = tokio::task::spawn_blocking(move || {
        let spec = BroadcastSpec::from_request(request, broadcasts.templates())?;
        broadcasts.check(&spec)?;
        Ok::<_, crate::broadcast::spec::SpecError>(spec)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    match state.broadcasts.start(spec) {
        Ok(status) => Ok((StatusCode::CREATED, Json(status))),
        Err(refusal) => Err(ApiError::unavailable(refusal.to_string(), RETRY_AFTER_S)),
    }
}

pub async fn list(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "broadcasts": state.broadcasts.list() }))
}

fn known_id(id: &str) -> Result<(), ApiError> {
    if crate::ids::is_valid_id("bc", id) {
        Ok(())
    } else {
        Err(ApiError::not_found("broadcast"))
    }
}

pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<BroadcastStatus>, ApiError> {
    known_id(&id)?;
    state
        .broadcasts
        .get(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("broadcast"))
}

pub async fn stop(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<BroadcastStatus>, ApiError> {
    known_id(&id)?;
    state
        .broadcasts
        .stop(&id)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::not_found("broadcast"))
}

/// `POST /v1/broadcasts/{id}/outputs`: one more output on a live broadcast, from its next keyframe.
pub async fn add_output(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<OutputStatus>), ApiError> {
    known_id(&id)?;
    require_json(&headers)?;
    let request: OutputRequest = super::json_body::parse(&body)?;
    let output = state
        .broadcasts
        .add_output(&id, request)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    Ok((StatusCode::CREATED, Json(output)))
}

/// `DELETE /v1/broadcasts/{id}/outputs/{output_id}`: ends one output cleanly; answers once it has.
pub async fn remove_output(
    State(state): State<AppState>,
    Path((id, output_id)): Path<(String, String)>,
) -> Result<Json<BroadcastStatus>, ApiError> {
    known_id(&id)?;
    match state.broadcasts.remove_output(&id, &output_id).await? {
        None => Err(ApiError::not_found("broadcast")),
        Some(false) => Err(ApiError::not_found("running output")),
        Some(true) => state
            .broadcasts
            .get(&id)
            .map(Json)
            .ok_or_else(|| ApiError::not_found("broadcast")),
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    layout: Option<crate::broadcast::layout_spec::LayoutRequest>,
    /// Replaces every overlay (`[]` takes them all off air).
    overlays: Option<Vec<crate::broadcast::overlays::OverlayRequest>>,
}

/// Changes a live broadcast: its layout (template, pin, order, hidden participants) and its overlays.
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<BroadcastStatus>, ApiError> {
    known_id(&id)?;
    require_json(&headers)?;
    let request: PatchRequest = super::json_body::parse(&body)?;
    if request.layout.is_none() && request.overlays.is_none() {
        return Err(ApiError::bad_request(
            "layout",
            "nothing to change: give `layout` or `overlays`",
        ));
    }
    // Overlays are checked in full before the layout changes, so a bad one leaves the broadcast as it was.
    // Checking them decodes images and reads files: off the async threads.
    let overlays = match request.overlays {
        None => None,
        Some(requests) => {
            let broadcasts = state.broadcasts.clone();
            let list = tokio::task::spawn_blocking(move || {
                let list = crate::broadcast::overlays::validate(requests)?;
                broadcasts.check_overlays(&list)?;
                Ok::<_, crate::broadcast::spec::SpecError>(list)
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
            Some(list)
        }
    };
    let mut status = None;
    if let Some(layout) = request.layout {
        status = state.broadcasts.update_layout(&id, layout).await?;
        if status.is_none() {
            return Err(ApiError::not_found("broadcast"));
        }
    }
    if let Some(list) = overlays {
        status = state.broadcasts.update_overlays(&id, list).await?;
    }
    status.map(Json).ok_or_else(|| ApiError::not_found("broadcast"))
}
