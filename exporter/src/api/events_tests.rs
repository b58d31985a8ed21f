//! `/api/v1/events` through the server's router with `oneshot`: a log filled
//! by the test (no kernel), exact documents, strict parameters, 503 when off.
use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{
    events::{EventKind, EventLog},
    server::{app, AppState, ServerConfig},
    testing::sample_event,
};

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .uri(uri)
        .header("host", "exporter")
        .body(Body::empty())
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn events_are_paged_after_since_and_filtered() {
    let state = AppState::new(ServerConfig::default());
    let log = EventLog::new(2);
    state.collecting().set_events(std::sync::Arc::clone(&log));
    log.append(sample_event(EventKind::Load, 7, "loader"));
    log.append(sample_event(EventKind::Load, 8, "loader"));
    log.append(sample_event(EventKind::Unload, 7, "kworker"));

    let (status, body) = get(&state, "/api/v1/events?since=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "items": [{
                "seq": 3, "time": "2025-12-08T00:00:00.123456789Z", "kind": "unload",
                "prog_id": 7, "tag": "59f4a931744dcdc6", "name": "probe", "type": null,
                "pid": 4242, "tid": 4243, "comm": "kworker",
                "cgroup": "/kubepods/pod0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/c",
                "container_id": null, "pod_uid": "0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            }],
            "next_since": 3, "dropped": 0, "lost": 0,
        })
    );
    // Buffer of 2: event 1 is gone, and the answer says so.
    let (_, body) = get(&state, "/api/v1/events?kind=load").await;
    let seqs: Vec<u64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (seqs, &body["dropped"], &body["next_since"]),
        (vec![2], &json!(1), &json!(3))
    );
    let (_, body) = get(&state, "/api/v1/events?comm=kworker&limit=1").await;
    assert_eq!(body["items"][0]["seq"], 3);

    let (status, body) = get(&state, "/api/v1/events?kind=exec").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_parameter");
}

#[tokio::test]
async fn events_off_is_a_json_503() {
    let state = AppState::new(ServerConfig::default());
    let (status, body) = get(&state, "/api/v1/events").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
}
