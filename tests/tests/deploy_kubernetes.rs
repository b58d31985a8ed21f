//! deploy/kubernetes: every overlay builds with `kubectl kustomize` and
//! validates offline — Kubernetes kinds strictly against the 1.37 schemas
//! (kubernetes-validate), prometheus-operator kinds against their CRDs'
//! schemas (npm @kubernetes-models/prometheus-operator) — and the built
//! DaemonSet has the least-privilege posture, field by field.
use std::{collections::BTreeMap, path::Path, process::Command, sync::Mutex};

use anyhow::Result;
mod support;

use e2e_tests::deploy::{
    installed, k8s_py, kustomize, repo_path, run, KUBERNETES_VERSION, NODE_MODULES, PYTHON,
};
use serde_json::{json, Value};

const BASE: &str = "deploy/kubernetes";
const OPERATOR: &str = "deploy/kubernetes/overlays/prometheus-operator";
const FULL_STATS: &str = "deploy/kubernetes/overlays/full-stats";
const NAMESPACE: &str = "bpf-inventory-exporter";

/// Builds `dir` and validates every document; the documents. Each overlay is
/// built and validated once per test binary (loading the schemas is slow).
fn build_and_validate(python: &Path, modules: &Path, dir: &str) -> Result<Vec<Value>> {
    static BUILT: Mutex<BTreeMap<String, Vec<Value>>> = Mutex::new(BTreeMap::new());
    if let Some(docs) = BUILT.lock().unwrap().get(dir) {
        return Ok(docs.clone());
    }
    let yaml = kustomize(dir)?;
    let json = k8s_py(python, &["validate", KUBERNETES_VERSION], yaml.as_bytes())?;
    validate_custom_resources(modules, &json)?;
    let docs: Vec<Value> = serde_json::from_str(&json)?;
    BUILT.lock().unwrap().insert(dir.to_owned(), docs.clone());
    Ok(docs)
}

/// tests/deploy/crds.mjs on a JSON array of documents: one line per valid
/// custom resource.
fn validate_custom_resources(modules: &Path, docs_json: &str) -> Result<Vec<String>> {
    let out = run(
        Command::new("node")
            .arg(repo_path("tests/deploy/crds.mjs"))
            .arg(modules),
        docs_json.as_bytes(),
    )?;
    Ok(out.lines().map(str::to_owned).collect())
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}: {found:?}");
    found[0]
}

fn kinds(docs: &[Value]) -> Vec<&str> {
    let mut kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    kinds
}

fn validators(test: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    Some((installed(test, PYTHON)?, installed(test, NODE_MODULES)?))
}

#[test]
fn every_overlay_builds_and_validates_offline() {
    let Some((python, modules)) = validators("every_overlay_builds_and_validates_offline") else {
        return;
    };
    let base = ["DaemonSet", "Namespace", "Service", "ServiceAccount"];
    let operator = [
        "DaemonSet",
        "Namespace",
        "PodMonitor",
        "PrometheusRule",
        "Service",
        "ServiceAccount",
    ];
    for (dir, expected) in [
        (BASE, &base[..]),
        (OPERATOR, &operator[..]),
        (FULL_STATS, &operator[..]),
    ] {
        let docs = build_and_validate(&python, &modules, dir).unwrap();
        assert_eq!(kinds(&docs), expected, "{dir}");
        for doc in &docs {
            assert_eq!(
                doc["metadata"]["labels"]["app.kubernetes.io/name"], "bpf-inventory-exporter",
                "{dir}: {doc}"
            );
            if doc["kind"] != "Namespace" {
                assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{dir}: {doc}");
            }
        }
        let json = serde_json::to_string(&docs).unwrap();
        let valid = validate_custom_resources(&modules, &json).unwrap();
        let custom = docs
            .iter()
            .filter(|d| d["apiVersion"] == "monitoring.coreos.com/v1")
            .count();
        assert_eq!(valid.len(), custom, "{dir}: {valid:?}");
    }
}

/// The validators can fail: what the API server would reject, they reject.
#[test]
fn validators_reject_invalid_manifests() {
    let Some((python, modules)) = validators("validators_reject_invalid_manifests") else {
        return;
    };
    let yaml = kustomize(BASE).unwrap();
    let unknown_field = yaml.replacen("hostIPC: false", "hostIpc: false", 1);
    assert_ne!(unknown_field, yaml);
    let error = k8s_py(
        &python,
        &["validate", KUBERNETES_VERSION],
        unknown_field.as_bytes(),
    )
    .unwrap_err();
    assert!(
        format!("{error:#}").contains("'hostIpc' was unexpected"),
        "{error:#}"
    );

    let mut docs = build_and_validate(&python, &modules, OPERATOR).unwrap();
    let monitor = docs.iter_mut().find(|d| d["kind"] == "PodMonitor").unwrap();
    monitor["spec"]["podMetricsEndpoints"][0]["port"] = json!(10435);
    let error =
        validate_custom_resources(&modules, &serde_json::to_string(&docs).unwrap()).unwrap_err();
    assert!(
        format!("{error:#}").contains("port must be string"),
        "{error:#}"
    );
}

#[test]
fn daemonset_has_the_least_privilege_posture() {
    let Some((python, modules)) = validators("daemonset_has_the_least_privilege_posture") else {
        return;
    };
    let docs = build_and_validate(&python, &modules, BASE).unwrap();
    for rbac in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
        assert!(docs.iter().all(|d| d["kind"] != rbac), "no RBAC: {rbac}");
    }
    let namespace = find(&docs, "Namespace");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    assert_eq!(
        find(&docs, "ServiceAccount")["automountServiceAccountToken"],
        false
    );

    let ds = find(&docs, "DaemonSet");
    assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        "10%"
    );
    let template = &ds["spec"]["template"];
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "10435");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    let pod = &template["spec"];
    assert_eq!(pod["serviceAccountName"], "bpf-inventory-exporter");
    assert_eq!(pod["automountServiceAccountToken"], false);
    // Owners: the walk sees only the exporter's pid namespace (see daemonset.yaml).
    assert_eq!(pod["hostPID"], true);
    // No hostNetwork: the posture's net.core sysctls are absent in the pod
    // (daemonset.yaml, docs/security.md), which is not worth the host's network.
    assert_eq!(pod["hostNetwork"], false);
    assert_eq!(pod["hostIPC"], false);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["tolerations"], json!([{"operator": "Exists"}]));
    assert!(pod.get("securityContext").is_none(), "{pod}");

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert!(pod.get("initContainers").is_none());
    let exporter = &containers[0];
    // The whole object, so that an added field fails too.
    assert_eq!(
        exporter["securityContext"],
        json!({
            "privileged": false,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": false,
            "capabilities": {"drop": ["ALL"], "add": ["BPF", "PERFMON"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    assert_eq!(
        exporter["args"],
        json!(["serve", "--listen", "0.0.0.0:10435", "--log-format", "json"])
    );
    assert_eq!(
        exporter["ports"],
        json!([{"name": "metrics", "containerPort": 10435, "protocol": "TCP"}])
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(exporter[probe]["httpGet"]["path"], path);
        assert_eq!(exporter[probe]["httpGet"]["port"], "metrics");
    }
    // NODE_NAME from the downward API: the OTLP resource's k8s.node.name.
    assert_eq!(
        exporter["env"],
        json!([
            {"name": "RUST_LOG", "value": "info"},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ])
    );
    assert_eq!(
        exporter["resources"],
        json!({"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "128Mi"}})
    );
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "btf", "hostPath": {"path": "/sys/kernel/btf", "type": "Directory"}},
            {"name": "cgroup", "hostPath": {"path": "/sys/fs/cgroup", "type": "Directory"}},
            {"name": "bpffs", "hostPath": {"path": "/sys/fs/bpf", "type": "Directory"}},
            // The node's posture: LSMs and lockdown; the kernel config
            // without /proc/config.gz (a node without /boot still starts).
            {"name": "securityfs", "hostPath": {"path": "/sys/kernel/security", "type": "Directory"}},
            {"name": "boot", "hostPath": {"path": "/boot", "type": "DirectoryOrCreate"}},
        ])
    );
    assert_eq!(
        exporter["volumeMounts"],
        json!([
            {"name": "btf", "mountPath": "/sys/kernel/btf", "readOnly": true},
            {"name": "cgroup", "mountPath": "/sys/fs/cgroup", "readOnly": true},
            {"name": "bpffs", "mountPath": "/sys/fs/bpf", "readOnly": true},
            {"name": "securityfs", "mountPath": "/sys/kernel/security", "readOnly": true},
            {"name": "boot", "mountPath": "/boot", "readOnly": true},
        ])
    );
}

/// The overlays change the DaemonSet only where they say: full-stats adds
/// CAP_SYS_ADMIN and --enable-bpf-stats, the operator overlay nothing.
#[test]
fn overlays_change_only_what_they_say() {
    let Some((python, modules)) = validators("overlays_change_only_what_they_say") else {
        return;
    };
    let base = build_and_validate(&python, &modules, BASE).unwrap();
    let base_ds = find(&base, "DaemonSet");
    let operator = build_and_validate(&python, &modules, OPERATOR).unwrap();
    assert_eq!(find(&operator, "DaemonSet"), base_ds);

    let full = build_and_validate(&python, &modules, FULL_STATS).unwrap();
    let mut full_ds = find(&full, "DaemonSet").clone();
    let exporter = &mut full_ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        exporter["securityContext"]["capabilities"]["add"],
        json!(["BPF", "PERFMON", "SYS_ADMIN"])
    );
    assert_eq!(
        exporter["args"].as_array().unwrap().last().unwrap(),
        "--enable-bpf-stats"
    );
    exporter["securityContext"]["capabilities"]["add"] = json!(["BPF", "PERFMON"]);
    exporter["args"].as_array_mut().unwrap().pop();
    assert_eq!(&full_ds, base_ds);
}

/// The PodMonitor and the Service find the exporter's pods and port; the job
/// label is the name the alert rules use.
#[test]
fn monitors_point_at_the_metrics_port() {
    let Some((python, modules)) = validators("monitors_point_at_the_metrics_port") else {
        return;
    };
    let docs = build_and_validate(&python, &modules, OPERATOR).unwrap();
    let ds = find(&docs, "DaemonSet");
    let pod_labels = &ds["spec"]["template"]["metadata"]["labels"];
    assert_eq!(ds["spec"]["selector"]["matchLabels"], *pod_labels);

    let monitor = &find(&docs, "PodMonitor")["spec"];
    for (key, value) in monitor["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(pod_labels[key], *value, "selector {key}");
    }
    let job_label = monitor["jobLabel"].as_str().unwrap();
    assert_eq!(pod_labels[job_label], "bpf-inventory-exporter");
    let endpoint = &monitor["podMetricsEndpoints"][0];
    assert_eq!(endpoint["port"], "metrics");
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(
        endpoint["relabelings"],
        json!([{"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}])
    );

    let service = &find(&docs, "Service")["spec"];
    assert_eq!(service["clusterIP"], "None");
    assert_eq!(service["selector"], *pod_labels);
    assert_eq!(
        service["ports"],
        json!([{"name": "metrics", "port": 10435, "targetPort": "metrics", "protocol": "TCP"}])
    );
}

/// The exporter run as each overlay's container would run it — uid 0, a
/// bounding set of exactly the added capabilities, no_new_privs, the
/// container's arguments — serves what the overlay promises: the base no map
/// memory (CAP_SYS_ADMIN), full-stats map memory and BPF statistics on.
#[test]
fn each_overlays_capabilities_and_arguments_serve_what_it_promises() {
    if !e2e_tests::have_root("each_overlays_capabilities_and_arguments_serve_what_it_promises") {
        return;
    }
    let Some((python, modules)) =
        validators("each_overlays_capabilities_and_arguments_serve_what_it_promises")
    else {
        return;
    };
    let fixture = e2e_tests::Fixture::load().unwrap();
    let map_id = fixture.map_id("fixture_hash");
    let memory =
        format!("bpf_map_memory_bytes{{id=\"{map_id}\",name=\"fixture_hash\",type=\"hash\"}}");
    for dir in [BASE, FULL_STATS] {
        let docs = build_and_validate(&python, &modules, dir).unwrap();
        let container = &find(&docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0];
        let added: Vec<String> = container["securityContext"]["capabilities"]["add"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_lowercase())
            .collect();
        let caps: String = added.iter().map(|c| format!(",+{c}")).collect();
        // The container's arguments but the listen address and log format,
        // which the test sets (127.0.0.1, a free port, JSON logs).
        let args: Vec<&str> = container["args"].as_array().unwrap()[5..]
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let mut command = Command::new("setpriv");
        command
            .args(["--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all"])
            .arg(format!("--bounding-set=-all{caps}"))
            .arg("--")
            .arg(e2e_tests::exporter_binary());
        let server = support::Server::spawn(command, &args).unwrap();
        server.wait_ready().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        let effective = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:\t"))
            .unwrap();
        // After the iterators load the exporter keeps what it uses at run
        // time (docs/security.md "Privileges at run time"): CAP_BPF, and CAP_SYS_ADMIN
        // for map memory; CAP_PERFMON was needed only to load them.
        let expected: u64 = added
            .iter()
            .map(|c| match c.as_str() {
                "bpf" => 1u64 << 39,
                "perfmon" => 0,
                "sys_admin" => 1 << 21,
                other => panic!("unexpected capability {other}"),
            })
            .sum();
        assert_eq!(
            u64::from_str_radix(effective, 16).unwrap(),
            expected,
            "{dir}"
        );

        let page = server.metrics().unwrap();
        if dir == BASE {
            assert_eq!(added, ["bpf", "perfmon"]);
            assert!(args.is_empty(), "{args:?}");
            assert_eq!(support::sample(&page, &memory), None, "{dir}: {page}");
        } else {
            assert_eq!(args, ["--enable-bpf-stats"]);
            let bytes = support::sample(&page, &memory).unwrap_or_else(|| panic!("{dir}: {page}"));
            assert!(bytes > 0.0, "{memory} {bytes}");
            assert_eq!(
                support::sample(&page, "bpf_exporter_bpf_stats_enabled"),
                Some(1.0),
                "{dir}"
            );
        }
        assert!(
            !server.logs().contains("BPF_ENABLE_STATS failed"),
            "{dir}: {}",
            server.logs()
        );
    }
}
