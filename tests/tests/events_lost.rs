//! A ring too small for a burst: the exporter runs with one-page rings and is
//! stopped (SIGSTOP) while this test loads and unloads a burst of programs on
//! one CPU, so the kernel overruns that CPU's ring whatever the scheduling.
//! Once it runs again `bpf_exporter_events_lost_total` counts the lost
//! records, nothing crashed, and the next program's load and unload arrive
//! with its own id, tag and name.
//!
//! The burst's unloads are all written before SIGCONT: a program whose last
//! reference is its fd, closed by a task, emits its unload records and frees
//! its id in that task before close() returns (kernel/bpf/syscall.c,
//! `__bpf_prog_put` → `bpf_prog_put_deferred`, deferred only from IRQ
//! context); the test checks the ids are gone before it resumes the exporter.
use std::{
    collections::HashSet,
    os::fd::{AsFd, OwnedFd},
    time::{Duration, Instant},
};

use aya_obj::generated::{bpf_attach_type, bpf_prog_type};
use e2e_tests::{
    have_root,
    links::{load_trivial_program, prog_id_and_tag, prog_ids},
};
use serde_json::Value;

#[path = "api/support.rs"]
mod api_support;
use api_support::Server;

/// Programs in the burst: one page holds the records of about 16.
const BURST: usize = 400;

fn load(name: &str) -> (OwnedFd, u32, String) {
    let fd = load_trivial_program(
        bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER,
        bpf_attach_type::BPF_CGROUP_INET_INGRESS,
        name,
    )
    .expect("load a program");
    let (id, tag) = prog_id_and_tag(fd.as_fd()).expect("its id and tag");
    let tag = tag.iter().map(|b| format!("{b:02x}")).collect();
    (fd, id, tag)
}

fn lost_total(server: &Server) -> u64 {
    let page = server.request("GET", "/metrics").expect("/metrics").text();
    page.lines()
        .find_map(|l| l.strip_prefix("bpf_exporter_events_lost_total "))
        .expect("bpf_exporter_events_lost_total on the page")
        .parse()
        .expect("a count")
}

/// Every event the exporter keeps (all pages), and the lost records it counted.
fn all_events(server: &Server) -> (Vec<Value>, u64) {
    let (mut events, mut since, mut lost) = (Vec::new(), 0, None);
    loop {
        let page = server.json(&format!("/api/v1/events?since={since}&limit=1000"));
        // The first page's count is every loss since the start.
        let lost = *lost.get_or_insert_with(|| page["lost"].as_u64().expect("lost"));
        let items = page["items"].as_array().expect("items");
        if items.is_empty() {
            return (events, lost);
        }
        events.extend(items.iter().cloned());
        since = page["next_since"].as_u64().expect("next_since");
    }
}

/// The `kind` event of program `id`, once the exporter has it (None after `within`).
fn wait_for_event(server: &Server, kind: &str, id: u32, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let found = all_events(server)
            .0
            .into_iter()
            .find(|e| e["kind"] == kind && e["prog_id"] == id);
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pins this thread to the CPU it runs on: every record of the test goes into that CPU's ring.
fn pin_to_this_cpu() {
    // SAFETY: sched_getcpu has no arguments.
    let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).expect("a CPU");
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
}

/// Sends `signal` to the exporter (its guard kills it, stopped or not, on failure).
fn signal(server: &Server, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(server.pid()).expect("a pid");
    // SAFETY: signals the exporter child this test started and still holds.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Waits until every thread of the exporter is stopped: SIGSTOP is delivered
/// asynchronously, and a thread still running would read the ring.
fn wait_stopped(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let tasks = format!("/proc/{}/task", server.pid());
    loop {
        let states: Vec<String> = std::fs::read_dir(&tasks)
            .expect("the exporter's threads")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
            // The state follows the comm's closing parenthesis.
            .filter_map(|stat| Some(stat.rsplit_once(')')?.1.trim_start().get(..1)?.to_owned()))
            .collect();
        if !states.is_empty() && states.iter().all(|s| s == "T") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "exporter not stopped: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_burst_overrunning_a_small_ring_counts_lost_records_and_events_go_on() {
    if !have_root("a_burst_overrunning_a_small_ring_counts_lost_records_and_events_go_on") {
        return;
    }
    let server = Server::start_with(&["--events-ring-pages", "1"]).expect("start exporter");
    assert_eq!(lost_total(&server), 0);
    pin_to_this_cpu();
    let comm = std::fs::read_to_string("/proc/self/comm").expect("our comm");

    // The exporter has read this CPU's ring empty: a marker's unload is in its log.
    let (marker, marker_id, _) = load("ovf_mark");
    drop(marker);
    wait_for_event(&server, "unload", marker_id, Duration::from_secs(20))
        .expect("the marker's unload event");

    signal(&server, libc::SIGSTOP);
    wait_stopped(&server);
    // Two programs of a longer name first: with the ring empty, the record
    // sizes (88 + 40 bytes per record pair of these, 80 + 40 of the others)
    // make the page run out between a program's JIT symbol and its event,
    // the case where a symbol read before the loss could name a later program.
    let mut burst = Vec::new();
    for i in 0..BURST + 2 {
        let (fd, id, _) = load(if i < 2 { "ovf_burst_lead" } else { "ovf_burst" });
        drop(fd);
        burst.push(id);
    }
    let alive: HashSet<u32> = prog_ids().expect("program ids").into_iter().collect();
    assert!(
        burst.iter().all(|id| !alive.contains(id)),
        "burst programs still loaded before the exporter resumes"
    );
    signal(&server, libc::SIGCONT);
    // SIGCONT only wakes it: a load before its first read would find the
    // page still full. The first read gives the burst's first load.
    wait_for_event(&server, "load", burst[0], Duration::from_secs(20))
        .expect("the burst's first load event");

    // The kernel writes its LOST record into the overrun ring just before the
    // next record it can write there: this load's. Another test's burst on
    // this CPU could overrun the page again at that moment; a later try then
    // carries that loss. A reader broken after a loss misses all three.
    let mut tries = Vec::new();
    let (after, after_id, after_tag, load_event) = loop {
        let (fd, id, tag) = load("ovf_after");
        if let Some(event) = wait_for_event(&server, "load", id, Duration::from_secs(10)) {
            break (fd, id, tag, event);
        }
        tries.push(fd);
        assert!(tries.len() < 3, "no load event of ovf_after in 3 tries");
    };
    drop(after);
    let unload_event = wait_for_event(&server, "unload", after_id, Duration::from_secs(20))
        .expect("the unload event of ovf_after");
    for (event, kind) in [(&load_event, "load"), (&unload_event, "unload")] {
        assert_eq!(
            (
                &event["kind"],
                &event["tag"],
                &event["name"],
                &event["pid"],
                &event["comm"]
            ),
            (
                &Value::from(kind),
                &Value::from(after_tag.as_str()),
                &Value::from("ovf_after"),
                &Value::from(std::process::id()),
                &Value::from(comm.trim_end())
            ),
            "{event}"
        );
    }

    // Every burst event missing from the log lost at least its own record.
    let (events, lost) = all_events(&server);
    let kept = events
        .iter()
        .filter(|e| {
            e["prog_id"]
                .as_u64()
                .is_some_and(|id| burst.contains(&(id as u32)))
        })
        .count();
    let missing = (2 * burst.len()).saturating_sub(kept) as u64;
    assert!(missing > 0, "one page held the whole burst: {kept} events");
    assert!(
        lost >= missing,
        "lost {lost}, burst events missing {missing}"
    );
    let lost_metric = lost_total(&server);
    assert!(
        lost_metric >= missing,
        "bpf_exporter_events_lost_total {lost_metric}, burst events missing {missing}"
    );
    assert_eq!(
        server.request("GET", "/readyz").expect("/readyz").status,
        200
    );
}
