//! axum's `Path`, `Query` and body extractors with their rejections turned into [`ApiError`], so a bad path,
//! query string or an over-long body gets the same JSON `{"error","field"}` body as every other error instead
//! of axum's plain text.

use super::error::ApiError;
use super::MAX_BODY_BYTES;
use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Path parameters; a parameter that is not UTF-8 or not of its type is a 400 naming the parameter.
pub struct Path<T>(pub T);

/// The query string; one that does not parse is a 400 with field `query`.
pub struct Query<T>(pub T);

/// The whole request body; beyond [`MAX_BODY_BYTES`] it is a 413 with field `body`.
pub struct Body(pub Bytes);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_error(rejection)),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_error(rejection)),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) => Err(body_error(rejection)),
        }
    }
}

fn path_error(rejection: PathRejection) -> ApiError {
    let status = rejection.status();
    let field = match &rejection {
        PathRejection::FailedToDeserializePathParams(err) => match err.kind() {
            ErrorKind::InvalidUtf8InPathParam { key }
            | ErrorKind::ParseErrorAtKey { key, .. }
            | ErrorKind::DeserializeError { key, .. } => key.clone(),
            _ => "path".to_string(),
        },
        _ => "path".to_string(),
    };
    ApiError::with_status(status, Some(field), rejection.body_text())
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::with_status(rejection.status(), Some("query".into()), rejection.body_text())
}

/// The body-size limit ([`axum::extract::DefaultBodyLimit`]) shows up here as a 413 while the body is read.
pub fn body_error(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("request body larger than {MAX_BODY_BYTES} bytes")
    } else {
        rejection.body_text()
    };
    ApiError::with_status(status, Some("body".into()), message)
}
