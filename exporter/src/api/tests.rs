//! The API through the server's whole router (`server::app`), with `oneshot`
//! requests: no socket, no BPF; a fixed inventory behind the single flight.
//! Bodies are compared with the reviewed golden document of that inventory
//! (tests/golden/inventory.json), not with the serialiser the handlers use;
//! type names with the running kernel's uapi enums.
use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{
    collect::SingleFlight,
    server::{app, AppState, ServerConfig},
    testing::{sample_inventory, sample_inventory_with_error, FixedSource},
};

fn loaded(source: FixedSource) -> AppState {
    let state = AppState::new(ServerConfig::default());
    state.set_source(SingleFlight::new(Box::new(source)));
    state
}

/// The reviewed JSON document of [`sample_inventory`].
fn golden() -> Value {
    serde_json::from_str(include_str!("../../tests/golden/inventory.json"))
        .expect("tests/golden/inventory.json is JSON")
}

fn sample() -> AppState {
    loaded(FixedSource::new(sample_inventory()))
}

async fn request(state: &AppState, method: Method, uri: &str) -> (StatusCode, HeaderMap, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "exporter")
        .body(Body::empty())
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = parts
        .headers
        .get("content-type")
        .is_some_and(|t| t == "application/json");
    let value = if bytes.is_empty() {
        Value::Null
    } else if !json {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
        })
    };
    (parts.status, parts.headers, value)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, HeaderMap, Value) {
    request(state, Method::GET, uri).await
}

/// GET that must succeed; returns the body.
async fn ok(state: &AppState, uri: &str) -> Value {
    let (status, _, body) = get(state, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

fn ids(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect()
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[tokio::test]
async fn inventory_is_the_dump_document_with_collection_time_and_no_store() {
    let (status, headers, body) = get(&sample(), "/api/v1/inventory").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, golden());
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-collected-at"], "2026-01-02T03:05:00.000Z");
    assert_eq!(headers["last-modified"], "Fri, 02 Jan 2026 03:05:00 GMT");
    assert_eq!(body["collected_at"], "2026-01-02T03:05:00Z");
}

#[tokio::test]
async fn lists_are_in_id_order_with_total_and_paging() {
    let state = sample();
    let programs = ok(&state, "/api/v1/programs").await;
    assert_eq!(ids(&programs["items"]), [7, 21]);
    assert_eq!(
        (&programs["total"], &programs["limit"], &programs["offset"]),
        (&json!(2), &json!(100), &json!(0))
    );
    assert_eq!(programs["collected_at"], "2026-01-02T03:05:00Z");
    assert_eq!(programs["errors"], json!([]));
    assert_eq!(programs["items"], golden()["programs"]);
    assert_eq!(
        ids(&ok(&state, "/api/v1/maps").await["items"]),
        [11, 12, 13]
    );
    assert_eq!(ids(&ok(&state, "/api/v1/links").await["items"]), [3, 4]);

    let page = ok(&state, "/api/v1/maps?limit=1&offset=1").await;
    assert_eq!((ids(&page["items"]), &page["total"]), (vec![12], &json!(3)));
    assert_eq!((&page["limit"], &page["offset"]), (&json!(1), &json!(1)));
    let past_end = ok(&state, "/api/v1/maps?offset=3").await;
    assert_eq!(
        (ids(&past_end["items"]), &past_end["total"]),
        (vec![], &json!(3))
    );
}

#[tokio::test]
async fn filters_select_exactly() {
    let state = sample();
    for (uri, expected_ids, total) in [
        ("/api/v1/maps?type=hash", vec![11], 1),
        ("/api/v1/maps?type=ringbuf&name=vent", vec![12], 1),
        ("/api/v1/maps?type=hash&name=vent", vec![], 0),
        ("/api/v1/maps?name=e&limit=2", vec![11, 12], 3),
        ("/api/v1/maps?name=e&offset=2", vec![13], 3),
        ("/api/v1/maps?id=13", vec![13], 1),
        ("/api/v1/maps?id=14", vec![], 0),
        ("/api/v1/maps?type=unknown:99", vec![], 0),
        ("/api/v1/programs?type=tracing", vec![21], 1),
        ("/api/v1/programs?name=%22edge%22", vec![7], 1),
        ("/api/v1/links?type=xdp", vec![3], 1),
        ("/api/v1/links?prog_id=21", vec![4], 1),
        ("/api/v1/links?name=dump", vec![4], 1),
    ] {
        let body = ok(&state, uri).await;
        assert_eq!(
            (ids(&body["items"]), &body["total"]),
            (expected_ids, &json!(total)),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn owner_filters_select_objects_held_by_one_matching_process() {
    let state = sample();
    let uid = "0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    let id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let cases = [
        (format!("/api/v1/programs?pod_uid={uid}"), vec![7]),
        (format!("/api/v1/maps?pod_uid={uid}"), vec![11]),
        (format!("/api/v1/maps?container_id={id}"), vec![11]),
        ("/api/v1/maps?comm=bpftool".into(), vec![11]),
        ("/api/v1/maps?pid=100".into(), vec![13]),
        ("/api/v1/links?comm=bpf-inventory-e".into(), vec![4]),
        // comm and pid of two different processes: no single owner matches.
        ("/api/v1/maps?comm=bpftool&pid=4242".into(), vec![]),
        ("/api/v1/maps?comm=bpftoo".into(), vec![]),
    ];
    for (uri, want) in cases {
        assert_eq!(ids(&ok(&state, &uri).await["items"]), want, "{uri}");
    }
    let (status, _, body) = get(&state, "/api/v1/maps?pid=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn owners_lists_each_group_with_its_objects() {
    let body = ok(&sample(), "/api/v1/owners").await;
    assert_eq!(body["owners_known"], true);
    assert_eq!(body["collected_at"], "2026-01-02T03:05:00Z");
    let groups: Vec<(&str, Value, Value, Value, Value)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["comm"].as_str().unwrap(),
                g["pids"].clone(),
                g["program_ids"].clone(),
                g["map_ids"].clone(),
                g["link_ids"].clone(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (
                "bpf-inventory-e",
                json!([100]),
                json!([21]),
                json!([13]),
                json!([4])
            ),
            ("bpftool", json!([77]), json!([]), json!([11]), json!([])),
            (
                "edge-agent",
                json!([4242]),
                json!([7]),
                json!([11]),
                json!([])
            ),
        ]
    );
    let agent = &body["items"][2];
    assert_eq!(agent["pod_uid"], "0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(
        (&agent["programs_memory_bytes"], &agent["maps_memory_bytes"]),
        (&json!(4096), &json!(16000))
    );
}

#[tokio::test]
async fn details_expand_relations_both_ways() {
    let state = sample();
    let golden = golden();
    let program = ok(&state, "/api/v1/programs/7").await;
    assert_eq!(program["program"], golden["programs"][0]);
    assert_eq!(program["program"]["map_ids"], json!([11, 12]));
    assert_eq!(ids(&program["maps"]), [11, 12]);
    assert_eq!(program["maps"][1], golden["maps"][1]);
    assert_eq!(ids(&program["links"]), [3]);
    assert_eq!(program["collected_at"], "2026-01-02T03:05:00Z");

    let map = ok(&state, "/api/v1/maps/12").await;
    assert_eq!(map["map"], golden["maps"][1]);
    assert_eq!(ids(&map["programs"]), [7]);
    assert_eq!(
        ids(&ok(&state, "/api/v1/maps/13").await["programs"]),
        Vec::<u64>::new()
    );

    let link = ok(&state, "/api/v1/links/4").await;
    assert_eq!(link["link"], golden["links"][1]);
    assert_eq!(
        link["link"]["target"],
        json!({"kind": "name", "name": "bpf_map"})
    );
    assert_eq!(link["program"], golden["programs"][1]);
    let (status, headers, _) = get(&state, "/api/v1/links/4").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-collected-at"], "2026-01-02T03:05:00.000Z");
}

#[tokio::test]
async fn every_bad_request_is_a_json_4xx() {
    let state = sample();
    let bad = StatusCode::BAD_REQUEST;
    let not_found = StatusCode::NOT_FOUND;
    let cases = [
        ("/api/v1/programs/abc", bad, error("invalid_parameter", r#"invalid value "abc" for `id`: expected a decimal integer"#)),
        ("/api/v1/maps/-1", bad, error("invalid_parameter", r#"invalid value "-1" for `id`: expected a decimal integer"#)),
        ("/api/v1/links/4294967296", bad, error("invalid_parameter", r#"invalid value "4294967296" for `id`: expected at most 4294967295"#)),
        ("/api/v1/maps?limit=0", bad, error("invalid_parameter", r#"invalid value "0" for `limit`: expected an integer from 1 to 1000"#)),
        ("/api/v1/maps?limit=1001", bad, error("invalid_parameter", r#"invalid value "1001" for `limit`: expected an integer from 1 to 1000"#)),
        ("/api/v1/programs?offset=x", bad, error("invalid_parameter", r#"invalid value "x" for `offset`: expected a decimal integer"#)),
        ("/api/v1/maps?id=1&id=2", bad, error("invalid_parameter", "query parameter `id` is given more than once: give it once")),
        ("/api/v1/maps?colour=red", bad, error("unknown_parameter", "unknown query parameter `colour`: this endpoint accepts type, name, id, comm, pod_uid, container_id, pid, limit, offset")),
        ("/api/v1/programs?prog_id=7", bad, error("unknown_parameter", "unknown query parameter `prog_id`: this endpoint accepts type, name, id, comm, pod_uid, container_id, pid, limit, offset")),
        ("/api/v1/programs/7?verbose=1", bad, error("unknown_parameter", "unknown query parameter `verbose`: this endpoint accepts no query parameters")),
        ("/api/v1/inventory?pretty", bad, error("unknown_parameter", "unknown query parameter `pretty`: this endpoint accepts no query parameters")),
        ("/api/v1/programs/99", not_found, error("not_found", "no program with id 99 in the collection of 2026-01-02T03:05:00+00:00")),
        ("/api/v1/maps/7", not_found, error("not_found", "no map with id 7 in the collection of 2026-01-02T03:05:00+00:00")),
        ("/api/v1/links/11", not_found, error("not_found", "no link with id 11 in the collection of 2026-01-02T03:05:00+00:00")),
        ("/api/v1/nothing", not_found, error("route_not_found", "no API route /api/v1/nothing: see /api/v1/openapi.json")),
        ("/api/v1/programs/7/maps", not_found, error("route_not_found", "no API route /api/v1/programs/7/maps: see /api/v1/openapi.json")),
        ("/api/v1", not_found, error("route_not_found", "no API route /api/v1: see /api/v1/openapi.json")),
    ];
    for (uri, status, expected) in cases {
        let (got_status, headers, body) = get(&state, uri).await;
        assert_eq!((got_status, &body), (status, &expected), "{uri}");
        assert_eq!(headers["content-type"], "application/json", "{uri}");
        assert_eq!(headers["cache-control"], "no-store", "{uri}");
    }
    let (status, _, body) = get(&state, "/api/v1/maps?type=xdp").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (bad, &json!("invalid_parameter"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            r#"invalid value "xdp" for `type`: not a map type; known: unspec, hash, array,"#
        ),
        "{message}"
    );
    // Undecodable path segment: our shape, not axum's plain-text rejection.
    let (status, _, body) = get(&state, "/api/v1/programs/%FF").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (bad, &json!("invalid_parameter"))
    );
}

#[tokio::test]
async fn wrong_methods_are_a_json_405_and_head_is_served() {
    let state = sample();
    for (method, uri) in [
        (Method::POST, "/api/v1/programs"),
        (Method::DELETE, "/api/v1/maps/11"),
        (Method::PUT, "/api/v1/inventory"),
        (Method::PATCH, "/api/v1/openapi.json"),
    ] {
        let (status, headers, body) = request(&state, method.clone(), uri).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(headers["allow"], "GET, HEAD");
        assert_eq!(
            body,
            error(
                "method_not_allowed",
                &format!("method {method} is not allowed here: use GET")
            )
        );
    }
    let (status, headers, body) = request(&state, Method::HEAD, "/api/v1/maps").await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn unavailable_source_or_collector_is_a_json_503() {
    let not_loaded = AppState::new(ServerConfig::default());
    let (status, headers, body) = get(&not_loaded, "/api/v1/maps").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        body,
        error(
            "unavailable",
            "the BPF iterators are not loaded yet: retry shortly"
        )
    );

    let state = loaded(FixedSource::new(sample_inventory_with_error()));
    let (status, _, body) = get(&state, "/api/v1/links").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        error("unavailable", "the links collector failed in this collection: reading iterator dump_links failed: test")
    );
    // The other collectors still answer, and say which one failed.
    let program = ok(&state, "/api/v1/programs/7").await;
    assert_eq!(program["links"], json!([]));
    assert_eq!(
        program["errors"],
        json!([{"collector": "links", "message": "reading iterator dump_links failed: test"}])
    );
    assert_eq!(
        ok(&state, "/api/v1/inventory").await["errors"][0]["collector"],
        "links"
    );
}

/// The API and /metrics wait for the same kernel read.
#[tokio::test]
async fn api_and_metrics_share_one_collection() {
    let (source, release) = FixedSource::gated(sample_inventory());
    let calls = source.calls.clone();
    let state = loaded(source);
    let requests = [
        "/metrics",
        "/api/v1/maps",
        "/api/v1/programs/7",
        "/api/v1/inventory",
    ]
    .map(|uri| {
        let state = state.clone();
        tokio::spawn(async move { get(&state, uri).await.0 })
    });
    // Every request holds its place in flight, waiting on the one collection
    // (the only await on their way that pends), before it may finish.
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.collecting().requests_in_flight() < requests.len() {
        assert!(Instant::now() < deadline, "the requests never all started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    release.send(()).unwrap();
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn openapi_document_describes_every_route_and_the_real_field_names() {
    let (status, headers, doc) = get(&sample(), "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/api/v1/events",
            "/api/v1/events/stream",
            "/api/v1/inventory",
            "/api/v1/links",
            "/api/v1/links/{id}",
            "/api/v1/maps",
            "/api/v1/maps/{id}",
            "/api/v1/node",
            "/api/v1/owners",
            "/api/v1/programs",
            "/api/v1/programs/{id}"
        ]
    );
    let schemas = &doc["components"]["schemas"];
    // serde's renames are the schema's names (`type` and `self`, not the Rust
    // ones): each object's properties are the golden document's keys.
    let golden = golden();
    for (schema, object) in [
        ("Program", &golden["programs"][0]),
        ("Map", &golden["maps"][0]),
        ("Link", &golden["links"][0]),
        ("Inventory", &golden),
        ("Node", &golden["node"]),
        ("Posture", &golden["node"]["posture"]),
        ("BpfFsMount", &golden["node"]["posture"]["bpf_fs"][0]),
    ] {
        assert_eq!(
            keys(&schemas[schema]["properties"]),
            keys(object),
            "{schema}"
        );
    }
    let codes = &schemas["ErrorCode"]["enum"];
    assert_eq!(codes[0], "unknown_parameter");
}

#[path = "tests_node.rs"]
mod node;

fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// The `type` filter of each list: its OpenAPI enum holds the running
/// kernel's uapi names (bpftool's spelling), and the API accepts each.
#[tokio::test]
async fn type_filters_name_the_kernels_types() {
    let Some(btf) = crate::testing::btf::Btf::kernel("type_filters_name_the_kernels_types") else {
        return;
    };
    let state = sample();
    let doc = ok(&state, "/api/v1/openapi.json").await;
    for (list, enum_name, prefix) in [
        ("maps", "bpf_map_type", "BPF_MAP_TYPE_"),
        ("programs", "bpf_prog_type", "BPF_PROG_TYPE_"),
        ("links", "bpf_link_type", "BPF_LINK_TYPE_"),
    ] {
        let params = &doc["paths"][format!("/api/v1/{list}")]["get"]["parameters"];
        let type_param = params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "type")
            .unwrap_or_else(|| panic!("{list}: no type parameter"));
        let served: Vec<&str> = type_param["schema"]["anyOf"][0]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{list}: type has no enum: {type_param}"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let kernel = btf.uapi_names(enum_name, prefix);
        for (value, names) in &kernel {
            // Aliases (cgroup_storage_deprecated = cgroup_storage): one of them.
            let name = names
                .iter()
                .find(|n| served.contains(&n.as_str()))
                .unwrap_or_else(|| {
                    panic!("{list}: kernel value {value} {names:?} not in the enum {served:?}")
                });
            let body = ok(&state, &format!("/api/v1/{list}?type={name}")).await;
            assert!(body["items"].is_array(), "{list}?type={name}: {body}");
        }
        let kernel_names: Vec<&String> = kernel.values().flatten().collect();
        let newer: Vec<&&str> = served
            .iter()
            .filter(|s| !kernel_names.iter().any(|k| k == *s))
            .collect();
        if !newer.is_empty() {
            println!("{list}: names not in this kernel (a newer kernel's): {newer:?}");
        }
    }
}
