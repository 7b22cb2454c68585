//! WHEP playback of a broadcast (RFC 9725's mirror for viewers): an SDP offer in, `201` with the answer and a
//! `Location` for the viewer, whose `DELETE` ends it. Guarded like the broadcast's HLS (`Access::Watch`), open to
//! pages on other origins like WHIP.

use super::error::ApiError;
use super::extract::Path;
use super::room_join::{retry_after_s, Client};
use super::AppState;
use crate::output::whep::ViewerError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

/// Larger than any offer a browser sends.
const MAX_SDP_BYTES: usize = 64 * 1024;
/// A full broadcast may have room again once a viewer leaves: worth a retry after this long.
const FULL_RETRY_AFTER_S: u32 = 10;

fn offer_text<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<&'a str, ApiError> {
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
    Ok(offer)
}

pub async fn view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let station = state
        .broadcasts
        .whep(&id)
        .ok_or_else(|| ApiError::not_found("whep output"))?;
    // Each viewer costs a pipeline, like a participant's join: the same allowance per client address.
    if let Some(Extension(ConnectInfo(address))) = client {
        state.whip_rate.take(address.ip()).map_err(|wait| {
            ApiError::too_many_requests(
                "too many requests from this address (setting `whip_requests_per_s`)",
                retry_after_s(wait),
            )
        })?;
    }
    let offer = offer_text(&headers, &body)?.to_string();
    let ice = state.rooms.settings().ice.clone();
    // On a task of its own: a client that drops the request mid-answer must not leave a viewer half made (its
    // place counted, its pipeline playing); the task finishes, and a viewer that never connects is let go later.
    let joined = tokio::spawn(async move { station.add_viewer(&offer, &ice).await })
        .await
        .map_err(|e| ApiError::internal(format!("answering a WHEP viewer: {e}")))?;
    let (viewer, answer) = joined.map_err(|e| match e {
        ViewerError::Closed => ApiError::not_found("whep output"),
        ViewerError::Full(_) => ApiError::unavailable(e.to_string(), FULL_RETRY_AFTER_S),
        ViewerError::Offer(_) => ApiError::bad_request("sdp", e.to_string()),
        ViewerError::Answer(_) => ApiError::internal(e.to_string()),
    })?;
    let mut response = (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_string()),
            (header::LOCATION, format!("/v1/broadcasts/{id}/whep/{viewer}")),
        ],
        answer,
    )
        .into_response();
    super::whip::add_ice_server_links(&state, &viewer, &mut response);
    Ok(response)
}

pub async fn stop(
    State(state): State<AppState>,
    Path((id, viewer)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let station = state
        .broadcasts
        .whep(&id)
        .ok_or_else(|| ApiError::not_found("whep output"))?;
    if station.remove_viewer(&viewer) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found("viewer"))
    }
}
