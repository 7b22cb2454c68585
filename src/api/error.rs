//! The one error type of the HTTP API: always a JSON body `{"error": "...", "field": "..."}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    /// Seconds a refused caller should wait before trying again (`Retry-After` of a 503 or 429).
    pub retry_after_s: Option<u32>,
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field.into()),
            retry_after_s: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("no such {what}"),
            field: None,
            retry_after_s: None,
        }
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: message.into(),
            field: None,
            retry_after_s: None,
        }
    }

    /// No token or a wrong one. The message never echoes what was presented.
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or wrong bearer token".into(),
            field: None,
            retry_after_s: None,
        }
    }

    /// Beyond capacity now; worth trying again later.
    pub fn unavailable(message: impl Into<String>, retry_after_s: u32) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            field: None,
            retry_after_s: Some(retry_after_s),
        }
    }

    /// This client asked too often; it may try again after `retry_after_s`.
    pub fn too_many_requests(message: impl Into<String>, retry_after_s: u32) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            field: None,
            retry_after_s: Some(retry_after_s),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            field: None,
            retry_after_s: None,
        }
    }
}

impl From<crate::broadcast::spec::SpecError> for ApiError {
    fn from(err: crate::broadcast::spec::SpecError) -> Self {
        Self::bad_request(err.field, err.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(field) => serde_json::json!({"error": self.message, "field": field}),
            None => serde_json::json!({"error": self.message}),
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
