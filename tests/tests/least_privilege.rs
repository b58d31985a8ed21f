//! Least privilege at run time: started as root, `serve` drops every
//! capability but CAP_BPF (and CAP_SYS_ADMIN while map memory is on) from the effective, permitted, inheritable, ambient and bounding sets
//! of every thread, sets NoNewPrivs, and still collects: an hour of scrapes
//! at test speed, and a map created after the drop gets its exact memory.
//! Started as uid 65534 with exactly CAP_BPF + CAP_PERFMON, it keeps CAP_BPF
//! only and BPF load/unload events keep arriving.
mod support;

use std::{
    os::fd::AsFd,
    time::{Duration, Instant},
};

use aya_obj::generated::{bpf_attach_type, bpf_prog_type};
use e2e_tests::{
    bpftool, have_root,
    links::{load_trivial_program, prog_id_and_tag},
    Fixture,
};
use serde_json::Value;
use support::{sample, Server};

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

fn mask(caps: &[u32]) -> u64 {
    caps.iter().map(|c| 1u64 << c).sum()
}

/// Each thread's (name, CapInh, CapPrm, CapEff, CapBnd, CapAmb, NoNewPrivs).
fn threads(pid: u32) -> Vec<(String, [u64; 5], u32)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let status = std::fs::read_to_string(path.join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or_else(|| panic!("{name} in {status}"))
                    .to_owned()
            };
            let hex = |name: &str| u64::from_str_radix(&field(name), 16).unwrap();
            Some((
                field("Name:"),
                [
                    hex("CapInh:"),
                    hex("CapPrm:"),
                    hex("CapEff:"),
                    hex("CapBnd:"),
                    hex("CapAmb:"),
                ],
                field("NoNewPrivs:").parse().unwrap(),
            ))
        })
        .collect()
}

/// Waits (scraping, which wakes the runtime's threads) until every thread
/// shows `expected`; fails with what the threads show.
fn assert_every_thread_reduced(server: &Server, expected: u64) {
    assert_every_thread_reduced_to(server, expected, expected);
}

/// [`assert_every_thread_reduced`] with the bounding set `bounding`.
fn assert_every_thread_reduced_to(server: &Server, expected: u64, bounding: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = threads(server.pid());
        let reduced = |(_, [inh, prm, eff, bnd, amb], nnp): &(String, [u64; 5], u32)| {
            *inh == 0
                && *prm == expected
                && *eff == expected
                && *bnd == bounding
                && *amb == 0
                && *nnp == 1
        };
        if seen.iter().all(reduced) {
            assert!(seen.len() >= 2, "{seen:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "threads not reduced to {expected:#x}: {seen:#x?}\n{}",
            server.logs()
        );
        server.metrics().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn collectors_succeeded(page: &str) -> bool {
    ["programs", "maps", "links"].iter().all(|c| {
        sample(
            page,
            &format!("bpf_exporter_collector_success{{collector=\"{c}\"}}"),
        ) == Some(1.0)
    })
}

#[test]
fn started_as_root_keeps_only_what_collections_use() {
    if !have_root("started_as_root_keeps_only_what_collections_use") {
        return;
    }
    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    assert_every_thread_reduced(&server, mask(&[CAP_BPF, CAP_SYS_ADMIN]));
    assert!(
        server.logs().contains("capabilities dropped"),
        "{}",
        server.logs()
    );

    // An hour of 15 s scrapes, at test speed.
    for scrape in 0..240 {
        let page = server.metrics().unwrap();
        assert!(collectors_succeeded(&page), "scrape {scrape}: {page}");
    }
    // A map created after the drop: opened by id (CAP_SYS_ADMIN) for its memory.
    let fixture = Fixture::load().unwrap();
    let id = fixture.map_id("fixture_hash");
    let memlock = bpftool(&["map", "show", "id", &id.to_string()]).unwrap()["bytes_memlock"]
        .as_f64()
        .unwrap();
    let page = server.metrics().unwrap();
    let series = format!("{{id=\"{id}\",name=\"fixture_hash\",type=\"hash\"}}");
    assert_eq!(
        sample(&page, &format!("bpf_map_memory_bytes{series}")),
        Some(memlock)
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_max_entries{series}")),
        Some(1000.0)
    );
    // Threads started later (blocking pool) inherit the reduced sets.
    assert_every_thread_reduced(&server, mask(&[CAP_BPF, CAP_SYS_ADMIN]));
}

#[test]
fn without_map_memory_cap_sys_admin_goes_too() {
    if !have_root("without_map_memory_cap_sys_admin_goes_too") {
        return;
    }
    let server = Server::start(&["--map-memory-refresh", "0s"]).unwrap();
    server.wait_ready().unwrap();
    assert_every_thread_reduced(&server, mask(&[CAP_BPF]));
    let fixture = Fixture::load().unwrap();
    let series = format!(
        "{{id=\"{}\",name=\"fixture_hash\",type=\"hash\"}}",
        fixture.map_id("fixture_hash")
    );
    for _ in 0..20 {
        let page = server.metrics().unwrap();
        assert!(collectors_succeeded(&page), "{page}");
        assert_eq!(
            sample(&page, &format!("bpf_map_max_entries{series}")),
            Some(1000.0)
        );
        assert_eq!(
            sample(&page, &format!("bpf_map_memory_bytes{series}")),
            None
        );
    }
}

/// The `kind` event of program `id` in the exporter's log, once it is there.
fn wait_for_event(server: &Server, kind: &str, id: u32) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server.get("/api/v1/events?limit=1000", &[]).unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let page: Value = serde_json::from_str(&reply.body).unwrap();
        let found = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind && e["prog_id"] == id)
            .cloned();
        if let Some(event) = found {
            return event;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} event of program {id}: {page}\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn as_nobody_with_cap_bpf_and_cap_perfmon_events_arrive_after_the_drop() {
    if !have_root("as_nobody_with_cap_bpf_and_cap_perfmon_events_arrive_after_the_drop") {
        return;
    }
    // Events are on by default.
    let server = Server::start_as_nobody("+bpf,+perfmon", &[]).unwrap();
    server.wait_ready().unwrap();
    // CAP_PERFMON opened the rings and is gone; CAP_SYS_ADMIN was never held.
    // Without CAP_SETPCAP the bounding set stays as setpriv left it.
    assert_every_thread_reduced_to(&server, mask(&[CAP_BPF]), mask(&[CAP_BPF, CAP_PERFMON]));

    // A program this test loads and unloads after the drop.
    let fd = load_trivial_program(
        bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER,
        bpf_attach_type::BPF_CGROUP_INET_INGRESS,
        "lp_after_drop",
    )
    .unwrap();
    let (id, tag) = prog_id_and_tag(fd.as_fd()).unwrap();
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    drop(fd);
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let comm = comm.trim_end();
    let mut labels = String::new();
    for kind in ["load", "unload"] {
        let event = wait_for_event(&server, kind, id);
        // The counter's labels: this process' comm, container and pod, where known.
        labels = ["comm", "container_id", "pod_uid"]
            .iter()
            .filter_map(|name| Some(format!("{name}=\"{}\"", event[*name].as_str()?)))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            (&event["tag"], &event["name"], &event["pid"], &event["comm"]),
            (
                &Value::from(tag.as_str()),
                &Value::from("lp_after_drop"),
                &Value::from(std::process::id()),
                &Value::from(comm)
            ),
            "{event}"
        );
    }

    // The counter of this process' loads: at least every load event of its
    // comm in the log (other tests of this binary load programs too).
    let reply = server
        .get(
            &format!("/api/v1/events?kind=load&comm={comm}&limit=1000"),
            &[],
        )
        .unwrap();
    let page: Value = serde_json::from_str(&reply.body).unwrap();
    let logged = page["items"].as_array().unwrap().len();
    assert!(logged >= 1, "{page}");
    let metrics = server.metrics().unwrap();
    let loads = sample(&metrics, &format!("bpf_prog_loads_total{{{labels}}}"));
    assert!(
        loads.is_some_and(|n| n >= logged as f64),
        "bpf_prog_loads_total{{{labels}}}: {loads:?}, load events logged {logged}"
    );
}
