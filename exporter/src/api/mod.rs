//! The JSON API under `/api/v1`: the inventory, lists with filters and
//! paging, one object with its relations, and the OpenAPI document generated
//! from these types. Every answer is JSON, errors included, and carries
//! `Cache-Control: no-store` and the collection time. Reads go through the
//! single flight of `crate::http::CollectState`, like `/metrics`: no kernel
//! read of its own. Depends on `crate::http`, never on the server mounting it.
use axum::{
    extract::{OriginalUri, Request},
    http::{
        header::{CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED},
        HeaderName, HeaderValue,
    },
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, MethodRouter},
    Router,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use tower_http::{compression::CompressionLayer, CompressionLevel};

use crate::http::{limit_in_flight, CollectState};

mod body;
mod error;
mod handlers;
mod openapi;
mod query;
mod stream;

pub use body::{EventsPage, LinkDetail, MapDetail, NodeDetail, Owners, Paged, ProgramDetail};
pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use openapi::openapi;
pub use query::{EventsQuery, ListQuery, DEFAULT_LIMIT, MAX_LIMIT};

/// The collection time of the answer, RFC 3339 with milliseconds (UTC).
pub const COLLECTED_AT_HEADER: &str = "x-collected-at";

/// The `/api/v1` routes, to merge into the server's router. Paths under
/// `/api/v1` that match no route are a JSON 404; other methods a JSON 405.
/// Answers are compressed when the client accepts gzip; every route sits
/// behind the in-flight limit shared with `/metrics` (a JSON 503 beyond it).
pub fn routes<S: Clone + Send + Sync + 'static>(state: CollectState) -> Router<S> {
    Router::new()
        .route("/api/v1/inventory", only_get(get(handlers::inventory)))
        .route("/api/v1/programs", only_get(get(handlers::programs)))
        .route("/api/v1/programs/{id}", only_get(get(handlers::program)))
        .route("/api/v1/maps", only_get(get(handlers::maps)))
        .route("/api/v1/maps/{id}", only_get(get(handlers::map)))
        .route("/api/v1/links", only_get(get(handlers::links)))
        .route("/api/v1/links/{id}", only_get(get(handlers::link)))
        .route("/api/v1/owners", only_get(get(handlers::owners)))
        .route("/api/v1/node", only_get(get(handlers::node)))
        .route("/api/v1/events", only_get(get(handlers::events)))
        .route(
            "/api/v1/events/stream",
            only_get(get(stream::events_stream)),
        )
        .route("/api/v1/openapi.json", only_get(get(openapi::document)))
        .route("/api/v1", any(route_not_found))
        .route("/api/v1/", any(route_not_found))
        .route("/api/v1/{*rest}", any(route_not_found))
        .layer(middleware::from_fn(no_store))
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limit_in_flight::<ApiError>,
        ))
        .with_state(state)
}

fn only_get(route: MethodRouter<CollectState>) -> MethodRouter<CollectState> {
    route.fallback(method_not_allowed)
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed {
        method: query::short(request.method().as_str()),
    }
}

async fn route_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::RouteNotFound {
        path: query::short(uri.path()),
    }
}

/// The inventory changes between any two reads: nothing may be cached.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON answer about the collection made at `collected_at`: the time goes
/// in `X-Collected-At` (RFC 3339) and `Last-Modified` (HTTP date, seconds).
fn respond<T: Serialize>(collected_at: DateTime<Utc>, body: &T) -> Result<Response, ApiError> {
    respond_json(
        collected_at,
        serde_json::to_vec(body).map_err(ApiError::Encode)?.into(),
    )
}

/// [`respond`] with the body already encoded.
fn respond_json(
    collected_at: DateTime<Utc>,
    json: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut response = ([(CONTENT_TYPE, "application/json")], json).into_response();
    let headers = response.headers_mut();
    let stamps = [
        (
            HeaderName::from_static(COLLECTED_AT_HEADER),
            collected_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
        (
            LAST_MODIFIED,
            collected_at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ),
    ];
    for (name, value) in stamps {
        // Both formats are plain ASCII, always a valid header value.
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
