//! BPF load/unload events against the real kernel: a child this test starts
//! in a kubelet-style pod cgroup loads three programs, unloads one at once and
//! keeps two; `/api/v1/events`, the counters on `/metrics` and the `events`
//! CLI carry exactly those programs, in order, with the child's pid, comm, pod
//! and container. Other tests load programs at the same time: every assertion
//! selects this test's pod first.
use std::{
    process::Command,
    time::{Duration, Instant},
};

use e2e_tests::{
    event_kid::{without_seq_and_time, EventPod, COMM},
    events_cli::follow_events,
    exporter_binary, have_root,
    holders::Kid,
};
use serde_json::{json, Value};

#[path = "api/support.rs"]
mod api_support;
use api_support::Server;

const POD_UID: &str = "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f";

/// The events the exporter has of this test's pod, once there are `count`.
fn pod_events(server: &Server, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = server.json(&format!("/api/v1/events?pod_uid={POD_UID}{query}"));
        let items = body["items"].as_array().expect("items").clone();
        if items.len() >= count || Instant::now() > deadline {
            return items;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn expected_events(programs: &[(u64, String)], pid: u32, cgroup: &str, container: &str) -> Value {
    let event = |kind: &str, (id, tag): &(u64, String), name: &str| {
        json!({
            "kind": kind, "prog_id": id, "tag": tag, "name": name, "type": null,
            "pid": pid, "tid": pid, "comm": COMM, "cgroup": cgroup,
            "container_id": container, "pod_uid": POD_UID,
        })
    };
    json!([
        event("load", &programs[0], "evkid_0"),
        event("load", &programs[1], "evkid_1"),
        event("unload", &programs[1], "evkid_1"),
        event("load", &programs[2], "evkid_2"),
    ])
}

fn sample(page: &str, series: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The pod cgroup of this test (removed on drop, after the children).
struct Pod {
    cgroup: EventPod,
    container: String,
}

impl Pod {
    fn create(name: &str) -> Pod {
        let container = "c".repeat(32) + &"0123456789abcdef".repeat(2);
        let cgroup = EventPod::create(&format!(
            "bpf-events-{name}-{}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{container}.scope",
            std::process::id(),
            POD_UID.replace('-', "_")
        ));
        Pod { cgroup, container }
    }

    /// Starts the loading child in the pod, lets it load, and returns it
    /// (killed and reaped on drop), its stdin (kept open: it holds two
    /// programs until then) and the events expected of it.
    fn load(&self) -> (Kid, std::process::ChildStdin, Value) {
        let loaded = self
            .cgroup
            .load(env!("CARGO_BIN_EXE_bpf-event-kid").as_ref());
        let expected = expected_events(
            &loaded.programs,
            loaded.kid.id(),
            &self.cgroup.path,
            &self.container,
        );
        (loaded.kid, loaded.stdin, expected)
    }
}

// The API, a restarted exporter, then the CLI: one pod and one child at a time.
#[test]
fn a_pod_loading_three_programs_and_unloading_one_is_seen_in_order() {
    if !have_root("a_pod_loading_three_programs_and_unloading_one_is_seen_in_order") {
        return;
    }
    let pod = Pod::create("test");
    let server = Server::start().expect("start exporter");
    let (kid, stdin, expected) = pod.load();

    // The API: exactly these four, in this order, numbered in order.
    let events = pod_events(&server, "", 4);
    assert_eq!(Value::from(without_seq_and_time(&events)), expected);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq {seqs:?}");
    let times: Vec<&str> = events.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time {times:?}");
    // Filters: the same events by container; only the unload by kind.
    let by_container = server.json(&format!("/api/v1/events?container_id={}", pod.container));
    assert_eq!(by_container["items"].as_array().unwrap(), &events);
    let unloads = pod_events(&server, "&kind=unload", 1);
    assert_eq!(without_seq_and_time(&unloads), [expected[2].clone()]);
    // Resuming after the second event gives the last two.
    let after = server.json(&format!(
        "/api/v1/events?pod_uid={POD_UID}&since={}",
        seqs[1]
    ));
    assert_eq!(after["items"].as_array().unwrap(), &events[2..]);

    // The counters: the pod's loads and unloads, by the child's labels.
    let page = server.request("GET", "/metrics").expect("/metrics").text();
    let labels = format!(
        "{{comm=\"{COMM}\",container_id=\"{}\",pod_uid=\"{POD_UID}\"}}",
        pod.container
    );
    assert_eq!(
        sample(&page, &format!("bpf_prog_loads_total{labels}")),
        Some(3)
    );
    assert_eq!(
        sample(&page, &format!("bpf_prog_unloads_total{labels}")),
        Some(1)
    );
    // evkid_1 lived for microseconds, unseen by any collection; other tests'
    // programs may count too, so at least one.
    let short_lived = sample(&page, "bpf_prog_short_lived_total").expect("short-lived sample");
    assert!(short_lived >= 1, "bpf_prog_short_lived_total {short_lived}");
    assert_eq!(sample(&page, "bpf_exporter_events_lost_total"), Some(0));
    drop((stdin, kid));
    drop(server);

    // A restarted exporter numbers above its predecessor: a `since` kept from
    // the first process gets the second one's events, none counted as dropped.
    let last = seqs[3];
    let server = Server::start().expect("restart exporter");
    let (kid, stdin, expected) = pod.load();
    let events = pod_events(&server, &format!("&since={last}"), 4);
    assert_eq!(Value::from(without_seq_and_time(&events)), expected);
    assert!(events[0]["seq"].as_u64().unwrap() > last, "{events:?}");
    let page = server.json(&format!("/api/v1/events?pod_uid={POD_UID}&since={last}"));
    assert_eq!(page["dropped"], 0);
    drop((stdin, kid));
    drop(server);

    // The CLI, following live: the same four events of a second child.
    let (cli, cli_lines) = follow_events(
        Command::new(exporter_binary())
            .args(["events", "--format", "json"])
            .env("RUST_LOG", "info"),
        "the events CLI",
    );
    let (kid, stdin, expected) = pod.load();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut followed = Vec::new();
    while followed.len() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = cli_lines
            .recv_timeout(left)
            .expect("an event line from the CLI");
        let event: Value = serde_json::from_str(&line).expect("a JSON event");
        if event["pod_uid"] == POD_UID {
            followed.push(event);
        }
    }
    assert_eq!(Value::from(without_seq_and_time(&followed)), expected);
    drop((stdin, kid, cli)); // before the pod's cgroups are removed
}
