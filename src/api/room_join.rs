//! What every request about a built-in room checks first, whatever the way in (WHIP, plain RTP): the room's name,
//! and for a join the client's request rate.

use super::error::ApiError;
use super::AppState;
use crate::broadcast::spec::validate_room_name;
use axum::extract::ConnectInfo;
use axum::Extension;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The client's address when the server knows it (a socket server; in-process tests have none).
pub type Client = Option<Extension<ConnectInfo<SocketAddr>>>;

/// A 400 naming `room` unless it is a valid room name.
pub fn room_name(room: &str) -> Result<(), ApiError> {
    validate_room_name(room).map_err(|m| ApiError::bad_request("room", m))
}

/// Whole seconds to wait, at least one (the unit of `Retry-After`).
pub fn retry_after_s(wait: Duration) -> u32 {
    u32::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Lets a join of `room` go ahead: one request from the client's allowance (setting `whip_requests_per_s`, which
/// every way of joining shares, since each costs a pipeline), then the room's name. The client's address, when
/// known.
pub fn admit(state: &AppState, client: Client, room: &str) -> Result<Option<IpAddr>, ApiError> {
    let origin = take_allowance(state, client)?;
    room_name(room)?;
    Ok(origin)
}

/// One request from the client's allowance (`whip_requests_per_s`): every request that costs a pipeline (a
/// participant's join, a WHEP viewer) draws on it. The client's address, when known.
pub fn take_allowance(state: &AppState, client: Client) -> Result<Option<IpAddr>, ApiError> {
    let origin = client.map(|Extension(ConnectInfo(address))| address.ip());
    if let Some(origin) = origin {
        state.whip_rate.take(origin).map_err(|wait| {
            ApiError::too_many_requests(
                "too many join requests from this address (setting `whip_requests_per_s`)",
                retry_after_s(wait),
            )
        })?;
    }
    Ok(origin)
}
