//! WHIP ingest into the built-in rooms (RFC 9725): an SDP offer in, `201` with the answer and a `Location`.

use super::error::ApiError;
use super::extract::{Path, Query};
use super::AppState;
use crate::broadcast::spec::validate_room_name;
use crate::call::decode::SUPPORTED_ENCODINGS;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// SDP offers larger than this are not offers a browser or our publisher sends.
const MAX_SDP_BYTES: usize = 64 * 1024;
/// A participant sends audio and video, perhaps screen share and data: more media sections is abuse.
const MAX_MEDIA_SECTIONS: usize = 16;

#[derive(Deserialize)]
pub struct PublishQuery {
    name: Option<String>,
}

fn room_name(room: &str) -> Result<(), ApiError> {
    validate_room_name(room).map_err(|m| ApiError::bad_request("room", m))
}

/// Checks the offer before any pipeline exists, so a useless offer is a quick 4xx rather than a hang.
fn check_offer(headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(ApiError::unsupported_media("Content-Type must be application/sdp"));
    }
    if body.len() > MAX_SDP_BYTES {
        return Err(ApiError::bad_request(
            "sdp",
            format!("offer larger than {MAX_SDP_BYTES} bytes"),
        ));
    }
    let offer = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("sdp", "offer is not UTF-8 text"))?;
    if !offer.starts_with("v=0") {
        return Err(ApiError::bad_request(
            "sdp",
            "offer is not an SDP session description (must start with v=0)",
        ));
    }
    let sections = offer.lines().filter(|l| l.starts_with("m=")).count();
    if sections > MAX_MEDIA_SECTIONS {
        return Err(ApiError::bad_request(
            "sdp",
            format!("offer has {sections} media sections; at most {MAX_MEDIA_SECTIONS}"),
        ));
    }
    let encodings =
        crate::call::webrtc::offered_encodings(offer).map_err(|e| ApiError::bad_request("sdp", e.to_string()))?;
    if !encodings.iter().any(|e| SUPPORTED_ENCODINGS.contains(&e.as_str())) {
        return Err(ApiError::bad_request(
            "sdp",
            format!(
                "offer has no codec we decode (we take {}; offered: {})",
                SUPPORTED_ENCODINGS.join(", "),
                if encodings.is_empty() {
                    "none".into()
                } else {
                    encodings.join(", ")
                }
            ),
        ));
    }
    Ok(offer.to_string())
}

pub async fn publish(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<PublishQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    room_name(&room)?;
    let offer = check_offer(&headers, &body)?;
    let name = query.name.as_deref().and_then(crate::call::display_name::clean);
    let (id, answer) = state
        .rooms
        .join(&room, name, &offer)
        .await
        .map_err(|e| ApiError::bad_request("sdp", format!("cannot answer the offer: {e:#}")))?;
    let location = format!("/v1/rooms/{room}/whip/{id}");
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_string()),
            (header::LOCATION, location),
        ],
        answer,
    )
        .into_response())
}

pub async fn unpublish(
    State(state): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    room_name(&room)?;
    if state.rooms.leave(&room, &participant) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found("participant"))
    }
}

pub async fn room_participants(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    room_name(&room)?;
    let participants: Vec<_> = state
        .rooms
        .participants(&room)
        .into_iter()
        .map(|(id, name)| serde_json::json!({"id": id, "name": name}))
        .collect();
    Ok(Json(serde_json::json!({"room": room, "participants": participants})))
}
