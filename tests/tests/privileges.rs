//! Least privilege: with exactly CAP_BPF + CAP_PERFMON (as uid 65534) the
//! exporter serves everything but what needs CAP_SYS_ADMIN; with neither it
//! exits non-zero with one line naming what is missing.
use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use aya::maps::HashMap;
use e2e_tests::{events_cli::follow_events, exporter_binary, have_root, Fixture, FIXTURE_PROG};
use serde_json::Value;

fn dump_as_nobody(caps: &str) -> Output {
    run_as_nobody(caps, &["dump", "--format", "json"], "warn")
}

fn run_as_nobody(caps: &str, args: &[&str], log_level: &str) -> Output {
    as_nobody(caps, args, log_level)
        .output()
        .expect("run setpriv (util-linux)")
}

fn as_nobody(caps: &str, args: &[&str], log_level: &str) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps=-all{caps}"))
        .arg(format!("--ambient-caps=-all{caps}"))
        .arg(format!("--bounding-set=-all{caps}"))
        .arg("--")
        .arg(exporter_binary())
        .args(args)
        .env("RUST_LOG", log_level);
    command
}

#[test]
fn runs_with_only_cap_bpf_and_cap_perfmon() {
    if !have_root("runs_with_only_cap_bpf_and_cap_perfmon") {
        return;
    }
    let mut fx = Fixture::load().expect("load fixture");
    let mut hash: HashMap<_, u32, u64> =
        HashMap::try_from(fx.ebpf.map_mut("fixture_hash").unwrap()).unwrap();
    for k in 0..9u32 {
        hash.insert(k, 1, 0).unwrap();
    }
    let map_id = fx.map_id("fixture_hash");

    let out = dump_as_nobody(",+bpf,+perfmon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dump failed: {stderr}");
    assert!(
        stderr.contains("CAP_SYS_ADMIN missing"),
        "says once what is null: {stderr}"
    );
    let inv: Value = serde_json::from_slice(&out.stdout).expect("json");
    let map = inv["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == map_id)
        .expect("fixture map listed");
    assert_eq!(map["entries"], 9);
    assert_eq!(map["max_entries"], 1000);
    assert_eq!(
        map["memory_bytes"],
        Value::Null,
        "fdinfo needs CAP_SYS_ADMIN"
    );
    let ours = inv["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dump_maps" && p["self"] == true)
        .expect("own iterator listed");
    assert_eq!(ours["uid"], 65534, "loaded by the unprivileged user");
    assert!(ours["run_count"].is_u64(), "per-CPU stats readable: {ours}");
}

#[test]
fn missing_capabilities_are_named_in_one_line() {
    if !have_root("missing_capabilities_are_named_in_one_line") {
        return;
    }
    // `serve` checks before it listens (the port is never opened).
    for args in [&["dump"][..], &["serve", "--listen", "127.0.0.1:0"][..]] {
        let out = run_as_nobody("", args, "info");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].contains("CAP_BPF and CAP_PERFMON"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// Lines of a child's stream, read on a thread.
#[test]
fn load_events_need_only_cap_perfmon() {
    if !have_root("load_events_need_only_cap_perfmon") {
        return;
    }
    let out = run_as_nobody(",+bpf,+perfmon", &["check"], "warn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l == "load/unload events: yes"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The CLI as uid 65534 sees a program this test loads afterwards.
    let (cli, lines) = follow_events(
        &mut as_nobody(",+perfmon", &["events", "--format", "json"], "info"),
        "the events CLI as uid 65534",
    );
    let fx = Fixture::load().expect("load fixture");
    let id = u64::from(fx.program_id(FIXTURE_PROG));
    let deadline = Instant::now() + Duration::from_secs(10);
    let load = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("the fixture's load event");
        let event: Value = serde_json::from_str(&line).expect("a JSON event");
        if event["prog_id"] == id {
            break event;
        }
    };
    assert_eq!(load["kind"], "load");
    // The JIT symbol's name: the BTF function name, not the 16-byte one.
    assert_eq!(load["name"], FIXTURE_PROG);
    drop(cli);
}
