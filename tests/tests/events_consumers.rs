//! Two consumers of the kernel's BPF records: an exporter started before
//! another still gets each event's pid, tid and comm. The kernel grows the
//! header it shares among the consumers by a sample id for each copy it
//! writes, so the older consumer's copy ends in bytes nobody wrote there:
//! zeros in a fresh ring, older records once it wrapped. A sample id read at
//! the record's end would name nobody, or whoever an older record named.
use std::{
    os::fd::AsFd,
    time::{Duration, Instant},
};

use aya_obj::generated::{bpf_attach_type, bpf_prog_type};
use e2e_tests::{
    have_root,
    links::{load_trivial_program, prog_id_and_tag},
};
use serde_json::Value;

#[path = "api/support.rs"]
mod api_support;
use api_support::Server;

fn load(name: &str) -> (std::os::fd::OwnedFd, u32, String) {
    let fd = load_trivial_program(
        bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER,
        bpf_attach_type::BPF_CGROUP_INET_INGRESS,
        name,
    )
    .expect("load a program");
    let (id, tag) = prog_id_and_tag(fd.as_fd()).expect("its id and tag");
    (fd, id, tag.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `kind` event of program `id` in `server`'s log, once it is there.
fn wait_for_event(server: &Server, kind: &str, id: u32) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = server.json("/api/v1/events?limit=1000");
        let found = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|e| e["kind"] == kind && e["prog_id"] == id)
            .cloned();
        if let Some(event) = found {
            return event;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} event of program {id}: {page}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_exporter_started_before_another_consumer_keeps_pid_and_comm() {
    if !have_root("an_exporter_started_before_another_consumer_keeps_pid_and_comm") {
        return;
    }
    let first = Server::start().expect("start exporter");
    let second = Server::start().expect("start the second exporter");
    let (fd, id, tag) = load("cons_after");
    drop(fd);
    let comm = std::fs::read_to_string("/proc/self/comm").expect("our comm");
    // SAFETY: gettid has no arguments.
    let tid = unsafe { libc::gettid() };
    for kind in ["load", "unload"] {
        for server in [&first, &second] {
            let event = wait_for_event(server, kind, id);
            assert_eq!(
                (
                    &event["tag"],
                    &event["name"],
                    &event["pid"],
                    &event["tid"],
                    &event["comm"]
                ),
                (
                    &Value::from(tag.as_str()),
                    &Value::from("cons_after"),
                    &Value::from(std::process::id()),
                    &Value::from(tid),
                    &Value::from(comm.trim_end())
                ),
                "{event}"
            );
        }
    }
}
