//! A ring too small for a burst: the exporter is stopped (SIGSTOP) while this
//! test loads and unloads programs, so the kernel overruns its one-page rings
//! whatever the scheduling; once it runs again `bpf_exporter_events_lost_total`
//! counts the lost records, nothing crashed, and a later load still arrives.
use std::time::{Duration, Instant};

use aya_obj::generated::{bpf_attach_type, bpf_prog_type};
use e2e_tests::{have_root, links::load_trivial_program};

#[path = "api/support.rs"]
mod api_support;
use api_support::Server;

/// Enough load + unload records for one page per CPU many times over.
const BURST: usize = 400;

fn lost_total(server: &Server) -> u64 {
    let page = server.request("GET", "/metrics").expect("/metrics").text();
    page.lines()
        .find_map(|l| l.strip_prefix("bpf_exporter_events_lost_total "))
        .expect("bpf_exporter_events_lost_total on the page")
        .parse()
        .expect("a count")
}

#[test]
fn a_burst_overrunning_a_small_ring_counts_lost_records_and_events_go_on() {
    if !have_root("a_burst_overrunning_a_small_ring_counts_lost_records_and_events_go_on") {
        return;
    }
    let server = Server::start_with(&["--events-ring-pages", "1"]).expect("start exporter");
    assert_eq!(lost_total(&server), 0);
    // One CPU for every load: the kernel writes its lost record into the
    // overrun ring at that ring's next record, ovf_after's.
    // SAFETY: sched_getcpu has no arguments.
    let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).unwrap();
    // SAFETY: a cpu_set_t of zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is an online CPU, below CPU_SETSIZE; `set` outlives the call.
    unsafe {
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set),
            0
        );
    }
    let pid = libc::pid_t::try_from(server.pid()).unwrap();
    // SAFETY: signals the exporter child this test started (the guard kills it on failure).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    for _ in 0..BURST {
        drop(
            load_trivial_program(
                bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER,
                bpf_attach_type::BPF_CGROUP_INET_INGRESS,
                "ovf_burst",
            )
            .unwrap(),
        );
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);

    // Once the exporter has drained the ring (the burst's first loads are in
    // the API), the kernel writes its lost record before the next record.
    wait_for_load(&server, "ovf_burst");
    let _kept = load_trivial_program(
        bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER,
        bpf_attach_type::BPF_CGROUP_INET_INGRESS,
        "ovf_after",
    )
    .unwrap();
    let after = wait_for_load(&server, "ovf_after");
    assert_eq!(after["comm"].as_str().map(|c| !c.is_empty()), Some(true));
    assert!(lost_total(&server) > 0, "nothing counted as lost");
}

/// The first load event of this process' program `name`.
fn wait_for_load(server: &Server, name: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = server.json("/api/v1/events?kind=load&limit=1000");
        let found = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name && e["pid"] == std::process::id())
            .cloned();
        if let Some(event) = found {
            return event;
        }
        assert!(
            Instant::now() < deadline,
            "no load event of {name}: {events}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
