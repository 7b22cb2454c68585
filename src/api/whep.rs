//! WHEP playback of a broadcast (RFC 9725's mirror for viewers): an SDP offer in, `201` with the answer and a
//! `Location` for the viewer, whose `DELETE` ends it. Guarded like the broadcast's HLS (`Access::Watch`), open to
//! pages on other origins like WHIP.

use super::error::ApiError;
use super::extract::Path;
use super::room_join::{take_allowance, Client};
use super::AppState;
use crate::output::whep::ViewerError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// A full broadcast may have room again once a viewer leaves: worth a retry after this long.
const FULL_RETRY_AFTER_S: u32 = 10;

/// The running whep output of broadcast `id`, through which viewers join, trickle and leave.
fn station(state: &AppState, id: &str) -> Result<crate::output::whep::WhepStation, ApiError> {
    state
        .broadcasts
        .whep(id)
        .ok_or_else(|| ApiError::not_found("whep output"))
}

pub async fn view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let station = station(&state, &id)?;
    // Each viewer costs a pipeline, like a participant's join: the same allowance per client address.
    take_allowance(&state, client)?;
    let offer = super::whip::sdp_body(&headers, &body)?.to_string();
    let ice = state.rooms.settings().ice.clone();
    // On a task of its own: a client that drops the request mid-answer must not leave a viewer half made (its
    // place counted, its pipeline playing); the task finishes, and a viewer that never connects is let go later.
    let joined = tokio::spawn(async move { station.add_viewer(&offer, &ice).await })
        .await
        .map_err(|e| ApiError::internal(format!("answering a WHEP viewer: {e}")))?;
    let (viewer, answer, etag) = joined.map_err(|e| match e {
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
            (header::ETAG, etag),
        ],
        answer,
    )
        .into_response();
    super::whip::add_ice_server_links(&state, &viewer, &mut response);
    Ok(response)
}

/// Trickle ICE (RFC 9725 §4.3, as WHEP clients use it): candidates the viewer found after its offer.
pub async fn trickle(
    State(state): State<AppState>,
    Path((id, viewer)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let station = station(&state, &id)?;
    let fragment = super::whip::read_fragment(&headers, &body)?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    station
        .trickle(&viewer, if_match, &fragment)
        .map_err(|e| super::whip::trickle_refused(e, "viewer"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stop(
    State(state): State<AppState>,
    Path((id, viewer)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let station = station(&state, &id)?;
    if station.remove_viewer(&viewer) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found("viewer"))
    }
}
