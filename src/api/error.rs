//! The one error type of the HTTP API: always a JSON body `{"error": "...", "field": "..."}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    /// Seconds a refused caller should wait before trying again (503 `Retry-After`).
    pub retry_after_s: Option<u32>,
}

impl ApiError {
    pub fn with_status(status: StatusCode, field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field,
            retry_after_s: None,
        }
    }

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

/// Longest plain-text error body turned into JSON; axum's own rejection texts are a line or two.
const MAX_PLAIN_ERROR_BYTES: usize = 4096;

/// The safety net behind [`super::extract`]: an error answer that is not JSON (a rejection from an extractor
/// we do not wrap, `405 Method Not Allowed`, a body cut off by the size limit before a handler ran) becomes the
/// JSON `{"error","field"}` body, keeping the status and headers (`Allow`, `WWW-Authenticate`).
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let field = (status == StatusCode::PAYLOAD_TOO_LARGE).then(|| "body".to_string());
    let json = ApiError::with_status(status, field, message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, json.into_body())
}
