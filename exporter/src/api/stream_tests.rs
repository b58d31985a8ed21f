//! `/api/v1/events/stream` through the server's router with `oneshot`,
//! reading the body event by event: a log filled by the test (no kernel).
use std::sync::Arc;

use axum::{
    body::Body,
    http::{Request, StatusCode},
    response::Response,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::{
    events::{Event, EventKind, EventLog},
    server::{app, AppState, ServerConfig},
};

async fn open(state: &AppState, uri: &str, last_event_id: Option<&str>) -> Response {
    let mut request = Request::builder().uri(uri).header("host", "exporter");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    app(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

/// The next event of the stream (keep-alive comments skipped), as its
/// `field: value` lines.
async fn next_event(body: &mut Body) -> Vec<(String, String)> {
    let mut text = String::new();
    loop {
        let frame = body.frame().await.expect("the stream ended").unwrap();
        text.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let lines: Vec<(String, String)> = block
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with(':'))
                .map(|l| {
                    let (field, value) = l.split_once(':').unwrap();
                    (field.to_owned(), value.trim_start().to_owned())
                })
                .collect();
            if !lines.is_empty() {
                assert!(text.is_empty(), "one event per frame: {text}");
                return lines;
            }
        }
    }
}

/// An event's id and prog_id (from its JSON), checking id, name and data agree.
async fn next_load(body: &mut Body) -> (u64, u32) {
    let lines = next_event(body).await;
    let field = |name: &str| {
        lines
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
    };
    let data: Value = serde_json::from_str(&field("data")).unwrap();
    let id: u64 = field("id").parse().unwrap();
    assert_eq!(data["seq"], id);
    assert_eq!(field("event"), data["kind"].as_str().unwrap());
    (id, data["prog_id"].as_u64().unwrap() as u32)
}

fn load(prog_id: u32) -> Event {
    Event {
        seq: 0,
        time: chrono::DateTime::from_timestamp_nanos(1_765_152_000_123_456_789),
        kind: EventKind::Load,
        prog_id,
        tag: "59f4a931744dcdc6".into(),
        name: None,
        prog_type: None,
        pid: Some(4242),
        tid: Some(4242),
        comm: Some("loader".into()),
        cgroup: None,
        container_id: None,
        pod_uid: None,
    }
}

fn state_with_log(capacity: usize) -> (AppState, Arc<EventLog>) {
    let state = AppState::new(ServerConfig::default());
    let log = EventLog::new(capacity);
    state.collecting().set_events(Arc::clone(&log));
    (state, log)
}

#[tokio::test]
async fn resumes_after_last_event_id_without_gap_or_duplicate() {
    let (state, log) = state_with_log(100);
    (101..=105).for_each(|id| log.append(load(id)));

    let response = open(&state, "/api/v1/events/stream", Some("2")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_load(&mut body).await);
    }
    // Appended while the client reads: it comes next, once.
    log.append(load(106));
    got.push(next_load(&mut body).await);
    assert_eq!(got, [(3, 103), (4, 104), (5, 105), (6, 106)]);

    // The client drops after event 4 and reconnects with it.
    let mut body = open(&state, "/api/v1/events/stream", Some("4"))
        .await
        .into_body();
    let resumed = [next_load(&mut body).await, next_load(&mut body).await];
    assert_eq!(resumed, [(5, 105), (6, 106)]);

    // Without Last-Event-ID nor since: from now on.
    let mut body = open(&state, "/api/v1/events/stream", None)
        .await
        .into_body();
    log.append(load(107));
    assert_eq!(next_load(&mut body).await, (7, 107));

    // An id from an earlier exporter process (past the newest): all kept.
    let mut body = open(&state, "/api/v1/events/stream", Some("900"))
        .await
        .into_body();
    assert_eq!(next_load(&mut body).await, (1, 101));
}

#[tokio::test]
async fn a_client_behind_the_buffer_is_told_how_many_it_missed() {
    let (state, log) = state_with_log(4);
    let mut body = open(&state, "/api/v1/events/stream", None)
        .await
        .into_body();
    // Ten events before the client reads one: the log keeps 7..=10.
    (1..=10).for_each(|id| log.append(load(id)));
    assert_eq!(
        next_event(&mut body).await,
        [
            ("event".to_owned(), "missed".to_owned()),
            ("data".to_owned(), "6".to_owned())
        ]
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next_load(&mut body).await);
    }
    assert_eq!(got, [(7, 7), (8, 8), (9, 9), (10, 10)]);
    log.append(load(11));
    assert_eq!(next_load(&mut body).await, (11, 11));
}

#[tokio::test]
async fn filters_apply_and_bad_input_is_a_json_error() {
    let (state, log) = state_with_log(10);
    log.append(load(1));
    let mut unload = load(1);
    unload.kind = EventKind::Unload;
    log.append(unload);
    log.append(load(2));
    let mut body = open(&state, "/api/v1/events/stream?kind=load&since=1", None)
        .await
        .into_body();
    assert_eq!(next_load(&mut body).await, (3, 2));

    for (uri, id, code) in [
        ("/api/v1/events/stream?limit=5", None, "unknown_parameter"),
        ("/api/v1/events/stream", Some("x"), "invalid_parameter"),
    ] {
        let response = open(&state, uri, id).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], code, "{uri} {body}");
    }
    let off = AppState::new(ServerConfig::default());
    let response = open(&off, "/api/v1/events/stream", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}
