//! Router tests without a socket or a kernel: `oneshot` requests against
//! `app()` serving a fixed inventory.
use std::io::Read;

use axum::{body::Body, http::Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::http::SCRAPE_TIMEOUT_HEADER;
use crate::render::prometheus::Format;
use crate::testing::{sample_inventory, sample_inventory_with_error, FixedSource};
use axum::http::header::RETRY_AFTER;

fn loaded(source: FixedSource, config: ServerConfig) -> AppState {
    let state = AppState::new(config);
    state.set_source(SingleFlight::new(Box::new(source)));
    state
}

fn sample_state() -> AppState {
    loaded(
        FixedSource::new(sample_inventory()),
        ServerConfig::default(),
    )
}

async fn get(
    state: &AppState,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    // As hyper hands it over: an HTTP/1.1 request with its Host header.
    let mut request = Request::get(uri).header("host", "exporter");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, body)
}

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap()
}

#[tokio::test]
async fn healthz_answers_before_the_source_is_loaded() {
    let state = AppState::new(ServerConfig::default());
    let (status, _, body) = get(&state, "/healthz", &[]).await;
    assert_eq!((status, text(&body)), (StatusCode::OK, "ok\n"));
}

#[tokio::test]
async fn readyz_before_load_after_load_and_after_a_failed_collector() {
    let state = AppState::new(ServerConfig::default());
    let (status, _, body) = get(&state, "/readyz", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(&body).contains("not loaded"), "{}", text(&body));
    let (status, headers, _) = get(&state, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[RETRY_AFTER], "1");

    state.set_source(SingleFlight::new(Box::new(FixedSource::new(
        sample_inventory(),
    ))));
    let (status, _, body) = get(&state, "/readyz", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no collection yet");
    assert!(text(&body).contains("no collection"), "{}", text(&body));
    get(&state, "/metrics", &[]).await;
    let (status, _, body) = get(&state, "/readyz", &[]).await;
    assert_eq!((status, text(&body)), (StatusCode::OK, "ready\n"));

    let failing = loaded(
        FixedSource::new(sample_inventory_with_error()),
        ServerConfig::default(),
    );
    let (status, _, body) = get(&failing, "/metrics", &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a failed collector is not a failed page"
    );
    assert!(text(&body).contains("bpf_exporter_collector_success{collector=\"links\"} 0\n"));
    assert!(text(&body).contains("bpf_exporter_collector_errors_total{collector=\"links\"} 1\n"));
    assert!(
        text(&body).contains("bpf_map_entries{id=\"11\",name=\"fixture_hash\",type=\"hash\"} 42\n")
    );
    let (status, _, body) = get(&failing, "/readyz", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(text(&body), "not ready: collectors failed: links\n");
}

#[tokio::test]
async fn metrics_in_text_format_by_default() {
    let (status, headers, body) = get(&sample_state(), "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = text(&body);
    assert!(body.contains("# TYPE bpf_prog_runs_total counter\n"));
    assert!(
        body.contains("bpf_map_max_entries{id=\"11\",name=\"fixture_hash\",type=\"hash\"} 1000\n")
    );
    assert!(body.contains("bpf_exporter_collections_total 1\n"));
    assert!(!body.contains("# EOF"));
}

#[tokio::test]
async fn metrics_in_openmetrics_when_accepted() {
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (status, headers, body) = get(&sample_state(), "/metrics", &[("accept", accept)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = text(&body);
    assert!(body.ends_with("\n# EOF\n"));
    assert!(body.contains("# TYPE bpf_prog_runs counter\n"));
    assert!(body.contains("# TYPE bpf_map info\n"));
}

#[tokio::test]
async fn gzip_when_accepted() {
    let state = sample_state();
    let (_, _, plain) = get(&state, "/metrics", &[]).await;
    let (status, headers, compressed) =
        get(&state, "/metrics", &[("accept-encoding", "gzip")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut unpacked)
        .unwrap();
    // Same page except the two values of the collection (each request was a
    // new one) and the process values and rejection counts (other tests run
    // in this process at the same time).
    let normalise = |page: &[u8]| {
        text(page)
            .lines()
            .filter(|l| !l.starts_with("bpf_exporter_scrape_duration_seconds "))
            .filter(|l| !l.starts_with("process_") && !l.starts_with("bpf_exporter_http_"))
            .map(|l| l.replace("collections_total 2", "collections_total 1"))
            .collect::<Vec<_>>()
    };
    assert_eq!(normalise(&unpacked), normalise(&plain));
}

#[tokio::test]
async fn gzip_scrapes_of_one_collection_share_one_compression() {
    let (source, release) = FixedSource::gated(sample_inventory());
    let state = loaded(source, ServerConfig::default());
    let scrapes: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn({
                let state = state.clone();
                async move { get(&state, "/metrics", &[("accept-encoding", "gzip")]).await }
            })
        })
        .collect();
    let_tasks_run().await;
    release.send(()).unwrap();
    let mut bodies = Vec::new();
    for scrape in scrapes {
        let (status, headers, body) = scrape.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(headers["vary"], "accept, accept-encoding");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1], "byte-identical bodies");
    assert_eq!(
        state.0.pages.counts(),
        (1, 1),
        "one render, one compression"
    );
    crate::testing::released("pages dropped with the collection", || {
        state.0.pages.cached() == 0
    })
    .await;
    let mut unpacked = String::new();
    flate2::read::GzDecoder::new(bodies[0].as_slice())
        .read_to_string(&mut unpacked)
        .unwrap();
    assert!(unpacked.contains("bpf_exporter_collections_total 1\n"));

    // A client that does not accept gzip gets the text, still with Vary.
    release.send(()).unwrap();
    let (_, headers, body) = get(&state, "/metrics", &[("accept-encoding", "gzip;q=0")]).await;
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(headers["vary"], "accept, accept-encoding");
    assert!(text(&body).contains("bpf_exporter_collections_total 2\n"));
}

#[tokio::test]
async fn one_json_inventory_per_collection_and_only_label_text_kept_after_it() {
    let (source, release) = FixedSource::gated(sample_inventory());
    let state = loaded(source, ServerConfig::default());
    let requests: Vec<_> = ["/api/v1/inventory", "/api/v1/inventory", "/metrics"]
        .into_iter()
        .map(|uri| {
            tokio::spawn({
                let state = state.clone();
                async move { get(&state, uri, &[]).await }
            })
        })
        .collect();
    let_tasks_run().await;
    release.send(()).unwrap();
    let mut bodies = Vec::new();
    for request in requests {
        let (status, _, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1], "byte-identical documents");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bodies[0]).unwrap(),
        serde_json::to_value(sample_inventory()).unwrap()
    );
    crate::testing::released("no page after the collection", || {
        state.0.pages.cached() == 0
    })
    .await;
    let inventory = sample_inventory();
    assert_eq!(
        state.0.pages.fragments(),
        inventory.maps.len() + inventory.programs.len(),
        "label text of each program and map"
    );
}

#[tokio::test]
async fn the_next_page_is_written_into_the_last_pages_buffer_once_it_is_sent() {
    let state = sample_state();
    let (_, _, first) = get(&state, "/metrics", &[]).await;
    let spare = || {
        state
            .0
            .pages
            .spare(Format::Text)
            .expect("the page's buffer is kept")
    };
    let buffer = spare().as_ptr();
    // The first collection and its page are freed on a blocking thread: only
    // then is the kept buffer the page's last reference.
    crate::testing::released("the first page", || {
        state.0.pages.spare_is_free(Format::Text)
    })
    .await;
    let (_, _, second) = get(&state, "/metrics", &[]).await;
    assert_eq!(spare().as_ptr(), buffer, "same buffer");
    assert!(text(&first).contains("bpf_exporter_collections_total 1\n"));
    assert!(text(&second).contains("bpf_exporter_collections_total 2\n"));
    let objects = |body: &[u8]| -> Vec<String> {
        text(body)
            .lines()
            .filter(|l| l.starts_with("bpf_") && !l.starts_with("bpf_exporter_"))
            .map(str::to_owned)
            .collect()
    };
    assert!(objects(&first).len() > 10);
    assert_eq!(
        objects(&second),
        objects(&first),
        "same inventory, same lines"
    );
    // A page still being sent is not written over: the next one gets its own.
    let held = spare();
    let (_, _, third) = get(&state, "/metrics", &[]).await;
    assert!(text(&third).contains("bpf_exporter_collections_total 3\n"));
    assert_ne!(spare().as_ptr(), held.as_ptr());
    assert!(
        text(&held).contains("bpf_exporter_collections_total 2\n"),
        "unchanged"
    );
}

#[tokio::test]
async fn other_routes_are_still_compressed() {
    let (_, headers, body) = get(&sample_state(), "/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(headers["content-encoding"], "gzip");
    let mut unpacked = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut unpacked)
        .unwrap();
    assert!(unpacked.contains("href=\"metrics\""), "{unpacked}");
}

/// Lets spawned tasks run up to their first await (current-thread runtime).
async fn let_tasks_run() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn beyond_the_in_flight_limit_the_answer_is_503() {
    let (source, release) = FixedSource::gated(sample_inventory());
    let config = ServerConfig {
        max_requests_in_flight: 1,
        ..ServerConfig::default()
    };
    let state = loaded(source, config);
    let first = tokio::spawn({
        let state = state.clone();
        async move { get(&state, "/metrics", &[]).await }
    });
    let_tasks_run().await;
    let (status, _, body) = get(&state, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        text(&body).contains("more than 1 requests in flight"),
        "{}",
        text(&body)
    );
    let (status, _, body) = get(&state, "/api/v1/maps", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("API errors are JSON");
    assert_eq!(json["error"]["code"], "unavailable");
    let (status, _, _) = get(&state, "/healthz", &[]).await;
    assert_eq!(status, StatusCode::OK, "health is not limited");
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn scrape_timeout_header_bounds_the_collection() {
    let (source, _release) = FixedSource::gated(sample_inventory());
    let state = loaded(source, ServerConfig::default());
    // A collection that never ends within the scrape's 0.2 s (minus margin).
    let (status, _, body) = get(&state, "/metrics", &[(SCRAPE_TIMEOUT_HEADER, "0.2")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        text(&body).contains("did not finish within 100ms"),
        "{}",
        text(&body)
    );
}

#[tokio::test]
async fn landing_page_links_without_reading_the_kernel() {
    // The source never answers: a landing page that collected would hang.
    let (source, _release) = FixedSource::gated(sample_inventory());
    let state = loaded(source, ServerConfig::default());
    let (status, headers, body) = get(&state, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(text(&body).contains("href=\"metrics\""), "{}", text(&body));
    assert!(text(&body).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn telemetry_path_moves_the_page() {
    let config = ServerConfig {
        telemetry_path: "/custom/path".into(),
        ..ServerConfig::default()
    };
    let state = loaded(FixedSource::new(sample_inventory()), config);
    let (status, _, body) = get(&state, "/custom/path", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text(&body).contains("bpf_exporter_collections_total 1\n"));
    assert_eq!(get(&state, "/metrics", &[]).await.0, StatusCode::NOT_FOUND);
    let (_, _, landing) = get(&state, "/", &[]).await;
    assert!(text(&landing).contains("href=\"custom/path\""));
}

#[tokio::test]
async fn unknown_route_is_404() {
    let (status, _, _) = get(&sample_state(), "/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
