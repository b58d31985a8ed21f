//! What the fleet dashboard's Posture row shows in the live test. The exporter
//! runs in a private mount namespace (the host's mounts stay as they are) with
//! securityfs mounted, as the DaemonSet's hostPath gives it, and a bpffs that
//! delegates commands; the shell that mounts them records the LSM list and the
//! lockdown mode there. Each panel must show what this test reads itself: the
//! sysctls from /proc/sys, the kernel config, those records, its own mount.
use std::{collections::BTreeMap, process::Command};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    grafana::Window,
    queries::{seconds, stat_series, target_series},
    support::{prometheus::Prometheus, Server},
};

/// The test's bpffs delegation, as mountinfo (and so the labels) show it.
const DELEGATE_CMDS: &str = "any";
const DELEGATE_MAPS: &str = "hash:array";

/// The records of the exporter's mount namespace; its mounts go with the
/// exporter's process, so nothing is left to unmount.
pub struct PostureNode {
    dir: TempDir,
}

/// Starts `serve` with `args` in a private mount namespace with securityfs
/// and the test's delegating bpffs mounted.
pub fn start_server(args: &[&str]) -> (Server, PostureNode) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bpffs")).unwrap();
    // `exec` keeps one process: the guard that kills the "unshare" child
    // kills the exporter.
    let script = format!(
        "set -e; [ -e /sys/kernel/security/lsm ] || mount -t securityfs securityfs /sys/kernel/security; \
         cat /sys/kernel/security/lsm > {d}/lsm; \
         cat /sys/kernel/security/lockdown > {d}/lockdown 2>/dev/null || true; \
         mount -t bpf -o delegate_cmds={DELEGATE_CMDS},delegate_maps={DELEGATE_MAPS} bpf {d}/bpffs; \
         exec \"$0\" \"$@\"",
        d = dir.path().display()
    );
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ];
    let server = Server::start_under(&wrapper, args).unwrap();
    (server, PostureNode { dir })
}

fn sysctl(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.trim().to_owned()
}

/// CONFIG_BPF_JIT_ALWAYS_ON as `zcat /proc/config.gz` (else
/// /boot/config-<release>) says: its value, or `n`.
fn jit_always_on() -> String {
    let out = Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .unwrap();
    let text = if out.status.success() {
        String::from_utf8(out.stdout).unwrap()
    } else {
        let release = sysctl("/proc/sys/kernel/osrelease");
        std::fs::read_to_string(format!("/boot/config-{release}")).expect("a kernel config")
    };
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_BPF_JIT_ALWAYS_ON="))
        .unwrap_or("n")
        .to_owned()
}

impl PostureNode {
    fn mountpoint(&self) -> String {
        self.dir.path().join("bpffs").to_str().unwrap().to_owned()
    }

    fn record(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// The bracketed lockdown mode the shell read, if the kernel has one.
    fn lockdown(&self) -> Option<String> {
        let text = self.record("lockdown");
        let (_, rest) = text.split_once('[')?;
        Some(rest.split_once(']')?.0.to_owned())
    }

    pub fn check_panels(
        &self,
        prometheus: &Prometheus,
        fleet: &Value,
        concrete: &BTreeMap<&str, String>,
        window: Window,
    ) {
        let unprivileged = sysctl("/proc/sys/kernel/unprivileged_bpf_disabled");
        let jit_enable = sysctl("/proc/sys/net/core/bpf_jit_enable");
        let jit_harden = sysctl("/proc/sys/net/core/bpf_jit_harden");
        let node = json!({"job": concrete["job"], "instance": concrete["instance"]});
        let lockdown = self.lockdown();

        let settings = |ref_id| {
            target_series(
                prometheus,
                fleet,
                "Nodes per setting",
                Some(ref_id),
                concrete,
                window,
            )
        };
        let one = |labels: Value| vec![(labels, 1.0)];
        assert_eq!(
            settings("A"),
            one(json!({"unprivileged_bpf_disabled": unprivileged}))
        );
        assert_eq!(settings("B"), one(json!({"jit_enable": jit_enable})));
        assert_eq!(settings("C"), one(json!({"jit_harden": jit_harden})));
        let modes = lockdown.iter().map(|mode| (json!({"mode": mode}), 1.0));
        assert_eq!(settings("D"), modes.collect::<Vec<_>>());
        assert_eq!(settings("E"), one(json!({"value": jit_always_on()})));
        let bpf_lsm = self.record("lsm").trim().split(',').any(|l| l == "bpf");
        let expected: &[(Value, f64)] = if bpf_lsm { &[(json!({}), 1.0)] } else { &[] };
        assert_eq!(settings("F"), expected);

        let per_node = |ref_id| {
            target_series(
                prometheus,
                fleet,
                "Posture per node",
                Some(ref_id),
                concrete,
                window,
            )
        };
        let number = |text: &str| text.parse::<f64>().unwrap();
        assert_eq!(per_node("A"), [(node.clone(), number(&unprivileged))]);
        assert_eq!(per_node("B"), [(node.clone(), number(&jit_enable))]);
        assert_eq!(per_node("C"), [(node.clone(), number(&jit_harden))]);
        let mut with_mode = node.clone();
        with_mode["mode"] = json!(lockdown);
        let expected: Vec<(Value, f64)> =
            lockdown.iter().map(|_| (with_mode.clone(), 1.0)).collect();
        assert_eq!(per_node("D"), expected);

        // JIT use: the programs' JIT bytes Prometheus scraped in the same
        // page, against the limit this test reads.
        let ratio = per_node("E");
        assert_eq!(ratio.len(), 1, "{ratio:?}");
        let jited = prometheus
            .api(
                "/api/v1/query",
                &[
                    (
                        "query",
                        &format!(
                            "sum(bpf_prog_jited_bytes{{instance=\"{}\"}})",
                            concrete["instance"]
                        ),
                    ),
                    ("time", &seconds(window.to_ms)),
                ],
            )
            .unwrap();
        let jited: f64 = number(jited["result"][0]["value"][1].as_str().unwrap());
        let limit = number(&sysctl("/proc/sys/net/core/bpf_jit_limit"));
        assert!(jited > 0.0, "the exporter's own iterators are JIT-compiled");
        assert!(
            (ratio[0].1 - jited / limit).abs() <= 1e-12 * ratio[0].1,
            "{ratio:?} vs {jited} / {limit}"
        );
        let over_time = target_series(
            prometheus,
            fleet,
            "JIT use per node",
            None,
            concrete,
            window,
        );
        assert_eq!(
            over_time,
            [(
                json!({"instance": concrete["instance"], "job": concrete["job"], "__name__": "bpf_node_jit_used_ratio"}),
                ratio[0].1
            )]
        );

        // The test's own mount, with exactly its options; other delegating
        // mounts the namespace copied from the host may be listed too.
        let mounts = target_series(
            prometheus,
            fleet,
            "bpffs mounts delegating commands",
            None,
            concrete,
            window,
        );
        let mut ours = node.clone();
        ours["mountpoint"] = json!(self.mountpoint());
        ours["delegate_cmds"] = json!(DELEGATE_CMDS);
        ours["delegate_maps"] = json!(DELEGATE_MAPS);
        let found: Vec<&(Value, f64)> = mounts
            .iter()
            .filter(|(labels, _)| labels["mountpoint"] == ours["mountpoint"])
            .collect();
        assert_eq!(found, [&(ours, 1.0)], "{mounts:?}");

        let stat = |title| stat_series(prometheus, fleet, title, concrete, window);
        let count = |yes: bool| vec![(json!({}), if yes { 1.0 } else { 0.0 })];
        assert_eq!(
            stat("Nodes allowing unprivileged BPF"),
            count(unprivileged == "0")
        );
        assert_eq!(
            stat("Nodes without JIT hardening"),
            count(jit_harden == "0")
        );
        assert_eq!(
            stat("bpffs mounts delegating commands"),
            [(json!({}), mounts.len() as f64)]
        );
        assert_eq!(stat("Highest JIT use"), [(json!({}), ratio[0].1)]);
    }
}
