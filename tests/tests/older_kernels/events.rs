//! Load and unload events in each guest: `events --format json` follows from
//! before `bpf-event-kid` starts; the kid loads three socket filters, unloads
//! the second at once, holds the other two (the guest's bpftool lists them)
//! and, its stdin closed, unloads them and exits. The exporter's events are
//! exactly those six, in order, with the ids and tags the kernel gave the kid
//! and bpftool lists, the kid's pid and comm, and the name from the JIT symbol.
use e2e_tests::event_kid::without_seq_and_time;
use serde_json::{json, Value};

use super::Guest;

const COMM: &str = "bpf-event-kid";

/// The kid's pid and its programs as it printed them: (id, tag).
fn kid(guest: &Guest) -> (u32, Vec<(u64, String)>) {
    let text = &guest.section("events_kid").0;
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.parse().ok()).expect("kid pid");
    let programs: Vec<(u64, String)> = lines
        .map(|line| {
            let (id, tag) = line.split_once(' ').expect("`id tag`");
            (id.parse().expect("id"), tag.to_owned())
        })
        .collect();
    assert_eq!(programs.len(), 3, "{text}");
    (pid, programs)
}

/// The events the guest's exporter wrote, one JSON object a line.
fn events(guest: &Guest) -> Vec<Value> {
    guest
        .section("events")
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// An RFC 3339 UTC time (`...:SS[.fraction]Z`) as (seconds, nanoseconds), in order.
fn time(value: &Value) -> (&str, u64) {
    let text = value
        .as_str()
        .expect("time")
        .strip_suffix('Z')
        .expect("UTC");
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let ns = format!("{fraction:0<9}").parse().expect("nanoseconds");
    (seconds, ns)
}

pub fn loads_and_unloads_arrive_as_events(guest: &Guest, release: &str) {
    guest.section("events_start");
    let (pid, programs) = kid(guest);
    // While the kid held evkid_0 and evkid_2: bpftool lists them with the
    // kid's ids and tags, and not evkid_1 (unloaded at once).
    let listed: Vec<Value> = match serde_json::from_str(&guest.section("events_bpftool").0) {
        Ok(Value::Array(items)) => items,
        other => panic!("{release}: bpftool prog show: {other:?}"),
    };
    let by_bpftool = |name: &str| -> Option<(u64, String)> {
        let p = listed.iter().find(|p| p["name"] == name)?;
        Some((p["id"].as_u64()?, p["tag"].as_str()?.to_owned()))
    };
    assert_eq!(
        by_bpftool("evkid_0").as_ref(),
        Some(&programs[0]),
        "{release}"
    );
    assert_eq!(by_bpftool("evkid_1"), None, "{release}");
    assert_eq!(
        by_bpftool("evkid_2").as_ref(),
        Some(&programs[2]),
        "{release}"
    );
    guest.section("events_kid_exit");
    guest.section("events_stop");

    // No warning or error, but the one about a CPU onlined after start.
    let log = &guest.section("events_log").0;
    assert!(
        log.lines()
            .filter(|l| !l.contains("came online after"))
            .all(|l| !l.contains("WARN") && !l.contains("ERROR")),
        "{release}: {log}"
    );
    let events = events(guest);
    // Nothing else loads or frees a program in the guest meanwhile.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=6).collect::<Vec<u64>>(),
        "{release}: {events:#?}"
    );
    let times: Vec<(&str, u64)> = events.iter().map(|e| time(&e["time"])).collect();
    assert!(times.is_sorted(), "{release}: {times:?}");

    // While the kid lives, /proc names it; it runs in the guest's root cgroup.
    let event = |kind: &str, i: usize| {
        let (id, tag) = &programs[i];
        json!({
            "kind": kind, "prog_id": id, "tag": tag, "name": format!("evkid_{i}"),
            "type": null, "pid": pid, "tid": pid, "comm": COMM, "cgroup": "/",
            "container_id": null, "pod_uid": null,
        })
    };
    let mut seen = without_seq_and_time(&events);
    // The last two are the kid's own close at exit: its pid (the kernel frees
    // the program in the closing task), but it may be gone before the
    // exporter reads /proc: then comm and cgroup are null, never guessed.
    for e in &mut seen[4..] {
        if e["comm"].is_null() {
            assert!(e["cgroup"].is_null(), "{release}: {e}");
            e["comm"] = json!(COMM);
            e["cgroup"] = json!("/");
        }
    }
    let expected = json!([
        event("load", 0),
        event("load", 1),
        event("unload", 1),
        event("load", 2),
        event("unload", 0),
        event("unload", 2),
    ]);
    assert_eq!(Value::Array(seen), expected, "{release}");
}
