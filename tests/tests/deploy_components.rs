//! deploy/kubernetes/components: web-config (TLS + basic auth from a Secret,
//! tcpSocket probes, the PodMonitor over HTTPS), otlp (OTEL_* variables) and
//! pin (an init container). Each is built with `kubectl kustomize` on top of
//! the operator overlay, validated offline like the overlays
//! (deploy_kubernetes.rs), and changes the DaemonSet and PodMonitor only where
//! it says, field by field. Then the real binary runs each as the pod would:
//! the container's capabilities (setpriv), arguments and environment, with
//! the paths moved into test directories — a real Prometheus scrapes it with
//! the PodMonitor's TLS and basic-auth settings, a test OTLP receiver gets
//! k8s.node.name, and `cat progs.debug` lists the fixture after the init
//! container's `pin`.
#[path = "otlp/receiver.rs"]
mod receiver;
mod support;

use std::{
    fs, net::TcpStream, os::unix::fs::PermissionsExt, path::PathBuf, process::Command, sync::Mutex,
    time::Duration,
};

use e2e_tests::{
    deploy::{installed, k8s_py, repo_path, run, KUBERNETES_VERSION, NODE_MODULES, PYTHON},
    exporter_binary, have_root,
    pinned::Bpffs,
    Fixture, FIXTURE_PROG,
};
use receiver::{resource_attribute, Answer, Receiver};
use serde_json::{json, Value};
use support::{prometheus::Prometheus, sample, Server};

const OPERATOR: &str = "deploy/kubernetes/overlays/prometheus-operator";
const WEB_CONFIG: &str = "deploy/kubernetes/components/web-config";
const OTLP: &str = "deploy/kubernetes/components/otlp";
const PIN: &str = "deploy/kubernetes/components/pin";

/// `kubectl kustomize` of a kustomization made for the test: the operator
/// overlay plus `components`, validated like the overlays; the documents.
/// (kustomize takes only relative paths, so the kustomization is written in a
/// temporary directory under tests/deploy.)
fn build(components: &[&str]) -> Option<Vec<Value>> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _serial = LOCK.lock().unwrap();
    let python = installed("deploy_components", PYTHON)?;
    let modules = installed("deploy_components", NODE_MODULES)?;
    let dir = tempfile::Builder::new()
        .prefix(".kustomize-")
        .tempdir_in(repo_path("tests/deploy"))
        .unwrap();
    let up = "../../../";
    let listed: String = components
        .iter()
        .map(|c| format!("  - {up}{c}\n"))
        .collect();
    fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  - {up}{OPERATOR}\ncomponents:\n{listed}"
        ),
    )
    .unwrap();
    let yaml = run(
        Command::new("kubectl").arg("kustomize").arg(dir.path()),
        b"",
    )
    .unwrap();
    let json = k8s_py(&python, &["validate", KUBERNETES_VERSION], yaml.as_bytes()).unwrap();
    let valid = run(
        Command::new("node")
            .arg(repo_path("tests/deploy/crds.mjs"))
            .arg(modules),
        json.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        valid.lines().count(),
        2,
        "PodMonitor, PrometheusRule: {valid}"
    );
    Some(serde_json::from_str(&json).unwrap())
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

/// The named item of a list of objects with a `name`, removed from it.
fn take_named(list: &mut Value, name: &str) -> Value {
    let items = list.as_array_mut().unwrap();
    let at = items
        .iter()
        .position(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {items:?}"));
    items.remove(at)
}

/// A container's `securityContext.capabilities.add`, lower case, as setpriv
/// takes them.
fn capabilities(container: &Value) -> Vec<String> {
    container["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_lowercase())
        .collect()
}

/// setpriv as the container runs: uid 0, a bounding set of exactly `caps`,
/// no inheritable or ambient capabilities, no_new_privs; then the exporter.
fn as_container(caps: &[String]) -> Command {
    let added: String = caps.iter().map(|c| format!(",+{c}")).collect();
    let mut command = Command::new("setpriv");
    command
        .args(["--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all"])
        .arg(format!("--bounding-set=-all{added}"))
        .arg("--")
        .arg(exporter_binary());
    command
}

#[test]
fn all_components_together_build_and_validate() {
    let Some(docs) = build(&[WEB_CONFIG, OTLP, PIN]) else {
        return;
    };
    let pod = &find(&docs, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["name"], "pin");
    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        volumes,
        ["btf", "cgroup", "bpffs", "securityfs", "boot", "web-config"]
    );
}

/// web-config: the Secret mounted read-only (0400) and named by
/// --web.config.file, tcpSocket probes, the https scrape annotation, and the
/// PodMonitor's scheme, CA and basic auth from the scrape Secret; nothing else.
#[test]
fn web_config_component_changes_only_what_it_says() {
    let (Some(base), Some(docs)) = (build(&[]), build(&[WEB_CONFIG])) else {
        return;
    };
    let mut ds = find(&docs, "DaemonSet").clone();
    let template = &mut ds["spec"]["template"];
    let annotations = template["metadata"]["annotations"].as_object_mut().unwrap();
    assert_eq!(annotations.remove("prometheus.io/scheme").unwrap(), "https");
    let pod = &mut template["spec"];
    assert_eq!(
        take_named(&mut pod["volumes"], "web-config"),
        json!({"name": "web-config", "secret": {"secretName": "bpf-inventory-exporter-web-config", "defaultMode": 256}})
    );
    let exporter = &mut pod["containers"][0];
    assert_eq!(
        exporter["args"].as_array_mut().unwrap().pop().unwrap(),
        "--web.config.file=/etc/bpf-inventory-exporter/web/web-config.yml"
    );
    assert_eq!(
        take_named(&mut exporter["volumeMounts"], "web-config"),
        json!({"name": "web-config", "mountPath": "/etc/bpf-inventory-exporter/web", "readOnly": true})
    );
    // Basic auth covers /healthz and a probe cannot read a Secret: TCP probes.
    assert_eq!(
        exporter["livenessProbe"],
        json!({"tcpSocket": {"port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3})
    );
    assert_eq!(
        exporter["readinessProbe"],
        json!({"tcpSocket": {"port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 5})
    );
    let base_ds = find(&base, "DaemonSet");
    let base_exporter = &base_ds["spec"]["template"]["spec"]["containers"][0];
    exporter["livenessProbe"] = base_exporter["livenessProbe"].clone();
    exporter["readinessProbe"] = base_exporter["readinessProbe"].clone();
    assert_eq!(&ds, base_ds);

    let mut monitor = find(&docs, "PodMonitor").clone();
    let endpoint = monitor["spec"]["podMetricsEndpoints"][0]
        .as_object_mut()
        .unwrap();
    assert_eq!(endpoint.remove("scheme").unwrap(), "https");
    assert_eq!(
        endpoint.remove("tlsConfig").unwrap(),
        json!({"serverName": "bpf-inventory-exporter", "ca": {"secret": {"name": "bpf-inventory-exporter-scrape", "key": "ca.crt"}}})
    );
    assert_eq!(
        endpoint.remove("basicAuth").unwrap(),
        json!({
            "username": {"name": "bpf-inventory-exporter-scrape", "key": "username"},
            "password": {"name": "bpf-inventory-exporter-scrape", "key": "password"},
        })
    );
    assert_eq!(&monitor, find(&base, "PodMonitor"));
}

/// otlp: three OTEL_* variables after the base's, nothing else.
#[test]
fn otlp_component_changes_only_what_it_says() {
    let (Some(base), Some(docs)) = (build(&[]), build(&[OTLP])) else {
        return;
    };
    let mut ds = find(&docs, "DaemonSet").clone();
    let env = ds["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap();
    let added: Vec<Value> = env.drain(2..).collect();
    assert_eq!(
        added,
        [
            json!({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.opentelemetry.svc:4318"}),
            json!({"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"}),
            json!({"name": "OTEL_METRIC_EXPORT_INTERVAL", "value": "60000"}),
        ]
    );
    assert_eq!(&ds, find(&base, "DaemonSet"));
    assert_eq!(find(&docs, "PodMonitor"), find(&base, "PodMonitor"));
}

/// pin: an init container with CAP_DAC_OVERRIDE besides CAP_BPF and
/// CAP_PERFMON, the host's /sys/fs/bpf writable for it alone (the exporter
/// mounts it read-only); the exporter container is unchanged.
#[test]
fn pin_component_changes_only_what_it_says() {
    let (Some(base), Some(docs)) = (build(&[]), build(&[PIN])) else {
        return;
    };
    let mut ds = find(&docs, "DaemonSet").clone();
    let pod = ds["spec"]["template"]["spec"].as_object_mut().unwrap();
    // The init container mounts the base's bpffs volume (read-only in the
    // exporter) read-write.
    let init = pod.remove("initContainers").unwrap();
    assert_eq!(init.as_array().unwrap().len(), 1);
    let init = &init[0];
    assert_eq!(init["name"], "pin");
    // The base's image with its tag (copied after `images:` set it).
    assert_eq!(init["image"], "bpf-inventory-exporter:0.1.0");
    assert_eq!(init["image"], pod["containers"][0]["image"]);
    assert_eq!(
        init["args"],
        json!([
            "pin",
            "--dir",
            "/sys/fs/bpf/bpf-inventory",
            "--mode",
            "0400"
        ])
    );
    assert_eq!(
        init["securityContext"],
        json!({
            "privileged": false,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": false,
            "capabilities": {"drop": ["ALL"], "add": ["BPF", "PERFMON", "DAC_OVERRIDE"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    assert_eq!(
        init["volumeMounts"],
        json!([
            {"name": "btf", "mountPath": "/sys/kernel/btf", "readOnly": true},
            {"name": "bpffs", "mountPath": "/sys/fs/bpf"},
        ])
    );
    assert_eq!(&ds, find(&base, "DaemonSet"));
}

/// The web-config component run for real: the Secret's files 0400 root (as
/// defaultMode 256 mounts them) read by the exporter under the container's
/// capabilities; the probes' TCP connect succeeds while an HTTP GET of
/// /healthz without credentials gets 401 (why the probes are tcpSocket); a
/// real Prometheus with the PodMonitor's scheme, serverName, CA and basic
/// auth scrapes it (`up` 1).
#[test]
fn web_config_component_serves_tls_and_basic_auth_as_the_podmonitor_scrapes() {
    if !have_root("web_config_component_serves_tls_and_basic_auth_as_the_podmonitor_scrapes") {
        return;
    }
    let Some(docs) = build(&[WEB_CONFIG]) else {
        return;
    };
    let pod = &find(&docs, "DaemonSet")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "web-config")
        .unwrap()["mountPath"]
        .as_str()
        .unwrap();
    let mode = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "web-config")
        .unwrap()["secret"]["defaultMode"]
        .as_u64()
        .unwrap() as u32;
    let endpoint = &find(&docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0];
    let server_name = endpoint["tlsConfig"]["serverName"].as_str().unwrap();

    // The Secret's keys as files in a directory standing in for the mount.
    let secret = tempfile::tempdir().unwrap();
    support::pki::server_pki(secret.path(), server_name).unwrap();
    let hash = bcrypt::hash("scrape-password", 4).unwrap();
    fs::write(
        secret.path().join("web-config.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    for file in ["web-config.yml", "server.pem", "server-key.pem"] {
        fs::set_permissions(secret.path().join(file), fs::Permissions::from_mode(mode)).unwrap();
    }
    let args: Vec<String> = container["args"].as_array().unwrap()[5..]
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace(mount, secret.path().to_str().unwrap())
        })
        .collect();
    assert_eq!(args.len(), 1, "{args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::spawn(as_container(&capabilities(container)), &args).unwrap();
    let port = server.address.port();

    // tcpSocket probe: the connection is accepted.
    TcpStream::connect_timeout(&server.address, Duration::from_secs(5)).unwrap();
    // An httpGet probe (it skips certificate checks) without credentials: 401.
    let probe = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout), "401", "{probe:?}");

    // Prometheus with the PodMonitor's endpoint settings; the address the
    // pod's IP would be is 127.0.0.1 here, the name checked is serverName.
    let job = "bpf-inventory-exporter";
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: {job}\n    scheme: {scheme}\n    metrics_path: {path}\n\
         \x20   tls_config:\n      ca_file: ca.crt\n      server_name: {server_name}\n\
         \x20   basic_auth:\n      username: prometheus\n      password_file: password\n\
         \x20   static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
        scheme = endpoint["scheme"].as_str().unwrap(),
        path = endpoint["path"].as_str().unwrap(),
    );
    let ca = secret.path().join("ca.crt");
    let prometheus = Prometheus::start(&config, |dir| {
        fs::copy(&ca, dir.join("ca.crt"))?;
        fs::write(dir.join("password"), "scrape-password")?;
        Ok(())
    })
    .unwrap();
    prometheus
        .wait_until("up 1 over TLS with basic auth", |p| {
            Ok(p.value(&format!("up{{job=\"{job}\"}}"))? == Some(1.0))
        })
        .unwrap();
    assert_eq!(
        prometheus
            .value(&format!(
                "bpf_exporter_collector_success{{job=\"{job}\",collector=\"programs\"}}"
            ))
            .unwrap(),
        Some(1.0)
    );
}

/// The otlp component run for real: the container's OTEL_* variables (the
/// endpoint pointed at a test receiver, the interval shortened) and NODE_NAME
/// as the downward API sets it: the push arrives with k8s.node.name; with the
/// receiver gone, failures are counted in the series
/// BPFExporterOTLPExportsFailing reads.
#[test]
fn otlp_component_pushes_with_the_node_name_and_counts_failures() {
    if !have_root("otlp_component_pushes_with_the_node_name_and_counts_failures") {
        return;
    }
    let Some(docs) = build(&[OTLP]) else {
        return;
    };
    let container = &find(&docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0];
    let receiver = Receiver::start(Answer::Ok).unwrap();
    let mut command = as_container(&capabilities(container));
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap();
        let value = match name {
            "NODE_NAME" => {
                assert_eq!(var["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
                "node-a".to_owned()
            }
            "OTEL_EXPORTER_OTLP_ENDPOINT" => receiver.http_url(),
            "OTEL_METRIC_EXPORT_INTERVAL" => "500".to_owned(),
            _ => var["value"].as_str().unwrap().to_owned(),
        };
        command.env(name, value);
    }
    let server = Server::spawn(command, &[]).unwrap();
    let received = receiver
        .wait_for("a push", Duration::from_secs(60), |r| !r.is_empty())
        .unwrap();
    assert!(!received[0].grpc, "http/protobuf");
    assert_eq!(
        resource_attribute(&received[0].request, "k8s.node.name").as_deref(),
        Some("node-a")
    );
    receiver.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = server.metrics().unwrap();
        let failures = sample(&page, "bpf_exporter_otlp_exports_total{result=\"failure\"}");
        if failures.unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failure counted\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pin component's init container run for real, its /sys/fs/bpf a bpffs
/// of the test's: with its capabilities `cat progs.debug` then lists the
/// fixture's program by id and name; without CAP_DAC_OVERRIDE the first pin
/// fails and leaves no file (why the component adds it).
#[test]
fn pin_init_container_makes_progs_debug_readable() {
    if !have_root("pin_init_container_makes_progs_debug_readable") {
        return;
    }
    let Some(docs) = build(&[PIN]) else {
        return;
    };
    let init = &find(&docs, "DaemonSet")["spec"]["template"]["spec"]["initContainers"][0];
    let fixture = Fixture::load().unwrap();
    let prog_id = fixture.program_id(FIXTURE_PROG);
    let bpffs = Bpffs::mount();
    let host = bpffs.path().to_str().unwrap();
    let args: Vec<String> = init["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().replace("/sys/fs/bpf", host))
        .collect();
    let dir = PathBuf::from(&args[2]);
    assert_eq!(dir, bpffs.path().join("bpf-inventory"));

    let caps = capabilities(init);
    let without: Vec<String> = caps
        .iter()
        .filter(|c| *c != "dac_override")
        .cloned()
        .collect();
    assert_eq!(without.len(), caps.len() - 1);
    let out = as_container(&without).args(&args).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(!dir.join("progs.debug").exists());

    let out = as_container(&caps).args(&args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let progs = fs::read_to_string(dir.join("progs.debug")).unwrap();
    let line = progs
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&prog_id.to_string()))
        .unwrap_or_else(|| panic!("prog {prog_id} in\n{progs}"));
    assert!(line.contains(FIXTURE_PROG), "{line}");
    let mode = fs::metadata(dir.join("progs.debug"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o400);
    let out = Command::new(exporter_binary())
        .args(["unpin", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
