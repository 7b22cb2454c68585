//! `GET` on a WHIP resource: whether the session still exists, so a publisher whose server restarted, or whose
//! participant was removed, learns it (404) and stops instead of sending into nothing.

use super::error::ApiError;
use super::extract::Path;
use super::room_join::room_name;
use super::AppState;
use crate::call::room::Via;
use axum::extract::State;
use axum::Json;

pub async fn session(
    State(state): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    room_name(&room)?;
    state
        .rooms
        .name_of(&room, &participant, Via::Whip)
        .map(|name| Json(serde_json::json!({"id": participant, "name": name})))
        .ok_or_else(|| ApiError::not_found("participant"))
}
