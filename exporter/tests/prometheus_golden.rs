//! Golden files of the renderings of a fixed inventory (no kernel): the
//! Prometheus pages, the JSON document (`dump --format json`, the API's
//! `/api/v1/inventory`) and the table; compared byte for byte, rewritten with
//! `UPDATE_GOLDEN=1`; the text-format page is linted by `promtool check
//! metrics` in the same run.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use bpf_inventory_exporter::{
    collect::CollectionStats,
    render::{
        families::{Kind, FAMILIES},
        prometheus::{render_metrics, Format, RenderOptions},
    },
    testing::{
        promtool_check_metrics, sample_inventory, sample_inventory_with_error, sample_stats,
    },
};

fn stats() -> CollectionStats {
    sample_stats()
}

fn options() -> RenderOptions {
    RenderOptions {
        per_object: true,
        version: "0.0.0-golden",
        owner_pid_label: false,
        revision: "0123456789ab",
        rustc_version: "1.95.0",
    }
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn compare_with_golden(name: &str, rendered: &str) {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        rendered == expected,
        "{name} differs from the golden file; review the diff and rerun with UPDATE_GOLDEN=1\n\
         --- rendered ---\n{rendered}"
    );
}

#[test]
fn text_format_matches_golden_and_passes_promtool() {
    let page = render_metrics(&sample_inventory(), &stats(), &options(), Format::Text);
    compare_with_golden("metrics.prom", &page);
    let report = promtool_check_metrics(&page).unwrap();
    assert!(report.trim().is_empty(), "promtool: {report}");
}

#[test]
fn openmetrics_matches_golden() {
    let page = render_metrics(
        &sample_inventory(),
        &stats(),
        &options(),
        Format::OpenMetrics,
    );
    compare_with_golden("metrics.openmetrics", &page);
    assert!(page.ends_with("\n# EOF\n"));
    assert_eq!(page.matches("# EOF").count(), 1);
}

/// The families a page declares (`# TYPE name kind`, exact names) and the
/// sample names it has, each once.
fn declared_families(page: &str) -> (BTreeMap<&str, &str>, BTreeSet<&str>) {
    let mut types = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(types.insert(name, kind).is_none(), "{name} declared twice");
        } else if !line.starts_with('#') {
            let end = line
                .find(['{', ' '])
                .expect("sample line: name then labels or value");
            samples.insert(&line[..end]);
        }
    }
    (types, samples)
}

#[test]
fn every_family_of_the_table_is_rendered() {
    let text = render_metrics(&sample_inventory(), &stats(), &options(), Format::Text);
    let om = render_metrics(
        &sample_inventory(),
        &stats(),
        &options(),
        Format::OpenMetrics,
    );
    let (text_types, text_samples) = declared_families(&text);
    let (om_types, om_samples) = declared_families(&om);
    let mut expected_text = BTreeMap::new();
    let mut expected_om = BTreeMap::new();
    let mut om_sample_names = BTreeSet::new();
    for family in FAMILIES {
        let (om_type, om_suffix) = match family.kind {
            Kind::Gauge => ("gauge", ""),
            Kind::Counter => ("counter", "_total"),
            Kind::Info => ("info", "_info"),
        };
        let text_type = if family.kind == Kind::Counter {
            "counter"
        } else {
            "gauge"
        };
        expected_text.insert(family.name, text_type);
        expected_om.insert(family.openmetrics_name(), om_type);
        om_sample_names.insert(format!("{}{om_suffix}", family.openmetrics_name()));
    }
    assert_eq!(text_types, expected_text, "text format: # TYPE lines");
    assert_eq!(om_types, expected_om, "OpenMetrics: # TYPE lines");
    // Whole sample names, each family with samples and no sample outside a
    // family: `bpf_progs` is not satisfied by `bpf_progs_memory_bytes`.
    let text_sample_names = expected_text.keys().map(|n| n.to_string()).collect();
    let strings = |names: BTreeSet<&str>| names.into_iter().map(String::from).collect();
    assert_same_names(
        strings(text_samples),
        text_sample_names,
        "text format samples",
    );
    assert_same_names(strings(om_samples), om_sample_names, "OpenMetrics samples");
}

fn assert_same_names(rendered: BTreeSet<String>, expected: BTreeSet<String>, what: &str) {
    let missing: Vec<_> = expected.difference(&rendered).collect();
    let extra: Vec<_> = rendered.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, not in the family table {extra:?}"
    );
}

#[test]
fn aggregates_only_leaves_out_per_object_series() {
    let options = RenderOptions {
        per_object: false,
        ..options()
    };
    let page = render_metrics(&sample_inventory(), &stats(), &options, Format::Text);
    assert!(!page.contains("{id=\""), "{page}");
    assert!(page.contains("bpf_maps{type=\"hash\"} 1\n"));
    assert!(page.contains("bpf_maps_memory_bytes{type=\"hash\"} 16000\n"));
    let report = promtool_check_metrics(&page).unwrap();
    assert!(report.trim().is_empty(), "promtool: {report}");
}

#[test]
fn owners_are_one_series_per_group_and_pid_only_on_request() {
    let mut inventory = sample_inventory();
    // A second process of the same group holding map 11: no new series without pids.
    let mut owners = inventory.maps[0]
        .holders
        .owners
        .as_deref()
        .unwrap()
        .to_vec();
    let mut forked = owners[0].clone();
    forked.pid = 78;
    owners.push(forked);
    inventory.maps[0].holders.owners = Some(owners.into());
    let page = render_metrics(&inventory, &stats(), &options(), Format::Text);
    let owner_lines = |page: &str| {
        page.lines()
            .filter(|l| l.starts_with("bpf_map_owner_info{id=\"11\""))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        owner_lines(&page),
        [
            "bpf_map_owner_info{id=\"11\",comm=\"bpftool\"} 1",
            "bpf_map_owner_info{id=\"11\",comm=\"edge-agent\",container_id=\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\",pod_uid=\"0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\"} 1",
        ]
    );
    assert!(
        page.contains("bpf_owner_maps{comm=\"bpftool\"} 1\n"),
        "{page}"
    );
    let with_pid = RenderOptions {
        owner_pid_label: true,
        ..options()
    };
    let page = render_metrics(&inventory, &stats(), &with_pid, Format::Text);
    let lines = owner_lines(&page);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines.contains(&"bpf_map_owner_info{id=\"11\",comm=\"bpftool\",pid=\"78\"} 1".to_owned())
    );
    let report = promtool_check_metrics(&page).unwrap();
    assert!(report.trim().is_empty(), "promtool: {report}");
    // Neither `pod` nor `namespace`: they clash with Prometheus target labels.
    for family in FAMILIES {
        assert!(
            !family
                .labels
                .iter()
                .any(|l| ["pod", "namespace"].contains(l)),
            "{}",
            family.name
        );
    }
}

#[test]
fn a_failed_collector_reads_zero_and_the_rest_is_rendered() {
    let page = render_metrics(
        &sample_inventory_with_error(),
        &stats(),
        &options(),
        Format::Text,
    );
    assert!(page.contains("bpf_exporter_collector_success{collector=\"links\"} 0\n"));
    assert!(page.contains("bpf_exporter_collector_success{collector=\"maps\"} 1\n"));
    assert!(page.contains("bpf_exporter_collector_errors_total{collector=\"links\"} 1\n"));
    assert!(!page.contains("bpf_link_info{"));
    assert!(page.contains("bpf_map_entries{id=\"11\",name=\"fixture_hash\",type=\"hash\"} 42\n"));
}

#[test]
fn inventory_document_matches_golden() {
    let json = serde_json::to_string_pretty(&sample_inventory()).unwrap() + "\n";
    compare_with_golden("inventory.json", &json);
}

#[test]
fn inventory_table_matches_golden() {
    let table = bpf_inventory_exporter::render::table::render_table(&sample_inventory());
    compare_with_golden("inventory.table", &table);
}
