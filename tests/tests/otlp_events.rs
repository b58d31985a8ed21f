//! The BPF load/unload events pushed as OTLP log records, with the real
//! binary and kernel and the test receiver (`otlp/receiver.rs`): a child this
//! test starts in a kubelet-style pod cgroup loads three programs and unloads
//! one at once; the receiver gets a record for each event with exactly the
//! attributes of its `/api/v1/events` item, over HTTP/protobuf and gRPC; with
//! the collector down, events that leave the events buffer are counted and
//! logged, never sent, and the ones kept are sent once it is up.
//!
//! Its own test binary, its tests one at a time: a second consumer of the
//! kernel's records opened later (another exporter of a parallel test) makes
//! the kernel write the sample id (pid, time) into its copy only
//! (docs/events.md).
#[path = "otlp/events_support.rs"]
mod events_support;
#[path = "otlp/receiver.rs"]
mod receiver;
mod support;

use std::{
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};

use e2e_tests::have_root;
use events_support::{attributes_json, records, wait_records, Pod, Record, COMM, POD_UID, WAIT};
use opentelemetry_proto::tonic::{common::v1::any_value::Value as Attr, logs::v1::SeverityNumber};
use receiver::{Answer, Receiver};
use serde_json::Value;
use support::Server;

/// This binary's tests run one at a time (see above).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The exporter's JSON log lines with this message: their fields.
fn log_lines(server: &Server, message: &str) -> Vec<Value> {
    server
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .map(|l| l["fields"].clone())
        .collect()
}

/// Polls until `done` holds; panics with the exporter's logs after [`WAIT`].
fn wait_until(server: &Server, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}\n{}", server.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The exporter's `/api/v1/events` items of this test's pod.
fn pod_events(server: &Server) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/events?pod_uid={POD_UID}&limit=1000"), &[])
        .expect("/api/v1/events");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body: Value = serde_json::from_str(&reply.body).expect("JSON");
    body["items"].as_array().expect("items").clone()
}

/// The item's `time` (RFC 3339, ns) as nanoseconds since the epoch.
fn unix_nanos(item: &Value) -> u64 {
    let time = item["time"].as_str().expect("time");
    let time = chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339");
    u64::try_from(time.timestamp_nanos_opt().expect("in range")).expect("after 1970")
}

/// Asserts that the only record of `item`'s program and kind carries
/// exactly its fields, its time, INFO and the event name.
fn assert_record_is(receiver: &Receiver, grpc: bool, item: &Value) {
    let kind = item["kind"].as_str().expect("kind");
    let id = item["prog_id"].as_u64().expect("prog_id");
    let found = wait_records(receiver, grpc, id, kind, 1);
    assert_eq!(found.len(), 1, "{kind} records of program {id}");
    let Record { service, record } = &found[0];
    let mut expected = item.clone();
    let object = expected.as_object_mut().expect("an event object");
    object.remove("time");
    object.retain(|_, v| !v.is_null());
    assert_eq!(attributes_json(record), expected, "{kind} of program {id}");
    assert_eq!(record.time_unix_nano, unix_nanos(item));
    assert!(record.observed_time_unix_nano >= record.time_unix_nano);
    assert_eq!(record.severity_number, SeverityNumber::Info as i32);
    assert_eq!(record.severity_text, "INFO");
    assert_eq!(record.event_name, format!("bpf.prog.{kind}"));
    let body = record.body.as_ref().and_then(|b| b.value.as_ref());
    assert_eq!(
        body,
        Some(&Attr::StringValue(format!("BPF program {kind}")))
    );
    assert_eq!(service.as_deref(), Some("bpf-inventory-exporter"));
}

/// One protocol: loads, the quick unload, then the unloads at the child's exit.
fn events_arrive_as_log_records(protocol: &str) {
    let grpc = protocol == "grpc";
    let receiver = Receiver::start(Answer::Ok).unwrap();
    let url = receiver.url(grpc);
    // No export interval during the test: no collection fills in `type`
    // between the record's send and the API read.
    let server = Server::start_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=e2e"),
        ],
        &[],
    )
    .unwrap();
    server.wait_ready().unwrap();
    let pod = Pod::create();
    let started = SystemTime::now();
    let (kid, stdin, programs) = pod.load();
    let pid = kid.id();

    // Loads of all three, the unload of evkid_1 (closed at once).
    let expected = [("load", 0), ("load", 1), ("unload", 1), ("load", 2)];
    let deadline = Instant::now() + WAIT;
    let mut items = pod_events(&server);
    while items.len() < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        items = pod_events(&server);
    }
    assert_eq!(items.len(), expected.len(), "{items:?}\n{}", server.logs());
    for ((kind, i), item) in expected.iter().zip(&items) {
        let (id, tag) = &programs[*i];
        assert_eq!(item["kind"], *kind, "{item}");
        assert_eq!(item["prog_id"], *id, "{item}");
        assert_eq!(item["tag"], *tag, "{item}");
        assert_eq!(item["pid"], pid, "{item}");
        assert_eq!(item["comm"], COMM, "{item}");
        assert_eq!(item["pod_uid"], POD_UID, "{item}");
        assert!(SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_nanos(item)) >= started);
        assert_record_is(&receiver, grpc, item);
    }

    // The child closes the two it held and exits by itself: their unloads
    // arrive too (by prog id: its /proc may be gone when they are read).
    drop(stdin);
    let mut kid = kid;
    kid.wait().expect("the child exits once stdin closes");
    for (id, tag) in [&programs[0], &programs[2]] {
        let deadline = Instant::now() + WAIT;
        let item = loop {
            let reply = server
                .get("/api/v1/events?kind=unload&limit=1000", &[])
                .expect("/api/v1/events");
            let body: Value = serde_json::from_str(&reply.body).expect("JSON");
            let found = body["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|item| item["prog_id"] == *id)
                .cloned();
            match found {
                Some(item) => break item,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => panic!("no unload of {id}\n{}", server.logs()),
            }
        };
        assert_eq!(item["tag"], *tag, "{item}");
        assert!(item["pid"] == pid || item["pid"].is_null(), "{item}");
        assert_record_is(&receiver, grpc, &item);
    }
    // The same headers as the metrics, on every logs request.
    let requests = receiver.received_logs();
    assert!(requests.iter().all(|r| r.grpc == grpc), "{protocol}");
    for request in &requests {
        assert!(
            request.headers.contains(&("x-tenant".into(), "e2e".into())),
            "{:?}",
            request.headers
        );
    }
    let page = server.metrics().unwrap();
    assert_eq!(
        support::sample(&page, "bpf_exporter_otlp_events_dropped_total"),
        Some(0.0)
    );
}

#[test]
fn load_and_unload_events_arrive_as_log_records_with_the_api_attributes() {
    if !have_root("load_and_unload_events_arrive_as_log_records_with_the_api_attributes") {
        return;
    }
    let _serial = serial();
    for protocol in ["http/protobuf", "grpc"] {
        events_arrive_as_log_records(protocol);
    }
}

#[test]
fn events_that_leave_the_buffer_while_the_collector_is_down_are_counted_not_sent() {
    if !have_root("events_that_leave_the_buffer_while_the_collector_is_down_are_counted_not_sent") {
        return;
    }
    let _serial = serial();
    let port = support::free_port().unwrap();
    let server = Server::start_with_env(
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://127.0.0.1:{port}"),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ],
        &["--events-buffer", "64"],
    )
    .unwrap();
    server.wait_ready().unwrap();
    let pod = Pod::create();
    // 17 children, 68 events, into a buffer of 64 while nothing answers (a
    // margin for the loads of parallel tests: an exporter start is 8).
    let kids: Vec<_> = (0..17).map(|_| pod.load()).collect();
    let first_load = kids[0].2[0].0;
    let last_load = kids[16].2[2].0;
    wait_until(&server, "a failed log export", || {
        !log_lines(&server, "OTLP log export failed").is_empty()
    });
    let failed = log_lines(&server, "OTLP log export failed").remove(0);
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("Connection refused"), "{error}");
    let dropped = || {
        let page = server.metrics().unwrap();
        support::sample(&page, "bpf_exporter_otlp_events_dropped_total").unwrap()
    };
    // At least the 4 of the children's events beyond the buffer.
    wait_until(&server, "4 events dropped", || dropped() >= 4.0);
    let lines = log_lines(
        &server,
        "BPF events left the events buffer before the OTLP push sent them",
    );
    assert!(
        lines
            .first()
            .is_some_and(|l| l["dropped"].as_u64() >= Some(1)),
        "{lines:?}"
    );

    // The collector comes up: the events still kept go out, in order, the
    // ones that left the buffer never.
    let receiver = Receiver::start_on(
        "127.0.0.1:0".parse().unwrap(),
        format!("127.0.0.1:{port}").parse().unwrap(),
        Answer::Ok,
    )
    .unwrap();
    let sent = wait_records(&receiver, false, last_load, "load", 1);
    assert_eq!(
        sent.len(),
        1,
        "the last child's last load ({} records, {} dropped)\n{}",
        records(&receiver, false).len(),
        dropped(),
        server.logs()
    );
    // Sent in order: had it been sent, it would be there by now.
    let now = wait_records(&receiver, false, first_load, "load", 0);
    assert!(now.is_empty(), "the first child's first load was sent");
    drop(kids);
}

#[test]
fn events_not_yet_sent_are_flushed_on_sigterm() {
    if !have_root("events_not_yet_sent_are_flushed_on_sigterm") {
        return;
    }
    let _serial = serial();
    let port = support::free_port().unwrap();
    // A failed send waits the export interval before the next: 10 minutes.
    let mut server = Server::start_with_env(
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://127.0.0.1:{port}"),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ],
        &[],
    )
    .unwrap();
    server.wait_ready().unwrap();
    let pod = Pod::create();
    let (kid, stdin, programs) = pod.load();
    wait_until(&server, "a failed log export", || {
        !log_lines(&server, "OTLP log export failed").is_empty()
    });
    let receiver = Receiver::start_on(
        "127.0.0.1:0".parse().unwrap(),
        format!("127.0.0.1:{port}").parse().unwrap(),
        Answer::Ok,
    )
    .unwrap();
    // Nothing is sent before the stop: the next try is minutes away.
    let (status, _) = server.stop(libc::SIGTERM).unwrap();
    assert!(status.success(), "{status:?}\n{}", server.logs());
    for (id, _) in &programs {
        let found = wait_records(&receiver, false, *id, "load", 0);
        assert_eq!(found.len(), 1, "the load of {id}\n{}", server.logs());
    }
    drop((stdin, kid));
}
