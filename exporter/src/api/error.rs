//! Errors of the JSON API: each variant knows its HTTP status and a stable
//! machine-readable code, and becomes `{"error": {"code", "message"}}`.
//! Bad input is always a 4xx; only the server's own state gives a 5xx.
use axum::{
    http::{header::ALLOW, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    http::{
        error_response,
        malformed::MalformedRequest,
        rejections::{self, Reason},
        HttpError,
    },
    inventory::Collector,
};

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For humans: what was wrong and what to do instead.
    pub message: String,
}

/// Stable error codes; clients match on these, not on the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A query parameter the endpoint does not accept.
    UnknownParameter,
    /// A parameter (query or path) with a value out of range or of the wrong kind.
    InvalidParameter,
    /// No object with this id in the current collection.
    NotFound,
    /// No such API route.
    RouteNotFound,
    /// The route exists, the method does not (only GET and HEAD are served).
    MethodNotAllowed,
    /// The exporter cannot answer now (iterators loading, collection timed
    /// out or failed, too many requests): retry after `Retry-After`.
    Unavailable,
    /// The request itself is not valid HTTP: a URL byte outside RFC 3986, a
    /// URL or head over the limits (status 414 or 431), an HTTP/1.1 request
    /// without exactly one Host header.
    MalformedRequest,
    /// A bug in the exporter.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown query parameter `{name}`: this endpoint accepts {accepted}")]
    UnknownParameter { name: String, accepted: String },
    #[error("query parameter `{name}` is given more than once: give it once")]
    DuplicateParameter { name: String },
    #[error("invalid value {value:?} for `{name}`: {reason}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("malformed query string: {0}")]
    MalformedQuery(String),
    #[error("no {kind} with id {id} in the collection of {collected_at}")]
    NotFound {
        kind: &'static str,
        id: u32,
        collected_at: String,
    },
    #[error("no API route {path}: see /api/v1/openapi.json")]
    RouteNotFound { path: String },
    #[error("method {method} is not allowed here: use GET")]
    MethodNotAllowed { method: String },
    #[error("the {} collector failed in this collection: {message}", collector.as_str())]
    CollectorFailed {
        collector: Collector,
        message: String,
    },
    #[error("BPF load/unload events are not available: switched off (--no-events), refused by the kernel (see the start-up log), or still starting")]
    EventsUnavailable,
    #[error(transparent)]
    Malformed(#[from] MalformedRequest),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("encoding the response failed: {0}")]
    Encode(serde_json::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownParameter { .. }
            | ApiError::DuplicateParameter { .. }
            | ApiError::InvalidParameter { .. }
            | ApiError::MalformedQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } | ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::CollectorFailed { .. } | ApiError::EventsUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Malformed(e) => e.status(),
            ApiError::Http(e) => e.status(),
            ApiError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::UnknownParameter { .. } => ErrorCode::UnknownParameter,
            ApiError::DuplicateParameter { .. }
            | ApiError::InvalidParameter { .. }
            | ApiError::MalformedQuery(_) => ErrorCode::InvalidParameter,
            ApiError::NotFound { .. } => ErrorCode::NotFound,
            ApiError::RouteNotFound { .. } => ErrorCode::RouteNotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::CollectorFailed { .. } | ApiError::EventsUnavailable => {
                ErrorCode::Unavailable
            }
            ApiError::Malformed(_) => ErrorCode::MalformedRequest,
            ApiError::Http(_) | ApiError::Encode(_) => match self.status() {
                StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
                _ => ErrorCode::Internal,
            },
        }
    }
}

impl ApiError {
    /// What the answer's body says.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let reason = match &self {
            ApiError::Http(e) => e.reason(),
            ApiError::CollectorFailed { .. } => Reason::CollectionFailed,
            ApiError::EventsUnavailable => Reason::NotLoaded,
            ApiError::Encode(_) => Reason::Internal,
            _ => Reason::InvalidRequest,
        };
        rejections::record(reason, status, &self);
        let mut response = error_response(status, axum::Json(self.body()));
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}
