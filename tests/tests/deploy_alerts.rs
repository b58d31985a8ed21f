//! deploy/alerts: promtool checks the rules and runs their unit tests; every
//! alert has its annotations, runbook section and a firing and a silent unit
//! test; the rules use the exporter's own metric names; the PrometheusRule
//! holds the same groups; and a real Prometheus, scraping the exporter while
//! this test fills a hash map it created past 90 %, fires BPFMapNearlyFull.
mod support;

use std::{fs, process::Command, thread, time::Duration};

use bpf_inventory_exporter::render::families::FAMILIES;
use e2e_tests::{
    deploy::{installed, k8s_py, repo_path, yaml_documents, PYTHON},
    have_root, Fixture,
};
use serde_json::{json, Value};
use support::{prometheus::Prometheus, Server};

const RULES: &str = "deploy/alerts/bpf-inventory-exporter.rules.yml";
const PROMETHEUS_RULE: &str = "deploy/kubernetes/components/prometheus-rule/prometheusrule.yaml";

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_path("deploy/alerts"))
        .output()
        .expect("run promtool (apt-get install prometheus)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{report}");
    report
}

#[test]
fn promtool_checks_the_rules_and_passes_their_unit_tests() {
    let check = promtool(&["check", "rules", "bpf-inventory-exporter.rules.yml"]);
    assert!(check.contains("SUCCESS: 20 rules found"), "{check}");
    let tests = promtool(&["test", "rules", "tests.yml"]);
    assert!(tests.contains("SUCCESS"), "{tests}");
}

/// The rule groups of RULES, as JSON.
fn rule_groups(python: &std::path::Path) -> Value {
    let yaml = fs::read_to_string(repo_path(RULES)).unwrap();
    let mut docs = yaml_documents(python, &yaml).unwrap();
    assert_eq!(docs.len(), 1);
    docs.remove(0)["groups"].take()
}

fn alerts(groups: &Value) -> Vec<&Value> {
    groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

#[test]
fn every_alert_has_annotations_a_runbook_section_and_unit_tests() {
    let Some(python) = installed("every_alert_has_annotations_...", PYTHON) else {
        return;
    };
    let groups = rule_groups(&python);
    let runbook = fs::read_to_string(repo_path("deploy/alerts/RUNBOOK.md")).unwrap();
    let tests_yaml = fs::read_to_string(repo_path("deploy/alerts/tests.yml")).unwrap();
    let tests = yaml_documents(&python, &tests_yaml).unwrap().remove(0);
    let alert_tests: Vec<&Value> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["alert_rule_test"].as_array())
        .flatten()
        .collect();
    let alerts = alerts(&groups);
    assert_eq!(alerts.len(), 17);
    for alert in &alerts {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            ["warning", "info"].contains(&alert["labels"]["severity"].as_str().unwrap()),
            "{name}"
        );
        let annotations = &alert["annotations"];
        for key in ["summary", "description"] {
            assert!(
                annotations[key].as_str().is_some_and(|s| s.len() > 20),
                "{name} {key}"
            );
        }
        assert_eq!(
            annotations["runbook_url"],
            format!("deploy/alerts/RUNBOOK.md#{}", name.to_lowercase())
        );
        assert!(
            runbook.contains(&format!("\n## {name}\n")),
            "RUNBOOK.md section {name}"
        );
        let cases: Vec<usize> = alert_tests
            .iter()
            .filter(|t| t["alertname"] == name)
            .map(|t| t["exp_alerts"].as_array().map_or(0, Vec::len))
            .collect();
        assert!(
            cases.contains(&0),
            "{name}: a unit test where it does not fire"
        );
        assert!(
            cases.iter().any(|&n| n > 0),
            "{name}: a unit test where it fires"
        );
    }
    let sections = runbook.lines().filter(|l| l.starts_with("## ")).count();
    assert_eq!(sections, alerts.len(), "one runbook section per alert");
}

/// Every `bpf_*` series a rule reads is a family the exporter exports.
#[test]
fn rules_read_the_exporters_metric_names() {
    let Some(python) = installed("rules_read_the_exporters_metric_names", PYTHON) else {
        return;
    };
    let groups = rule_groups(&python);
    let mut used = Vec::new();
    for rule in groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
    {
        let expr = rule["expr"].as_str().unwrap();
        for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if token.starts_with("bpf_") && !token.contains(':') {
                used.push(token.to_owned());
            }
        }
    }
    used.sort();
    used.dedup();
    assert_eq!(
        used,
        [
            "bpf_exporter_bpf_stats_enabled",
            "bpf_exporter_collector_success",
            "bpf_exporter_otlp_exports_total",
            "bpf_fs_info",
            "bpf_map_entries",
            "bpf_map_max_entries",
            "bpf_maps_memory_bytes",
            "bpf_node_jit_enabled",
            "bpf_node_jit_harden",
            "bpf_node_jit_used_ratio",
            "bpf_node_kernel_config_info",
            "bpf_node_unprivileged_bpf_disabled",
            "bpf_prog_loads_total",
            "bpf_prog_recursion_misses_total",
            "bpf_prog_short_lived_total",
            "bpf_progs",
            "bpf_progs_memory_bytes",
        ]
    );
    for name in &used {
        assert!(
            FAMILIES.iter().any(|f| f.name == name),
            "{name} is not an exporter metric (exporter/src/render/families.rs)"
        );
    }
}

/// The PrometheusRule is the rules file's groups; UPDATE_DEPLOY=1 rewrites it.
#[test]
fn prometheus_rule_holds_the_rules_file() {
    let Some(python) = installed("prometheus_rule_holds_the_rules_file", PYTHON) else {
        return;
    };
    let expected = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "bpf-inventory-exporter"},
        "spec": {"groups": rule_groups(&python)},
    });
    let path = repo_path(PROMETHEUS_RULE);
    if std::env::var_os("UPDATE_DEPLOY").is_some() {
        let yaml = k8s_py(&python, &["to-yaml"], expected.to_string().as_bytes()).unwrap();
        let header = format!(
            "# Generated from {RULES} by tests/tests/deploy_alerts.rs\n\
             # (UPDATE_DEPLOY=1 cargo test -p e2e-tests --test deploy_alerts); edit the rules file.\n"
        );
        fs::write(&path, header + &yaml).unwrap();
    }
    let actual = yaml_documents(&python, &fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        actual,
        vec![expected],
        "{PROMETHEUS_RULE} differs from {RULES}: UPDATE_DEPLOY=1 cargo test -p e2e-tests --test deploy_alerts"
    );
}

/// The rules with BPFMapNearlyFull's `for: 10m` shortened to `for: 3s`.
fn rules_with_short_for() -> String {
    let rules = fs::read_to_string(repo_path(RULES)).unwrap();
    let at = rules.find("- alert: BPFMapNearlyFull").unwrap();
    let (head, tail) = rules.split_at(at);
    assert!(tail.contains("for: 10m"));
    format!("{head}{}", tail.replacen("for: 10m", "for: 3s", 1))
}

#[test]
fn prometheus_fires_map_nearly_full_for_a_map_filled_past_90_percent() {
    if !have_root("prometheus_fires_map_nearly_full_for_a_map_filled_past_90_percent") {
        return;
    }
    let mut fixture = Fixture::load().unwrap();
    let map_id = fixture.map_id("fixture_hash");
    // 900 of 1000: exactly the threshold, which does not fire.
    fixture.fill_hash(0..900);
    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: bpf-inventory-exporter\n    static_configs:\n      - targets: ['{}']\n",
        server.address
    );
    let prometheus = Prometheus::start(&config, |dir| {
        Ok(fs::write(dir.join("rules.yml"), rules_with_short_for())?)
    })
    .unwrap();
    let ratio = format!("bpf_map:entries_per_max_entries:ratio{{id=\"{map_id}\"}}");
    let alert = format!("ALERTS{{alertname=\"BPFMapNearlyFull\",id=\"{map_id}\"}}");
    prometheus
        .wait_until("the fill ratio 0.9 recorded", |p| {
            Ok(p.query(&ratio)?.first().map(|r| r.1) == Some(0.9))
        })
        .unwrap();
    // Longer than the shortened `for` plus a few evaluations.
    thread::sleep(Duration::from_secs(5));
    assert_eq!(prometheus.query(&alert).unwrap(), vec![], "at exactly 90 %");

    fixture.fill_hash(900..950);
    prometheus
        .wait_until("BPFMapNearlyFull firing", |p| {
            let firing = format!(
                "ALERTS{{alertname=\"BPFMapNearlyFull\",id=\"{map_id}\",alertstate=\"firing\"}}"
            );
            Ok(p.query(&firing)?.len() == 1)
        })
        .unwrap();
    let firing = prometheus
        .query(&format!(
            "ALERTS{{alertname=\"BPFMapNearlyFull\",id=\"{map_id}\",alertstate=\"firing\"}}"
        ))
        .unwrap();
    let labels = &firing[0].0;
    assert_eq!(labels["name"], "fixture_hash");
    assert_eq!(labels["type"], "hash");
    assert_eq!(labels["severity"], "warning");
    assert_eq!(labels["job"], "bpf-inventory-exporter");
    assert_eq!(labels["instance"], server.address.to_string());
    assert_eq!(prometheus.query(&ratio).unwrap()[0].1, 0.95);
    let groups = prometheus.rules().unwrap();
    let id_label = map_id.to_string();
    let description = groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r["name"] == "BPFMapNearlyFull")
        .flat_map(|r| r["alerts"].as_array().unwrap())
        .find(|a| a["labels"]["id"] == id_label)
        .map(|a| a["annotations"]["description"].clone())
        .unwrap();
    assert_eq!(
        description,
        format!(
            "Map fixture_hash (id {map_id}, hash) on {} holds 95% of its max_entries; inserts fail once it is full.",
            server.address
        )
    );
}

/// deploy/prometheus/static.yml is a valid configuration that loads the rules,
/// and docs/deploy.md shows it as it is.
#[test]
fn plain_prometheus_config_is_valid_and_in_the_deploy_doc() {
    let out = Command::new("promtool")
        .args(["check", "config", "static.yml"])
        .current_dir(repo_path("deploy/prometheus"))
        .output()
        .expect("run promtool");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("SUCCESS: 20 rules found"), "{report}");

    let config = fs::read_to_string(repo_path("deploy/prometheus/static.yml")).unwrap();
    let body: String = config
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let doc = fs::read_to_string(repo_path("docs/deploy.md")).unwrap();
    assert!(
        doc.contains(&format!("```yaml\n{body}```\n")),
        "docs/deploy.md should show:\n{body}"
    );
}
