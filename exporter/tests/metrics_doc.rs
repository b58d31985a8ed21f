//! docs/metrics.md's table of families is `render/families.rs` written out:
//! every family has its row, every row is a family, and every cell (name,
//! type, unit, labels, help) equals the table's. A missing or changed row
//! fails with the row to paste.
use std::collections::BTreeMap;

use bpf_inventory_exporter::render::families::{Family, Kind, Unit, FAMILIES, SERVER_FAMILIES};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md");
const HEADER: &str = "| Metric | Type | Unit | Labels | Help |";

/// The row docs/metrics.md must hold for `family`.
fn expected_row(family: &Family) -> String {
    let kind = match family.kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
        Kind::Info => "info",
    };
    let unit = match family.unit {
        Unit::None => "—",
        Unit::Seconds => "seconds",
        Unit::Bytes => "bytes",
    };
    let labels = if family.labels.is_empty() {
        "—".to_owned()
    } else {
        family.labels.join(", ")
    };
    format!(
        "| `{}` | {kind} | {unit} | {labels} | {} |",
        family.name, family.help
    )
}

/// The rows of the families table, by metric name.
fn documented_rows(doc: &str) -> BTreeMap<String, String> {
    let mut lines = doc.lines().skip_while(|l| l.trim() != HEADER);
    assert!(
        lines.next().is_some(),
        "docs/metrics.md has no table headed {HEADER}"
    );
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let name = line
            .split('`')
            .nth(1)
            .unwrap_or_else(|| panic!("a row without a `name` in its first cell: {line}"));
        let previous = rows.insert(name.to_owned(), line.trim().to_owned());
        assert!(previous.is_none(), "{name} has two rows in docs/metrics.md");
    }
    rows
}

#[test]
fn metrics_doc_table_matches_the_families() {
    let doc = std::fs::read_to_string(DOC).unwrap();
    let mut documented = documented_rows(&doc);
    let mut problems = Vec::new();
    for family in FAMILIES.iter().chain(SERVER_FAMILIES) {
        let expected = expected_row(family);
        match documented.remove(family.name) {
            None => problems.push(format!(
                "{} (render/families.rs) has no row in docs/metrics.md; add:\n{expected}",
                family.name
            )),
            Some(row) if row != expected => problems.push(format!(
                "{}: docs/metrics.md's row differs from render/families.rs\n  doc:      {row}\n  expected: {expected}",
                family.name
            )),
            Some(_) => {}
        }
    }
    for (name, row) in documented {
        problems.push(format!(
            "docs/metrics.md documents {name}, which is no family of render/families.rs:\n{row}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
