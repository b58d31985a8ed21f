//! `serve` end to end against the real kernel, with the fixture loaded: the
//! live page passes promtool and shows the fixture's true values, format
//! negotiation, readiness, single flight under 50 parallel scrapes, SIGTERM.
mod support;

use std::{
    collections::HashSet,
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

use bpf_inventory_exporter::{
    render::families::{FAMILIES, SERVER_FAMILIES},
    testing::promtool_check_metrics,
};
use e2e_tests::{bpftool, have_root, Fixture, FIXTURE_PROG};
use support::{sample, Server};

const ENTRIES: u32 = 37;

fn fixture_with_entries() -> Fixture {
    let mut fixture = Fixture::load().expect("load fixture");
    fixture.fill_hash(0..ENTRIES);
    fixture
}

#[test]
fn live_page_passes_promtool_and_has_the_fixture_values() {
    if !have_root("live_page_passes_promtool_and_has_the_fixture_values") {
        return;
    }
    let fixture = fixture_with_entries();
    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    let page = server.metrics().unwrap();

    let report = promtool_check_metrics(&page).unwrap();
    assert!(report.trim().is_empty(), "promtool: {report}");

    let hash = format!(
        "{{id=\"{}\",name=\"fixture_hash\",type=\"hash\"}}",
        fixture.map_id("fixture_hash")
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_max_entries{hash}")),
        Some(1000.0)
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_entries{hash}")),
        Some(f64::from(ENTRIES))
    );
    let array = format!(
        "{{id=\"{}\",name=\"fixture_array\",type=\"array\"}}",
        fixture.map_id("fixture_array")
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_entries{array}")),
        Some(16.0)
    );
    let ringbuf = format!("{{id=\"{}\",", fixture.map_id("fixture_ringbuf"));
    assert!(
        !page.contains(&format!("bpf_map_entries{ringbuf}")),
        "a ring buffer's entry count is unknown: no sample, not 0"
    );
    // Full BTF name, not the kernel's 16-byte one; the fixture is not ours.
    let prog = fixture.program_id(FIXTURE_PROG);
    assert!(page.contains(&format!(
        "bpf_prog_info{{id=\"{prog}\",name=\"{FIXTURE_PROG}\",type=\"tracing\",tag=\"{:016x}\",attach_to=\"bpf_iter_bpf_map\",gpl=\"true\"}} 1\n",
        fixture.program_tag(FIXTURE_PROG)
    )), "fixture program info missing or marked self");
    // The exporter's own iterators are marked, not hidden.
    assert!(page.lines().any(|l| l.starts_with("bpf_prog_info{")
        && l.contains("name=\"dump_maps\"")
        && l.contains("self=\"true\"")));
    assert_eq!(
        sample(&page, "bpf_exporter_collector_success{collector=\"maps\"}"),
        Some(1.0)
    );
}

#[test]
fn openmetrics_is_served_when_asked_for() {
    if !have_root("openmetrics_is_served_when_asked_for") {
        return;
    }
    let _fixture = fixture_with_entries();
    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();

    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let om = server.get("/metrics", &[("accept", accept)]).unwrap();
    assert_eq!(om.status, 200);
    assert_eq!(
        om.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.body.ends_with("\n# EOF\n"));
    assert!(om.body.contains("# TYPE bpf_map info\n"));
    assert!(om
        .body
        .contains("# TYPE bpf_exporter_collections counter\n"));

    let text = server.get("/metrics", &[("accept", "text/plain")]).unwrap();
    assert_eq!(
        text.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(!text.body.contains("# EOF"));
    assert!(text.body.contains("# TYPE bpf_map_info gauge\n"));
}

#[test]
fn readyz_turns_ready_once_loaded_and_healthz_before() {
    if !have_root("readyz_turns_ready_once_loaded_and_healthz_before") {
        return;
    }
    let server = Server::start(&[]).unwrap();
    // Alive from the moment it listens, whether or not the iterators are loaded.
    assert_eq!(server.get("/healthz", &[]).unwrap().status, 200);
    let not_ready = server.wait_ready().unwrap();
    for body in &not_ready {
        assert!(
            body.contains("not loaded") || body.contains("no collection"),
            "unexpected reason: {body}"
        );
    }
    let ready = server.get("/readyz", &[]).unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    let landing = server.get("/", &[]).unwrap();
    assert_eq!(landing.status, 200);
    assert!(
        landing.body.contains("href=\"metrics\""),
        "{}",
        landing.body
    );
}

#[test]
fn fifty_parallel_scrapes_share_kernel_reads() {
    if !have_root("fifty_parallel_scrapes_share_kernel_reads") {
        return;
    }
    let fixture = fixture_with_entries();
    // No background refresh: every collection below comes from these scrapes.
    let server = Arc::new(Server::start(&["--map-memory-refresh", "0s"]).unwrap());
    server.wait_ready().unwrap();
    let collections = |page: &str| sample(page, "bpf_exporter_collections_total").unwrap() as u64;
    let before = collections(&server.metrics().unwrap());

    let start = Arc::new(Barrier::new(50));
    let scrapes: Vec<_> = (0..50)
        .map(|_| {
            let (server, start) = (Arc::clone(&server), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                server.metrics().unwrap()
            })
        })
        .collect();
    let pages: Vec<String> = scrapes.into_iter().map(|t| t.join().unwrap()).collect();
    let after = collections(&server.metrics().unwrap());

    let hash = format!(
        "bpf_map_entries{{id=\"{}\",name=\"fixture_hash\",type=\"hash\"}}",
        fixture.map_id("fixture_hash")
    );
    let mut seen = HashSet::new();
    for page in &pages {
        // Complete: every family's header, the fixture's value, the last family.
        assert_eq!(
            page.matches("# TYPE ").count(),
            FAMILIES.len() + SERVER_FAMILIES.len()
        );
        assert_eq!(sample(page, &hash), Some(f64::from(ENTRIES)));
        assert!(page.ends_with('\n'));
        assert!(page.contains("# TYPE bpf_exporter_map_memory_age_seconds gauge\n"));
        seen.insert(collections(page));
    }
    let done = after - before - 1;
    eprintln!("50 parallel scrapes caused {done} kernel collections");
    assert_eq!(
        done,
        seen.len() as u64,
        "each collection served some scrape"
    );
    // Measured here: 1 to 7. The bound leaves room for a loaded CI machine.
    assert!(done <= 15, "{done} collections for 50 concurrent scrapes");
}

#[test]
fn sigterm_exits_zero_within_two_seconds_and_releases_its_programs() {
    if !have_root("sigterm_exits_zero_within_two_seconds_and_releases_its_programs") {
        return;
    }
    let mut server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    let page = server.metrics().unwrap();
    let own: Vec<u64> = page
        .lines()
        .filter(|l| l.starts_with("bpf_prog_info{") && l.contains("self=\"true\""))
        .filter_map(|l| {
            l.strip_prefix("bpf_prog_info{id=\"")?
                .split('"')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(own.len() >= 3, "own programs: {own:?}");

    let (status, took) = server.stop(libc::SIGTERM).unwrap();
    assert_eq!(status.code(), Some(0), "{}", server.logs());
    assert!(took <= Duration::from_secs(2), "exit took {took:?}");
    assert!(server.logs().contains("stopped; BPF iterators released"));

    // The kernel drops the ids once the last fd is closed; poll briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = bpftool(&["prog", "show"]).unwrap();
        let alive: Vec<u64> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .filter(|id| own.contains(id))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "programs still loaded: {alive:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A stop during start-up (iterators loading, first collection) does not wait
/// for the start-up to finish.
#[test]
fn sigterm_during_start_up_exits_zero_within_two_seconds() {
    if !have_root("sigterm_during_start_up_exits_zero_within_two_seconds") {
        return;
    }
    let mut server = Server::start(&[]).unwrap();
    let (status, took) = server.stop(libc::SIGTERM).unwrap();
    assert_eq!(status.code(), Some(0), "{}", server.logs());
    assert!(took <= Duration::from_secs(2), "exit took {took:?}");
}

/// Least privilege: with only CAP_BPF + CAP_PERFMON (uid 65534) `serve`
/// serves everything but map memory, which needs CAP_SYS_ADMIN.
#[test]
fn serves_with_only_cap_bpf_and_cap_perfmon() {
    if !have_root("serves_with_only_cap_bpf_and_cap_perfmon") {
        return;
    }
    let fixture = fixture_with_entries();
    let server = Server::start_as_nobody("+bpf,+perfmon", &[]).unwrap();
    server.wait_ready().unwrap();
    let page = server.metrics().unwrap();
    let hash = format!(
        "{{id=\"{}\",name=\"fixture_hash\",type=\"hash\"}}",
        fixture.map_id("fixture_hash")
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_entries{hash}")),
        Some(f64::from(ENTRIES))
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_max_entries{hash}")),
        Some(1000.0)
    );
    assert_eq!(sample(&page, &format!("bpf_map_memory_bytes{hash}")), None);
    assert!(
        server.logs().contains("CAP_SYS_ADMIN missing"),
        "{}",
        server.logs()
    );
}
