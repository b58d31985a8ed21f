//! `serve`'s own families against what the kernel says about the process
//! (/proc/PID), the build info, and rejected requests under a 256-client
//! overload: counted exactly, logged in a bounded number of lines.
mod support;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use e2e_tests::have_root;
use support::{http_get, sample, Server};

fn proc_status_kb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
        .map(|v| v.trim().parse::<f64>().unwrap() * 1024.0)
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

#[test]
fn process_metrics_match_proc_and_build_info_names_the_revision() {
    if !have_root("process_metrics_match_proc_and_build_info_names_the_revision") {
        return;
    }
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    // Soft 2048, hard 4096: the exporter raises the soft limit to the hard one.
    let server = Server::start_under(&["prlimit", "--nofile=2048:4096", "--"], &[]).unwrap();
    server.wait_ready().unwrap();
    let page = server.metrics().unwrap();
    let pid = server.pid();
    let value = |name: &str| sample(&page, name).unwrap_or_else(|| panic!("{name} on the page"));

    assert_eq!(value("process_max_fds"), 4096.0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    // The scrape's own socket and a short-lived iterator fd may come and go.
    assert!(
        (value("process_open_fds") - fds).abs() <= 4.0,
        "{fds} fds: {page}"
    );
    let start = value("process_start_time_seconds");
    assert!(
        (start - started.as_secs_f64()).abs() < 5.0,
        "start time {start} vs {started:?}"
    );
    let rss = value("process_resident_memory_bytes");
    let vm_rss = proc_status_kb(pid, "VmRSS:");
    assert!(
        rss > vm_rss / 2.0 && rss < vm_rss * 2.0,
        "{rss} vs VmRSS {vm_rss}"
    );
    let vsize = value("process_virtual_memory_bytes");
    let vm_size = proc_status_kb(pid, "VmSize:");
    assert!(
        (vsize - vm_size).abs() < vm_size / 4.0,
        "{vsize} vs VmSize {vm_size}"
    );
    assert!(value("process_cpu_seconds_total") > 0.0);

    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .unwrap();
    let revision = String::from_utf8(revision.stdout).unwrap();
    let build_info = page
        .lines()
        .find(|l| l.starts_with("bpf_exporter_build_info{"))
        .unwrap();
    assert!(
        build_info.contains(&format!("revision=\"{}\"", revision.trim())),
        "{build_info}"
    );
    assert!(build_info.contains("rustc_version=\"1."), "{build_info}");
}

#[test]
fn overload_is_counted_exactly_and_logged_in_few_lines() {
    if !have_root("overload_is_counted_exactly_and_logged_in_few_lines") {
        return;
    }
    let server = Server::start(&["--max-requests-in-flight", "1"]).unwrap();
    server.wait_ready().unwrap();
    let lines_before = server.logs().lines().count();
    let url = server.url("/metrics");
    let overloaded = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(2);
    let clients: Vec<_> = (0..256)
        .map(|_| {
            let (url, overloaded) = (url.clone(), Arc::clone(&overloaded));
            thread::spawn(move || {
                while Instant::now() < until {
                    let reply = http_get(&url, &[]).expect("GET /metrics");
                    if reply.status == 503 && reply.body.contains("requests in flight") {
                        overloaded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let overloaded = overloaded.load(Ordering::Relaxed);
    assert!(
        overloaded > 0,
        "256 clients against a limit of 1 got no 503"
    );
    let page = server.metrics().unwrap();
    assert_eq!(
        sample(
            &page,
            "bpf_exporter_http_requests_rejected_total{reason=\"overloaded\"}"
        ),
        Some(overloaded as f64)
    );
    let logs = server.logs();
    let new_lines: Vec<&str> = logs.lines().skip(lines_before).collect();
    // 2 s of overload is within one 10 s log interval: one line.
    let rejected: Vec<&&str> = new_lines
        .iter()
        .filter(|l| l.contains("request rejected"))
        .collect();
    assert_eq!(rejected.len(), 1, "{overloaded} rejections: {new_lines:#?}");
    assert!(
        rejected[0].contains("\"reason\":\"overloaded\""),
        "{}",
        rejected[0]
    );
    assert!(new_lines.len() <= 3, "{new_lines:#?}");
}

#[test]
fn map_memory_is_read_once_at_start_then_every_interval() {
    if !have_root("map_memory_is_read_once_at_start_then_every_interval") {
        return;
    }
    let server = Server::start(&["--map-memory-refresh", "3s"]).unwrap();
    server.wait_ready().unwrap();
    let started = Instant::now();
    let page = server.metrics().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the check needs to come before 3 s"
    );
    // The first collection and this scrape: no background refresh right after start.
    assert_eq!(
        sample(&page, "bpf_exporter_collections_total"),
        Some(2.0),
        "{page}"
    );
    assert_eq!(sample(&page, "bpf_exporter_map_memory_age_seconds"), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = server.metrics().unwrap();
        if let Some(age) = sample(&page, "bpf_exporter_map_memory_age_seconds") {
            assert!(age < 3.5, "{age}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no background refresh within 10 s: {page}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}
