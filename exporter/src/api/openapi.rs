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
use utoipa::{
    openapi::{
        schema::{ArrayItems, Object},
        RefOr, Schema,
    },
    Modify, OpenApi,
};

use super::{error::ApiError, handlers, query::parse_no_query, stream};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bpf-inventory-exporter JSON API",
        description = "Every BPF program, map and link on the host, read with BPF iterators at request time. \
            Each answer is one collection (`collected_at`, also in `X-Collected-At` and `Last-Modified`); \
            nothing is cached (`Cache-Control: no-store`). Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&MergeFlattened),
    paths(
        handlers::inventory,
        handlers::programs,
        handlers::program,
        handlers::maps,
        handlers::map,
        handlers::links,
        handlers::link,
        handlers::owners,
        handlers::node,
        handlers::events,
        stream::events_stream,
    ),
    tags(
        (name = "inventory", description = "The whole snapshot"),
        (name = "programs", description = "BPF programs"),
        (name = "maps", description = "BPF maps"),
        (name = "links", description = "BPF links"),
        (name = "owners", description = "Processes, containers and pods holding BPF objects"),
        (name = "node", description = "The node's BPF posture: sysctls, LSMs, lockdown, kernel config, bpffs mounts"),
        (name = "events", description = "BPF program loads and unloads as they happened, with who did it"),
    )
)]
struct ApiDoc;

/// A `#[serde(flatten)]` field (the `holders` of programs, maps and links)
/// comes out of utoipa's derive as an `allOf` of the flattened type's object
/// and the struct's own; serde writes one object, and so does the document:
/// each such `allOf` of inline objects, wherever it is (a component, or
/// inlined in one as `Page_Link`'s items), becomes the object it describes.
struct MergeFlattened;

impl Modify for MergeFlattened {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(merge_flattened);
        }
    }
}

fn merge_flattened(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => object.properties.values_mut().for_each(merge_flattened),
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                merge_flattened(items);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(merge_flattened),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(merge_flattened),
        Schema::AllOf(all) => {
            all.items.iter_mut().for_each(merge_flattened);
            if let Some(merged) = merged_object(&all.items) {
                *schema = Schema::Object(merged);
            }
        }
        _ => {}
    }
}

/// The struct's own object (the last item) with the properties and required
/// fields of the flattened ones; `None` unless every item is an inline object.
fn merged_object(items: &[RefOr<Schema>]) -> Option<Object> {
    let objects: Vec<&Object> = items
        .iter()
        .map(|item| match item {
            RefOr::T(Schema::Object(object)) => Some(object),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let (own, flattened) = objects.split_last()?;
    let mut merged = (*own).clone();
    for object in flattened {
        merged.properties.extend(object.properties.clone());
        merged.required.extend(object.required.iter().cloned());
    }
    Some(merged)
}

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
