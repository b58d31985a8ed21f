//! Requests refused as HTTP before any route sees them: a request head that
//! does not parse, a URL over [`URL_LIMIT`], a head over [`HEAD_LIMIT`], an
//! HTTP/1.1 request without exactly one Host header. The server answers each
//! in the API's JSON under `/api/` and in plain text elsewhere.
use axum::http::StatusCode;

/// Longest request target (path and query) served: 414 beyond.
pub const URL_LIMIT: usize = 8192;
/// Longest request head (request line and header fields) served: 431 beyond.
pub const HEAD_LIMIT: usize = 64 * 1024;
/// Most header fields in one request: 431 beyond.
pub const MAX_HEADERS: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRequest {
    #[error("the request line is not `METHOD /path HTTP/1.1`: check the method and version")]
    InvalidRequestLine,
    #[error("the request target has a byte that is not allowed in a URL: percent-encode it")]
    InvalidTarget,
    #[error("the request target is longer than {limit} bytes: shorten the URL")]
    TargetTooLong { limit: usize },
    #[error("a header field is malformed: check its name and value")]
    InvalidHeader,
    #[error("the request head is longer than {limit} bytes: send fewer or shorter header fields")]
    HeadTooLarge { limit: usize },
    #[error("the request has more than {limit} header fields: send fewer")]
    TooManyHeaders { limit: usize },
    #[error("HTTP/1.1 request without a Host header: send one")]
    MissingHost,
    #[error("{count} Host headers: send exactly one")]
    DuplicateHost { count: usize },
}

impl MalformedRequest {
    pub fn status(&self) -> StatusCode {
        match self {
            MalformedRequest::TargetTooLong { .. } => StatusCode::URI_TOO_LONG,
            MalformedRequest::HeadTooLarge { .. } | MalformedRequest::TooManyHeaders { .. } => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Whether a request for `path` is answered by the JSON API (its errors
/// included). Absolute-form targets (`http://host/api/...`) count by their path.
pub fn is_api_path(target: &[u8]) -> bool {
    let path = match target.windows(3).position(|w| w == b"://") {
        Some(scheme_end) if target[..scheme_end].iter().all(u8::is_ascii_alphabetic) => {
            let authority = &target[scheme_end + 3..];
            let path_start = authority
                .iter()
                .position(|&b| b == b'/')
                .unwrap_or(authority.len());
            &authority[path_start..]
        }
        _ => target,
    };
    path == b"/api" || path.starts_with(b"/api/") || path.starts_with(b"/api?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_by_prefix_and_in_absolute_form() {
        for api in [
            "/api",
            "/api/",
            "/api/v1/maps?x=\"",
            "/api?x",
            "http://host:9/api/v1/<",
            "HTTPS://h/api",
        ] {
            assert!(is_api_path(api.as_bytes()), "{api}");
        }
        for other in [
            "/",
            "/apis",
            "/metrics?p=/api/",
            "api/v1",
            "http://host",
            "http://api/x",
            "",
        ] {
            assert!(!is_api_path(other.as_bytes()), "{other}");
        }
    }
}
