//! WHIP ingest into the built-in rooms (RFC 9725): an SDP offer in, `201` with the answer and a `Location`.

use super::error::ApiError;
use super::extract::{Path, Query};
use super::room_join::{admit, retry_after_s, room_name, Client};
use super::AppState;
use crate::call::decode::SUPPORTED_ENCODINGS;
use crate::call::ice_restart::RestartError;
use crate::call::room::{JoinError, Patched, TrickleRefusal, Via};
use crate::call::sdp_offer;
use crate::call::trickle::{self, TrickleError};
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

/// The body of a WHIP or WHEP request as an SDP offer's text: `application/sdp`, not too large, UTF-8, `v=0`.
pub fn sdp_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<&'a str, ApiError> {
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

/// Checks the offer before any pipeline exists, so a useless offer is a quick 4xx rather than a hang.
fn check_offer(headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let offer = sdp_body(headers, body)?;
    // Counted on the parsed offer, the way webrtcbin will read it: each section costs threads and sockets.
    let encodings = sdp_offer::inspect(offer, MAX_MEDIA_SECTIONS)
        .map_err(|e| ApiError::bad_request("sdp", e.to_string()))?
        .encodings;
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
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let origin = admit(&state, client, &room)?;
    let offer = check_offer(&headers, &body)?;
    let name = query.name.as_deref().and_then(crate::call::display_name::clean);
    let joined = state
        .rooms
        .join(&room, origin, name, &offer)
        .await
        .map_err(|e| match e {
            // Waiting joins connect or are removed within the media timeout.
            JoinError::Busy(full) => {
                ApiError::unavailable(full.to_string(), retry_after_s(state.rooms.settings().media_timeout))
            }
            JoinError::Failed(_) => ApiError::bad_request("sdp", e.to_string()),
        })?;
    let location = format!("/v1/rooms/{room}/whip/{}", joined.id);
    let mut response = (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_string()),
            (header::LOCATION, location),
            (header::ETAG, joined.etag),
        ],
        joined.answer,
    )
        .into_response();
    add_ice_server_links(&state, &joined.id, &mut response);
    Ok(response)
}

/// RFC 9725 §4.6: the ICE servers the client may use, one `Link` each; TURN ones with a credential made for
/// `session`. WHIP and WHEP answers alike.
pub fn add_ice_server_links(state: &AppState, session: &str, response: &mut Response) {
    let turn = state
        .turn
        .iter()
        .flat_map(|t| t.links(session, crate::wall_clock::now_ms() / 1000));
    for link in state.ice_servers.iter().map(|s| ice_server_link(s)).chain(turn) {
        if let Ok(link) = header::HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, link);
        }
    }
}

/// `stun://host:port` (GStreamer's form, as configured) as a `Link` to the RFC 7064 URI `stun:host:port`.
fn ice_server_link(server: &str) -> String {
    let uri = server.replacen("://", ":", 1);
    format!("<{uri}>; rel=\"ice-server\"")
}

/// Trickle ICE and ICE restarts (RFC 9725 §4.3, §4.4): candidates the client found after its offer, or its new
/// ICE credentials, as an SDP fragment. A restart is answered `200` with our new credentials and a new `ETag`.
pub async fn trickle(
    State(state): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    room_name(&room)?;
    let fragment = read_fragment(&headers, &body)?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let patched = state
        .rooms
        .patch(&room, &participant, if_match, &fragment)
        .map_err(|e| trickle_refused(e, "participant"))?;
    Ok(match patched {
        Patched::Trickled(_) => StatusCode::NO_CONTENT.into_response(),
        Patched::Restarted { fragment, etag } => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/trickle-ice-sdpfrag".to_string()),
                (header::ETAG, etag),
            ],
            fragment,
        )
            .into_response(),
    })
}

/// A trickle PATCH's body: an `application/trickle-ice-sdpfrag` fragment (WHIP and WHEP alike).
pub fn read_fragment(headers: &HeaderMap, body: &Bytes) -> Result<trickle::Fragment, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/trickle-ice-sdpfrag") {
        return Err(ApiError::unsupported_media(
            "Content-Type must be application/trickle-ice-sdpfrag",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("sdpfrag", "fragment is not UTF-8 text"))?;
    trickle::parse(text).map_err(|e| ApiError::bad_request("sdpfrag", e.to_string()))
}

/// Why a trickle PATCH was refused, as the API says it; `session` names what was not found.
pub fn trickle_refused(refusal: TrickleRefusal, session: &str) -> ApiError {
    match refusal {
        TrickleRefusal::NotFound => ApiError::not_found(session),
        e @ TrickleRefusal::PreconditionRequired => ApiError::with_status(
            StatusCode::PRECONDITION_REQUIRED,
            Some("If-Match".into()),
            e.to_string(),
        ),
        e @ TrickleRefusal::PreconditionFailed => {
            ApiError::with_status(StatusCode::PRECONDITION_FAILED, Some("If-Match".into()), e.to_string())
        }
        TrickleRefusal::Refused(e @ TrickleError::IceRestart) => {
            ApiError::with_status(StatusCode::NOT_IMPLEMENTED, Some("sdpfrag".into()), e.to_string())
        }
        TrickleRefusal::Refused(e @ TrickleError::Restart(RestartError::NoTransport)) => {
            ApiError::internal(e.to_string())
        }
        TrickleRefusal::Refused(e) => ApiError::bad_request("sdpfrag", e.to_string()),
    }
}

pub async fn unpublish(
    State(state): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    room_name(&room)?;
    if state.rooms.leave(&room, &participant, Via::Whip) {
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
