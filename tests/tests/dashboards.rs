//! The Grafana dashboards in dashboards/: structural checks of their JSON, and
//! every panel query, its template variables substituted as Grafana would, run
//! against a real Prometheus that scraped the real exporter while the
//! fixture's objects existed, a child process in a pod's cgroup held some of
//! them, run-time statistics were on, a bpffs delegated BPF commands and a
//! child in a pod's cgroup loaded and unloaded programs. Every query must parse
//! and return at least one series.
#[path = "dashboards/events.rs"]
mod events;
#[path = "dashboards/grafana.rs"]
mod grafana;
#[path = "dashboards/owners.rs"]
mod owners;
#[path = "dashboards/posture.rs"]
mod posture;
#[path = "dashboards/queries.rs"]
mod queries;
#[path = "dashboards/structure.rs"]
mod structure;
mod support;

use std::{
    collections::BTreeMap,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aya::maps::HashMap;
use e2e_tests::{have_root, Fixture, FIXTURE_PROG};
use grafana::Window;
use queries::{check_dashboard, panel_series, Mode};
use serde_json::Value;
use support::{
    prometheus::{Prometheus, SCRAPE_INTERVAL},
    STARTUP,
};

/// Each dashboard file and its uid, which links and bookmarks depend on.
const DASHBOARDS: &[(&str, &str)] = &[
    ("fleet.json", "bpf-inventory-fleet"),
    ("node.json", "bpf-inventory-node"),
    ("maps.json", "bpf-inventory-maps"),
    ("owners.json", "bpf-inventory-owners"),
];

const JOB: &str = "bpf";
/// Entries put into fixture_hash (max_entries 1000): 95 % full, above the
/// Maps dashboard's default fill threshold of 90 %.
const NEARLY_FULL: u32 = 950;
/// Panel width in pixels Grafana would use as max data points.
const MAX_DATA_POINTS: i64 = 1000;

fn load(file: &str) -> Value {
    let path = format!("{}/../dashboards/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn dashboards_are_well_formed() {
    // Every JSON file in dashboards/ is one of the tested dashboards.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            !name.ends_with(".json") || DASHBOARDS.iter().any(|(file, _)| *file == name),
            "dashboards/{name} is not in DASHBOARDS, so it would go untested"
        );
    }
    let uids: Vec<&str> = DASHBOARDS.iter().map(|(_, uid)| *uid).collect();
    for (file, uid) in DASHBOARDS {
        let dashboard = load(file);
        assert_eq!(dashboard["uid"], *uid, "{file}: the uid must stay stable");
        let problems = structure::problems(&dashboard);
        assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
        // Data links point at our dashboards by uid.
        let text = dashboard.to_string();
        for link in text.split("/d/").skip(1) {
            let target = link.split(['/', '?', '"']).next().unwrap_or_default();
            assert!(
                uids.contains(&target),
                "{file}: link to unknown uid {target}"
            );
        }
    }
}

/// Plants one defect into a dashboard.
type Plant = fn(&mut Value);

/// The structural checks are not vacuous: each defect planted in a copy of a
/// real dashboard is reported.
#[test]
fn structural_checks_report_planted_defects() {
    let original = load("fleet.json");
    assert!(structure::problems(&original).is_empty());
    let defects: &[(&str, Plant, &str)] = &[
        (
            "duplicate id",
            |d| d["panels"][1]["id"] = d["panels"][0]["id"].clone(),
            "duplicate id",
        ),
        (
            "overlap",
            |d| d["panels"][1]["gridPos"]["x"] = 1.into(),
            "overlap",
        ),
        (
            "off the grid",
            |d| d["panels"][0]["gridPos"]["w"] = 25.into(),
            "outside",
        ),
        (
            "no unit",
            |d| d["panels"][0]["fieldConfig"]["defaults"]["unit"] = "".into(),
            "no unit",
        ),
        (
            "no description",
            |d| d["panels"][2]["description"] = Value::Null,
            "no description",
        ),
        (
            "fixed data source",
            |d| d["panels"][0]["datasource"]["uid"] = "P1809F7CD0C75ACF3".into(),
            "is not the variable",
        ),
        (
            "target data source",
            |d| d["panels"][0]["targets"][0]["datasource"] = Value::Null,
            "target A: datasource",
        ),
        (
            "unknown metric",
            |d| d["panels"][2]["targets"][0]["expr"] = "sum(bpf_program_count)".into(),
            "bpf_program_count is not a metric",
        ),
        ("no __inputs", |d| d["__inputs"] = Value::Null, "__inputs"),
        (
            "requires",
            |d| d["__requires"][2] = Value::Null,
            "__requires lacks panel",
        ),
        (
            "uid",
            |d| d["uid"] = "bpf inventory / fleet".into(),
            "uid \"bpf inventory / fleet\"",
        ),
        ("links", |d| d["links"] = Value::Null, "no link"),
    ];
    for (name, plant, expected) in defects {
        let mut broken = original.clone();
        plant(&mut broken);
        let problems = structure::problems(&broken);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{name}: expected a problem containing {expected:?}, got {problems:?}"
        );
    }
}

/// dashboards/README.md lists the PromQL behind every panel, verbatim.
#[test]
fn readme_lists_every_panel_and_query() {
    let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/README.md");
    let readme = std::fs::read_to_string(readme_path).unwrap();
    for (file, _) in DASHBOARDS {
        let dashboard = load(file);
        for panel in grafana::panels(&dashboard) {
            let title = panel["title"].as_str().unwrap();
            assert!(
                readme.contains(title),
                "README lacks panel {title:?} of {file}"
            );
            for target in grafana::targets(panel) {
                let expr = target["expr"].as_str().unwrap();
                assert!(
                    readme.contains(expr),
                    "README lacks the query of {title:?}: {expr}"
                );
            }
        }
    }
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

#[test]
fn every_panel_query_returns_series_from_a_real_prometheus() {
    if !have_root("every_panel_query_returns_series_from_a_real_prometheus") {
        return;
    }
    let mut fixture = Fixture::load().unwrap();
    fixture.fill_hash(0..NEARLY_FULL);
    let pod_owner = owners::PodOwner::start(&fixture);
    // A 1 s refresh: bpf_exporter_map_memory_age_seconds (the fleet health
    // panel) exists only once the background refresh has run.
    // In its own mount namespace with securityfs and a delegating bpffs: the
    // Posture row then has every series a node can give.
    let (server, posture_node) =
        posture::start_server(&["--enable-bpf-stats", "--map-memory-refresh", "1s"]);
    server.wait_ready().unwrap();
    let interval = SCRAPE_INTERVAL.as_secs();
    let config = format!(
        "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n  evaluation_interval: {interval}s\n\
         rule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{}']\n",
        server.address
    );
    let prometheus = Prometheus::start(&config, |dir| {
        Ok(std::fs::write(
            dir.join("rules.yml"),
            owners::kube_pod_info_rule(),
        )?)
    })
    .unwrap();
    prometheus
        .wait_until("two scrapes", |p| Ok(p.scrapes()? >= 2.0))
        .unwrap();

    // The dashboard range starts now; during it, fixture_hash_np grows while
    // Prometheus scrapes at least three more times.
    let from_ms = now_ms();
    let scrapes_at_start = prometheus.scrapes().unwrap();
    let map = fixture.ebpf.map_mut("fixture_hash_np").unwrap();
    let mut growing: HashMap<_, u64, u32> = HashMap::try_from(map).unwrap();
    let deadline = Instant::now() + STARTUP;
    let mut key = 0u64;
    let mut loader = None;
    // The scrape under way when the child loads may predate its loads: two
    // more complete scrapes have them.
    let mut until = scrapes_at_start + 4.0;
    while prometheus.scrapes().unwrap() < until {
        assert!(Instant::now() < deadline, "Prometheus stopped scraping");
        // After a scrape inside the range: `offset $__range` at its end, off
        // by up to half a second, still reads a sample from before the loads.
        let scrapes = prometheus.scrapes().unwrap();
        if loader.is_none() && scrapes >= scrapes_at_start + 1.0 {
            loader = Some(events::Loader::load());
            until = until.max(scrapes + 2.0);
        }
        if key < 400 {
            for _ in 0..10 {
                growing.insert(key, 1, 0).unwrap();
                key += 1;
            }
        }
        thread::sleep(Duration::from_millis(250));
    }
    let window = Window {
        from_ms,
        to_ms: now_ms(),
        scrape_ms: i64::try_from(SCRAPE_INTERVAL.as_millis()).unwrap(),
        max_data_points: MAX_DATA_POINTS,
    };
    assert_eq!(prometheus.value("up").unwrap(), Some(1.0));
    assert_eq!(
        prometheus.value("bpf_exporter_bpf_stats_enabled").unwrap(),
        Some(1.0),
        "run-time statistics must be on"
    );

    let concrete = BTreeMap::from([
        ("job", JOB.to_owned()),
        ("instance", server.address.to_string()),
        ("prog_type", "tracing".to_owned()),
        ("map_type", "hash".to_owned()),
    ]);
    let mut failures = Vec::new();
    for (file, _) in DASHBOARDS {
        let dashboard = load(file);
        let targets: usize = grafana::panels(&dashboard)
            .iter()
            .map(|p| grafana::targets(p).count())
            .sum();
        for mode in [Mode::Concrete, Mode::All] {
            let report = check_dashboard(&prometheus, &dashboard, mode, &concrete, window)
                .unwrap_or_else(|e| panic!("{file} ({mode:?}): {e:#}"));
            assert_eq!(report.queries, targets, "{file}: one query per target");
            failures.extend(report.failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the panels show about the fixture's own objects.
    let id = |id: u32| Value::from(id.to_string());
    let maps = load("maps.json");
    let nearly_full = panel_series(&prometheus, &maps, "Maps nearly full", &concrete, window);
    let full_id = id(fixture.map_id("fixture_hash"));
    let fill = nearly_full
        .iter()
        .find(|(labels, _)| labels["id"] == full_id);
    assert_eq!(fill.map(|(_, v)| *v), Some(0.95), "{nearly_full:?}");
    let fastest = panel_series(
        &prometheus,
        &maps,
        "Maps growing fastest",
        &concrete,
        window,
    );
    let growing_id = id(fixture.map_id("fixture_hash_np"));
    assert!(
        fastest
            .iter()
            .any(|(labels, v)| labels["id"] == growing_id && *v > 0.0),
        "{fastest:?}"
    );
    let node = load("node.json");
    let loader = loader.expect("the loading child started within the range");
    loader.check_panels(&prometheus, &load("fleet.json"), &concrete, window);
    loader.check_panels(&prometheus, &node, &concrete, window);
    let links = panel_series(&prometheus, &node, "Links", &concrete, window);
    let prog_id = id(fixture.program_id(FIXTURE_PROG));
    assert!(
        links.iter().any(|(labels, _)| labels["prog_id"] == prog_id
            && labels["name"] == FIXTURE_PROG
            && labels["target"] == "bpf_map"),
        "{links:?}"
    );

    posture_node.check_panels(&prometheus, &load("fleet.json"), &concrete, window);

    let owners_dashboard = load("owners.json");
    pod_owner.check_panels(&prometheus, &owners_dashboard, &node, &concrete, window);

    // The check can fail: a typo in a metric name returns nothing, a broken
    // expression does not parse, and both are reported for their panel.
    let mut broken = load("fleet.json");
    let panels = broken["panels"].as_array_mut().unwrap();
    let mut plant = |title: &str, from: &str, to: &str| {
        let panel = panels.iter_mut().find(|p| p["title"] == title).unwrap();
        let expr = panel["targets"][0]["expr"].as_str().unwrap();
        let planted = expr.replacen(from, to, 1);
        assert_ne!(planted, expr, "{title}: nothing replaced");
        panel["targets"][0]["expr"] = planted.into();
    };
    plant("Maps", "bpf_maps", "bpf_mpas");
    plant(
        "Links per node",
        "sum by (instance) (",
        "sum by (instance) ",
    );
    let report = check_dashboard(&prometheus, &broken, Mode::Concrete, &concrete, window).unwrap();
    assert_eq!(report.failures.len(), 2, "{:#?}", report.failures);
    assert!(
        report.failures[0].contains("\"Maps\"") && report.failures[0].contains("no series"),
        "{}",
        report.failures[0]
    );
    assert!(
        report.failures[1].contains("\"Links per node\"")
            && report.failures[1].contains("bad_data"),
        "{}",
        report.failures[1]
    );
}
