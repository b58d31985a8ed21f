//! The answers to requests refused as malformed HTTP
//! ([`MalformedRequest`]): the API's JSON error under `/api/`, plain text
//! elsewhere, counted as `invalid_request`. The same answer is sent by the
//! connection (for a head hyper would refuse, see `connections::head`) and
//! by [`require_one_host`], the router's check of the Host header.
use std::fmt::Write as _;

use axum::{
    extract::Request,
    http::{
        header::{CACHE_CONTROL, CONTENT_TYPE, HOST},
        StatusCode, Version,
    },
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    api::ApiError,
    http::{
        malformed::{is_api_path, MalformedRequest},
        rejections::{self, Reason},
    },
};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// A refusal's status, content type and body.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Refusal {
    /// Counts the refusal and makes its answer for a request to `target`.
    pub fn new(target: &[u8], error: MalformedRequest) -> Self {
        let status = error.status();
        rejections::record(Reason::InvalidRequest, status, &error);
        let text = |error: &dyn std::fmt::Display| Refusal {
            status,
            content_type: TEXT,
            body: format!("{error}\n").into_bytes(),
        };
        if !is_api_path(target) {
            return text(&error);
        }
        let error = ApiError::from(error);
        match serde_json::to_vec(&error.body()) {
            Ok(body) => Refusal {
                status,
                content_type: JSON,
                body,
            },
            // Strings and an enum always encode; text rather than nothing.
            Err(_) => text(&error),
        }
    }

    fn is_json(&self) -> bool {
        self.content_type == JSON
    }

    /// The answer as HTTP/1.1 bytes, closing the connection; no body when
    /// answering a HEAD request.
    pub fn to_http1(&self, head_request: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            self.status.as_str(),
            self.status.canonical_reason().unwrap_or(""),
            self.content_type,
            self.body.len(),
        );
        if self.is_json() {
            head.push_str("cache-control: no-store\r\n");
        }
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "connection: close\r\ndate: {}\r\n\r\n",
            chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT")
        );
        let mut bytes = head.into_bytes();
        if !head_request {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let json = self.is_json();
        let mut response =
            (self.status, [(CONTENT_TYPE, self.content_type)], self.body).into_response();
        if json {
            response.headers_mut().insert(
                CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
        }
        response
    }
}

/// RFC 9112 section 3.2: an HTTP/1.1 request has exactly one Host header (a
/// 400 otherwise); HTTP/1.0 may omit it, and never repeats it.
pub async fn require_one_host(request: Request, next: Next) -> Response {
    let count = request.headers().get_all(HOST).iter().count();
    let error = match count {
        0 if request.version() >= Version::HTTP_11 => MalformedRequest::MissingHost,
        0 | 1 => return next.run(request).await,
        count => MalformedRequest::DuplicateHost { count },
    };
    let target = request
        .uri()
        .path_and_query()
        .map_or(request.uri().path(), |target| target.as_str());
    Refusal::new(target.as_bytes(), error).into_response()
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::server::{app, AppState, ServerConfig};

    async fn healthz(version: Version, hosts: &[&str]) -> (StatusCode, String) {
        let mut request = Request::get("/healthz").version(version);
        for host in hosts {
            request = request.header(HOST, *host);
        }
        let response = app(AppState::new(ServerConfig::default()))
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn http_1_1_needs_one_host_header_and_http_1_0_none() {
        let ok = (StatusCode::OK, "ok\n".to_owned());
        let bad = |message: &str| (StatusCode::BAD_REQUEST, format!("{message}\n"));
        let missing = bad("HTTP/1.1 request without a Host header: send one");
        let twice = bad("2 Host headers: send exactly one");
        assert_eq!(healthz(Version::HTTP_11, &["a"]).await, ok);
        assert_eq!(healthz(Version::HTTP_11, &[]).await, missing);
        assert_eq!(healthz(Version::HTTP_11, &["a", "b"]).await, twice);
        assert_eq!(healthz(Version::HTTP_10, &[]).await, ok);
        assert_eq!(healthz(Version::HTTP_10, &["a", "a"]).await, twice);
    }

    #[test]
    fn answers_are_json_under_the_api_and_text_elsewhere() {
        let api = Refusal::new(b"/api/v1/<", MalformedRequest::InvalidTarget);
        let message =
            "the request target has a byte that is not allowed in a URL: percent-encode it";
        let json = format!(r#"{{"error":{{"code":"malformed_request","message":"{message}"}}}}"#);
        assert_eq!(
            (api.status, api.content_type, api.body.as_slice()),
            (StatusCode::BAD_REQUEST, JSON, json.as_bytes())
        );
        let bytes = String::from_utf8(api.to_http1(false)).unwrap();
        let (head, body) = bytes.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, json);
        let mut lines = head.lines();
        assert_eq!(lines.next(), Some("HTTP/1.1 400 Bad Request"));
        let fields: Vec<&str> = lines.collect();
        assert_eq!(
            fields[..4],
            [
                "content-type: application/json",
                &format!("content-length: {}", json.len()),
                "cache-control: no-store",
                "connection: close",
            ]
        );
        assert!(fields[4].starts_with("date: ") && fields[4].ends_with(" GMT"));
        assert!(api.to_http1(true).ends_with(b"\r\n\r\n"), "HEAD: no body");

        let plain = Refusal::new(b"/metrics", MalformedRequest::TargetTooLong { limit: 8192 });
        assert_eq!(
            (plain.status, plain.content_type, plain.body.as_slice()),
            (
                StatusCode::URI_TOO_LONG,
                TEXT,
                "the request target is longer than 8192 bytes: shorten the URL\n".as_bytes()
            )
        );
        assert!(plain
            .to_http1(false)
            .starts_with(b"HTTP/1.1 414 URI Too Long\r\n"));
    }
}
