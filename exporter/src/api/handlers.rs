//! One handler per endpoint: parse the parameters (a 400 costs no kernel
//! read), collect through the shared single flight (`crate::http`), select, answer. The
//! `#[utoipa::path]` attributes are the OpenAPI document of each endpoint.
use axum::{
    extract::{rejection::PathRejection, Path, RawQuery, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};

use super::{
    body::{EventsPage, LinkDetail, MapDetail, NodeDetail, Owners, Paged, ProgramDetail},
    error::{ApiError, ErrorBody},
    query::{
        parse_no_query, parse_path_id, EventsParams, EventsQuery, LinkListParams, ListQuery,
        MapListParams, ProgramListParams,
    },
    respond, respond_json,
};
use crate::{
    collect::Collection,
    http::{CollectState, HttpError},
    inventory::{Collector, Inventory, Link, Map, Program},
};

/// A collection for this request; 503 when `needed` failed in it.
async fn collect(
    state: &CollectState,
    headers: &HeaderMap,
    needed: Collector,
) -> Result<std::sync::Arc<Collection>, ApiError> {
    let collection = state.collect(headers).await?;
    if let Some(failed) = collection
        .inventory
        .errors
        .iter()
        .find(|e| e.collector == needed)
    {
        return Err(ApiError::CollectorFailed {
            collector: needed,
            message: failed.message.clone(),
        });
    }
    Ok(collection)
}

fn page<T: Clone>(inventory: &Inventory, query: &ListQuery, items: Vec<&T>) -> Paged<T> {
    let (total, items) = query.page(items.into_iter());
    Paged {
        collected_at: inventory.collected_at,
        total: total as u64,
        limit: query.limit,
        offset: query.offset,
        items,
        errors: inventory.errors.clone(),
    }
}

fn not_found(kind: &'static str, id: u32, inventory: &Inventory) -> ApiError {
    ApiError::NotFound {
        kind,
        id,
        collected_at: inventory.collected_at.to_rfc3339(),
    }
}

/// The whole inventory: the same document as `dump --format json`.
#[utoipa::path(get, path = "/api/v1/inventory", tag = "inventory",
    responses(
        (status = 200, description = "The inventory", body = Inventory),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 503, description = "Not ready or the collection failed", body = ErrorBody),
    ))]
pub async fn inventory(
    State(state): State<CollectState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    parse_no_query(raw.as_deref())?;
    let collection = state.collect(&headers).await?;
    let collected_at = collection.inventory.collected_at;
    // Serialised once per collection and shared, like the /metrics page.
    let json = collection
        .inventory_json()
        .await
        .map_err(|e| HttpError::Internal(Box::new(e)))?;
    respond_json(collected_at, json)
}

/// The node and its BPF posture, read in this collection.
#[utoipa::path(get, path = "/api/v1/node", tag = "node",
    responses(
        (status = 200, description = "The node and its posture", body = NodeDetail),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 503, description = "Not ready or the collection failed", body = ErrorBody),
    ))]
pub async fn node(
    State(state): State<CollectState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    parse_no_query(raw.as_deref())?;
    let collection = state.collect(&headers).await?;
    let inv = &collection.inventory;
    let detail = NodeDetail {
        collected_at: inv.collected_at,
        node: inv.node.clone(),
        errors: inv.errors.clone(),
    };
    respond(inv.collected_at, &detail)
}

/// Programs, filtered and paged, in id order.
#[utoipa::path(get, path = "/api/v1/programs", tag = "programs", params(ProgramListParams),
    responses(
        (status = 200, description = "One page of programs", body = Paged<Program>),
        (status = 400, description = "Unknown or invalid query parameter", body = ErrorBody),
        (status = 503, description = "Not ready or the program collector failed", body = ErrorBody),
    ))]
pub async fn programs(
    State(state): State<CollectState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(Collector::Programs, raw.as_deref())?;
    let collection = collect(&state, &headers, Collector::Programs).await?;
    let inv = &collection.inventory;
    let matching = inv
        .programs
        .iter()
        .filter(|p| {
            query.matches(p.id, &p.prog_type, Some(&p.name), None)
                && query.matches_owners(&p.holders.owners)
        })
        .collect();
    respond(inv.collected_at, &page(inv, &query, matching))
}

/// Maps, filtered and paged, in id order.
#[utoipa::path(get, path = "/api/v1/maps", tag = "maps", params(MapListParams),
    responses(
        (status = 200, description = "One page of maps", body = Paged<Map>),
        (status = 400, description = "Unknown or invalid query parameter", body = ErrorBody),
        (status = 503, description = "Not ready or the map collector failed", body = ErrorBody),
    ))]
pub async fn maps(
    State(state): State<CollectState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(Collector::Maps, raw.as_deref())?;
    let collection = collect(&state, &headers, Collector::Maps).await?;
    let inv = &collection.inventory;
    let matching = inv
        .maps
        .iter()
        .filter(|m| {
            query.matches(m.id, &m.map_type, Some(&m.name), None)
                && query.matches_owners(&m.holders.owners)
        })
        .collect();
    respond(inv.collected_at, &page(inv, &query, matching))
}

/// Links, filtered and paged, in id order. `name` matches the attached program's name.
#[utoipa::path(get, path = "/api/v1/links", tag = "links", params(LinkListParams),
    responses(
        (status = 200, description = "One page of links", body = Paged<Link>),
        (status = 400, description = "Unknown or invalid query parameter", body = ErrorBody),
        (status = 503, description = "Not ready or the link collector failed", body = ErrorBody),
    ))]
pub async fn links(
    State(state): State<CollectState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(Collector::Links, raw.as_deref())?;
    let collection = collect(&state, &headers, Collector::Links).await?;
    let inv = &collection.inventory;
    let matching = inv
        .links
        .iter()
        .filter(|l| {
            let prog_name = inv.program(l.prog_id).map(|p| p.name.as_str());
            query.matches(l.id, &l.link_type, prog_name, Some(l.prog_id))
                && query.matches_owners(&l.holders.owners)
        })
        .collect();
    respond(inv.collected_at, &page(inv, &query, matching))
}

/// One program, its maps expanded and the links that attach it.
#[utoipa::path(get, path = "/api/v1/programs/{id}", tag = "programs",
    params(("id" = u64, Path, description = "Program id", minimum = 0, maximum = 4294967295_u64)),
    responses(
        (status = 200, description = "The program and its relations", body = ProgramDetail),
        (status = 400, description = "The id is not a u32, or a query parameter was given", body = ErrorBody),
        (status = 404, description = "No program with this id", body = ErrorBody),
        (status = 503, description = "Not ready or the program collector failed", body = ErrorBody),
    ))]
pub async fn program(
    State(state): State<CollectState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_path_id(id)?;
    parse_no_query(raw.as_deref())?;
    let collection = collect(&state, &headers, Collector::Programs).await?;
    let inv = &collection.inventory;
    let program = inv
        .program(id)
        .ok_or_else(|| not_found("program", id, inv))?;
    let mut map_ids = program.map_ids.clone();
    map_ids.sort_unstable();
    map_ids.dedup();
    let detail = ProgramDetail {
        collected_at: inv.collected_at,
        program: program.clone(),
        maps: map_ids
            .iter()
            .filter_map(|&m| inv.map(m))
            .cloned()
            .collect(),
        links: inv
            .links
            .iter()
            .filter(|l| l.prog_id == id)
            .cloned()
            .collect(),
        errors: inv.errors.clone(),
    };
    respond(inv.collected_at, &detail)
}

/// One map and the programs that use it.
#[utoipa::path(get, path = "/api/v1/maps/{id}", tag = "maps",
    params(("id" = u64, Path, description = "Map id", minimum = 0, maximum = 4294967295_u64)),
    responses(
        (status = 200, description = "The map and the programs using it", body = MapDetail),
        (status = 400, description = "The id is not a u32, or a query parameter was given", body = ErrorBody),
        (status = 404, description = "No map with this id", body = ErrorBody),
        (status = 503, description = "Not ready or the map collector failed", body = ErrorBody),
    ))]
pub async fn map(
    State(state): State<CollectState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_path_id(id)?;
    parse_no_query(raw.as_deref())?;
    let collection = collect(&state, &headers, Collector::Maps).await?;
    let inv = &collection.inventory;
    let map = inv.map(id).ok_or_else(|| not_found("map", id, inv))?;
    let detail = MapDetail {
        collected_at: inv.collected_at,
        map: map.clone(),
        programs: inv
            .programs
            .iter()
            .filter(|p| p.map_ids.contains(&id))
            .cloned()
            .collect(),
        errors: inv.errors.clone(),
    };
    respond(inv.collected_at, &detail)
}

/// One link and the program it attaches.
#[utoipa::path(get, path = "/api/v1/links/{id}", tag = "links",
    params(("id" = u64, Path, description = "Link id", minimum = 0, maximum = 4294967295_u64)),
    responses(
        (status = 200, description = "The link and its program", body = LinkDetail),
        (status = 400, description = "The id is not a u32, or a query parameter was given", body = ErrorBody),
        (status = 404, description = "No link with this id", body = ErrorBody),
        (status = 503, description = "Not ready or the link collector failed", body = ErrorBody),
    ))]
pub async fn link(
    State(state): State<CollectState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_path_id(id)?;
    parse_no_query(raw.as_deref())?;
    let collection = collect(&state, &headers, Collector::Links).await?;
    let inv = &collection.inventory;
    let link = inv.link(id).ok_or_else(|| not_found("link", id, inv))?;
    let detail = LinkDetail {
        collected_at: inv.collected_at,
        link: link.clone(),
        program: inv.program(link.prog_id).cloned(),
        errors: inv.errors.clone(),
    };
    respond(inv.collected_at, &detail)
}

/// Owner groups (comm, container, pod) with the objects each holds.
#[utoipa::path(get, path = "/api/v1/owners", tag = "owners",
    responses(
        (status = 200, description = "Every owner group", body = Owners),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 503, description = "Not ready or the collection failed", body = ErrorBody),
    ))]
pub async fn owners(
    State(state): State<CollectState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    parse_no_query(raw.as_deref())?;
    let collection = state.collect(&headers).await?;
    let inv = &collection.inventory;
    let body = Owners {
        collected_at: inv.collected_at,
        owners_known: inv.owners_known(),
        items: inv.owner_groups(),
        errors: inv.errors.clone(),
    };
    respond(inv.collected_at, &body)
}

/// BPF program loads and unloads since `since`, oldest first, from the
/// events buffer (no kernel read): who loaded what, when.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsParams),
    responses(
        (status = 200, description = "Events after `since`", body = EventsPage),
        (status = 400, description = "Unknown or invalid query parameter", body = ErrorBody),
        (status = 503, description = "Events are off, refused by the kernel or still starting", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<CollectState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = EventsQuery::parse(raw.as_deref())?;
    let log = state.events().ok_or(ApiError::EventsUnavailable)?;
    let page = log.page(query.since, query.limit as usize, &query.filter);
    let body = EventsPage {
        items: page.items,
        next_since: page.next_since,
        dropped: page.dropped,
        lost: page.lost,
    };
    let json = serde_json::to_vec(&body).map_err(ApiError::Encode)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response())
}
