//! Owner series on the real page: `promtool check metrics` passes, and a real
//! Prometheus runs docs/owners.md's join of `pod_uid` with kube-state-metrics'
//! `kube_pod_info` (served by a small static target) for a child process the
//! test put in a cgroup named as kubelet's systemd driver names a pod.
mod support;

use std::{
    fs,
    io::{Read, Write},
    net::TcpListener,
    os::fd::{AsFd, AsRawFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use bpf_inventory_exporter::{collect::cgroup::cgroup2_mount, testing::promtool_check_metrics};
use e2e_tests::{
    have_root,
    holders::{kid_binary, kid_holding, make_cgroup, Cleanup, KID},
    Fixture,
};
use support::{prometheus::Prometheus, sample, Server};

/// docs/owners.md's join, verbatim (the test fails if the page says otherwise).
const JOIN: &str = r#"bpf_map_owner_info
  * on (pod_uid) group_left (namespace, pod)
    label_replace(kube_pod_info, "pod_uid", "$1", "uid", "(.+)")"#;

/// Serves one fixed page to every request on 127.0.0.1 until dropped.
struct StaticTarget {
    address: String,
    stop: Arc<AtomicBool>,
}

impl StaticTarget {
    fn serve(page: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
            }
        });
        Self { address, stop }
    }
}

impl Drop for StaticTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn owner_series_pass_promtool_and_join_kube_pod_info() {
    if !have_root("owner_series_pass_promtool_and_join_kube_pod_info") {
        return;
    }
    let doc =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/owners.md")).unwrap();
    assert!(
        doc.contains(JOIN),
        "docs/owners.md's join differs from the tested one"
    );

    let root = cgroup2_mount(&fs::read_to_string("/proc/self/mountinfo").unwrap())
        .expect("a cgroup2 mount");
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fixture::load().expect("load fixture");
    let map_id = fx.map_id("fixture_hash");
    let map_fd = fx.map_data("fixture_hash").fd().as_fd().as_raw_fd();
    let uid = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let container = "c0ffee".repeat(10) + "abcd";
    let path = format!(
        "bpf-owners-prom-{}/kubepods.slice/kubepods-pod{}.slice/crio-{container}.scope",
        std::process::id(),
        uid.replace('-', "_")
    );
    let mut cleanup = Cleanup(vec![]);
    let dir = make_cgroup(&root, &path, &mut cleanup);
    let kid = kid_holding(&kid_binary(tmp.path()), &[map_fd]);
    fs::write(dir.join("cgroup.procs"), kid.id().to_string()).expect("move child");

    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    let page = server.metrics().unwrap();
    let report = promtool_check_metrics(&page).unwrap();
    assert!(report.trim().is_empty(), "promtool: {report}");
    let series = format!(
        "bpf_map_owner_info{{id=\"{map_id}\",comm=\"{KID}\",container_id=\"{container}\",pod_uid=\"{uid}\"}}"
    );
    assert_eq!(sample(&page, &series), Some(1.0), "{series} missing");
    let group =
        format!("bpf_owner_maps{{comm=\"{KID}\",container_id=\"{container}\",pod_uid=\"{uid}\"}}");
    assert_eq!(sample(&page, &group), Some(1.0), "{group} missing");

    let ksm = StaticTarget::serve(format!(
        "# TYPE kube_pod_info gauge\nkube_pod_info{{namespace=\"team-a\",pod=\"edge-agent-7f9c\",uid=\"{uid}\",node=\"vm\"}} 1\n\
         kube_pod_info{{namespace=\"team-b\",pod=\"other\",uid=\"00000000-0000-0000-0000-000000000000\",node=\"vm\"}} 1\n"
    ));
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: bpf\n    static_configs:\n      - targets: ['{}']\n\
         \x20 - job_name: kube-state-metrics\n    static_configs:\n      - targets: ['{}']\n",
        server.address, ksm.address
    );
    let prometheus = Prometheus::start(&config, |_| Ok(())).unwrap();
    let query = JOIN;
    let id = map_id.to_string();
    prometheus
        .wait_until("the join to return the child's map", |p| {
            Ok(p.query(query)?
                .iter()
                .any(|(m, _)| m["id"].as_str() == Some(id.as_str())))
        })
        .unwrap();
    let results = prometheus.query(query).unwrap();
    let ours: Vec<_> = results
        .iter()
        .filter(|(m, _)| m["id"].as_str() == Some(id.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "{results:?}");
    let (labels, value) = ours[0];
    assert_eq!(*value, 1.0);
    assert_eq!(
        (&labels["namespace"], &labels["pod"]),
        (&"team-a".into(), &"edge-agent-7f9c".into())
    );
    assert_eq!(labels["comm"], KID);
    assert_eq!(labels["container_id"], container.as_str());
    // Only pods that hold something join: team-b's pod has no owner series.
    assert!(
        results.iter().all(|(m, _)| m["namespace"] == "team-a"),
        "{results:?}"
    );
    drop(kid);
}
