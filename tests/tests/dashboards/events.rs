//! What the Events rows show in the live test: a child (`bpf-event-kid`) in a
//! cgroup named as kubelet's systemd driver names a pod's container loads three
//! programs while Prometheus scrapes, unloads one of them at once and holds the
//! other two until the checks are done.
use std::{collections::BTreeMap, process::ChildStdin};

use e2e_tests::{
    event_kid::{EventPod, COMM},
    holders::Kid,
};
use serde_json::Value;

use crate::{
    grafana::Window,
    queries::{panel_series, target_series, RangeSums},
    support::prometheus::Prometheus,
};

const POD_UID: &str = "3b9d2c7e-6f1a-4e8b-b5c4-9d0e1f2a3b4c";
/// What the child does: loads three programs, unloads one of them.
const LOADS: f64 = 3.0;
const UNLOADS: f64 = 1.0;

/// The loading child and its pod cgroup; dropped in field order: the child
/// (its stdin closed, then killed) before its cgroups are removed.
pub struct Loader {
    _stdin: ChildStdin,
    _kid: Kid,
    _cgroup: EventPod,
    container_id: String,
}

impl Loader {
    /// Starts the child in its pod's cgroup and returns once it has loaded
    /// and printed its programs.
    pub fn load() -> Self {
        let container_id = "e7e7".repeat(15) + "cafe";
        let cgroup = EventPod::create(&format!(
            "bpf-dashboards-events-{}/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{container_id}.scope",
            std::process::id(),
            POD_UID.replace('-', "_")
        ));
        let loaded = cgroup.load(env!("CARGO_BIN_EXE_bpf-event-kid").as_ref());
        Self {
            _stdin: loaded.stdin,
            _kid: loaded.kid,
            _cgroup: cgroup,
            container_id,
        }
    }

    /// The Events row of `dashboard` shows the child's loads and unloads by
    /// its comm, container and pod, exactly: per interval (summed over the
    /// range) and over the time range. The child's unloaded program was never
    /// collected (short-lived); no event was lost.
    pub fn check_panels(
        &self,
        prometheus: &Prometheus,
        dashboard: &Value,
        concrete: &BTreeMap<&str, String>,
        window: Window,
    ) {
        let uid = dashboard["uid"].as_str().unwrap();
        let is_child = |labels: &Value| {
            labels["comm"] == COMM
                && labels["container_id"] == self.container_id.as_str()
                && labels["pod_uid"] == POD_UID
        };
        let child = |series: &[(Value, f64)]| -> Vec<f64> {
            series
                .iter()
                .filter(|(labels, _)| is_child(labels))
                .map(|(_, v)| *v)
                .collect()
        };
        let sums = RangeSums {
            prometheus,
            dashboard,
            concrete,
            window,
        };
        for (title, expected) in [
            ("Program loads per interval by loader", LOADS),
            ("Program unloads per interval by loader", UNLOADS),
        ] {
            let series = sums.of(title);
            assert_eq!(child(&series), [expected], "{uid} / {title}: {series:?}");
        }
        let short_lived: f64 = sums
            .of("Short-lived programs per interval")
            .iter()
            .map(|(_, v)| v)
            .sum();
        assert!(short_lived >= 1.0, "{uid}: {short_lived} short-lived");
        let lost = sums.of("Events lost per interval");
        assert!(
            !lost.is_empty() && lost.iter().all(|(_, v)| *v == 0.0),
            "{uid}: {lost:?}"
        );

        let title = "Loaders over the time range";
        let loads = panel_series(prometheus, dashboard, title, concrete, window);
        assert_eq!(child(&loads), [LOADS], "{uid} / {title}: {loads:?}");
        let unloads = target_series(prometheus, dashboard, title, Some("B"), concrete, window);
        assert_eq!(child(&unloads), [UNLOADS], "{uid} / {title}: {unloads:?}");
    }
}
