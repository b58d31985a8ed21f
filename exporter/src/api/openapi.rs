//! The OpenAPI 3 document of the JSON API, generated from the handlers'
//! `#[utoipa::path]` attributes and the inventory types' `ToSchema` derives,
//! so it cannot drift from the code. Built once, served as bytes.
use std::sync::OnceLock;

use axum::{
    body::Bytes,
    extract::RawQuery,
    http::header::CONTENT_TYPE,
    response::{IntoResponse, Response},
};
use utoipa::OpenApi;

use super::{error::ApiError, handlers, query::parse_no_query};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bpf-inventory-exporter JSON API",
        description = "Every BPF program, map and link on the host, read with BPF iterators at request time. \
            Each answer is one collection (`collected_at`, also in `X-Collected-At` and `Last-Modified`); \
            nothing is cached (`Cache-Control: no-store`). Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        handlers::inventory,
        handlers::programs,
        handlers::program,
        handlers::maps,
        handlers::map,
        handlers::links,
        handlers::link,
        handlers::owners,
        handlers::events,
    ),
    tags(
        (name = "inventory", description = "The whole snapshot"),
        (name = "programs", description = "BPF programs"),
        (name = "maps", description = "BPF maps"),
        (name = "links", description = "BPF links"),
        (name = "owners", description = "Processes, containers and pods holding BPF objects"),
        (name = "events", description = "BPF program loads and unloads as they happened, with who did it"),
    )
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/v1/openapi.json`.
pub async fn document(RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    parse_no_query(raw.as_deref())?;
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let bytes = match DOCUMENT.get() {
        Some(bytes) => bytes.clone(),
        None => {
            let bytes = Bytes::from(serde_json::to_vec(&openapi()).map_err(ApiError::Encode)?);
            DOCUMENT.get_or_init(|| bytes).clone()
        }
    };
    Ok(([(CONTENT_TYPE, "application/json")], bytes).into_response())
}
