//! What the Owners dashboard shows in the live test: a child process holding a
//! map, a program and a link of the fixture, in a cgroup named as kubelet's
//! systemd driver names a pod's container, and a `kube_pod_info` series for
//! that pod (a recording rule standing in for kube-state-metrics).
use std::{
    collections::BTreeMap,
    fs,
    os::fd::{AsFd, AsRawFd, OwnedFd},
};

use aya_obj::generated::bpf_attach_type;
use bpf_inventory_exporter::collect::cgroup::cgroup2_mount;
use e2e_tests::{
    holders::{kid_binary, kid_holding, make_cgroup, Cleanup, Kid, KID},
    links::link_create,
    Fixture, FIXTURE_PROG, FIXTURE_SHORT_PROG,
};
use serde_json::Value;
use tempfile::TempDir;

use crate::{
    grafana::Window,
    queries::{panel_series, seconds, target_series},
    support::prometheus::Prometheus,
};

pub const POD_UID: &str = "5f0c4c1e-8d2a-4b7e-9a41-2f6d3c9e7b10";
pub const NAMESPACE: &str = "team-a";
pub const POD: &str = "edge-agent-7f9c";

/// The child and what it holds; dropped in field order: the child is killed
/// before its cgroup is removed.
pub struct PodOwner {
    _kid: Kid,
    _link: OwnedFd,
    _cgroups: Cleanup,
    _binary_dir: TempDir,
    pub container_id: String,
    program_id: u32,
}

impl PodOwner {
    /// A child holding the fixture's `fixture_hash`, its long-named program
    /// and a new iterator link of its short-named program.
    pub fn start(fx: &Fixture) -> Self {
        let root = cgroup2_mount(&fs::read_to_string("/proc/self/mountinfo").unwrap())
            .expect("a cgroup2 mount");
        let container_id = "d0cca1".repeat(10) + "beef";
        let path = format!(
            "bpf-dashboards-{}/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{container_id}.scope",
            std::process::id(),
            POD_UID.replace('-', "_")
        );
        let mut cgroups = Cleanup(vec![]);
        let dir = make_cgroup(&root, &path, &mut cgroups);
        let prog_fd = |name: &str| fx.ebpf.program(name).unwrap().fd().unwrap().as_fd();
        let link = link_create(
            prog_fd(FIXTURE_SHORT_PROG),
            0,
            bpf_attach_type::BPF_TRACE_ITER,
            |_| {},
        )
        .expect("iterator link");
        let fds = [
            fx.map_data("fixture_hash").fd().as_fd().as_raw_fd(),
            prog_fd(FIXTURE_PROG).as_raw_fd(),
            link.as_raw_fd(),
        ];
        let binary_dir = tempfile::tempdir().unwrap();
        let kid = kid_holding(&kid_binary(binary_dir.path()), &fds);
        fs::write(dir.join("cgroup.procs"), kid.id().to_string()).expect("move child");
        Self {
            _kid: kid,
            _link: link,
            _cgroups: cgroups,
            _binary_dir: binary_dir,
            container_id,
            program_id: fx.program_id(FIXTURE_PROG),
        }
    }

    /// The Owners dashboard names the child by comm, container and pod, with
    /// the namespace and pod name of its `kube_pod_info`, and adds its memory
    /// up; the Node dashboard's programs table names it as the program's owner.
    pub fn check_panels(
        &self,
        prometheus: &Prometheus,
        dashboard: &Value,
        node: &Value,
        concrete: &BTreeMap<&str, String>,
        window: Window,
    ) {
        let series = |title| panel_series(prometheus, dashboard, title, concrete, window);
        let is_child = |labels: &Value| {
            labels["comm"] == KID
                && labels["container_id"] == self.container_id.as_str()
                && labels["pod_uid"] == POD_UID
        };
        // The Node dashboard's programs table: the child owns the long-named
        // program, by name, type and owner columns.
        let owners = target_series(prometheus, node, "Programs", Some("J"), concrete, window);
        assert!(
            owners.iter().any(|(labels, _)| is_child(labels)
                && labels["id"] == self.program_id.to_string().as_str()
                && labels["name"] == FIXTURE_PROG
                && labels["type"] == "tracing"),
            "{owners:?}"
        );
        let groups = series("Owner groups");
        let programs = groups.iter().find(|(labels, _)| is_child(labels));
        assert_eq!(programs.map(|(_, v)| *v), Some(1.0), "{groups:?}");
        let pods = series("Pods");
        assert!(
            pods.iter().any(|(labels, _)| labels["pod_uid"] == POD_UID
                && labels["namespace"] == NAMESPACE
                && labels["pod"] == POD),
            "{pods:?}"
        );
        // Without kube-state-metrics the pod memory panel still names the pod by uid.
        let mut no_ksm = dashboard.clone();
        for panel in no_ksm["panels"].as_array_mut().unwrap() {
            if panel["title"] == "Memory held by pod" {
                let expr = panel["targets"][0]["expr"].as_str().unwrap();
                panel["targets"][0]["expr"] =
                    expr.replace("kube_pod_info", "kube_pod_info_absent").into();
            }
        }
        let by_uid = panel_series(prometheus, &no_ksm, "Memory held by pod", concrete, window);
        assert!(
            by_uid
                .iter()
                .any(|(labels, _)| labels["pod_uid"] == POD_UID && labels["namespace"].is_null()),
            "{by_uid:?}"
        );
        let at_end = |expr: &str| {
            let data = prometheus
                .api(
                    "/api/v1/query",
                    &[("query", expr), ("time", &seconds(window.to_ms))],
                )
                .unwrap();
            data["result"][0]["value"][1]
                .as_str()
                .unwrap_or_else(|| panic!("{expr}: {data}"))
                .parse::<f64>()
                .unwrap()
        };
        let group = format!("{{comm=\"{KID}\",pod_uid=\"{POD_UID}\"}}");
        let memory = at_end(&format!("bpf_owner_progs_memory_bytes{group}"))
            + at_end(&format!("bpf_owner_maps_memory_bytes{group}"));
        let by_memory = series("Owner groups by memory");
        match by_memory.iter().find(|(labels, _)| is_child(labels)) {
            Some((_, value)) => assert_eq!(*value, memory, "{by_memory:?}"),
            // Other processes of this host may hold more than the child.
            None => assert!(
                by_memory.len() == 10 && by_memory.iter().all(|(_, v)| *v >= memory),
                "the child ({memory} bytes) is missing from {by_memory:?}"
            ),
        }
    }
}

/// A rules file recording `kube_pod_info` for the child's pod, as
/// kube-state-metrics exports it (value 1; namespace, pod and uid labels).
pub fn kube_pod_info_rule() -> String {
    let mut expr = "vector(1)".to_owned();
    for (label, value) in [("namespace", NAMESPACE), ("pod", POD), ("uid", POD_UID)] {
        expr = format!("label_replace({expr}, \"{label}\", \"{value}\", \"\", \"\")");
    }
    format!(
        "groups:\n  - name: kube-state-metrics\n    rules:\n      - record: kube_pod_info\n        expr: '{expr}'\n"
    )
}
