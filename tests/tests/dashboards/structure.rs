//! Structural checks of a dashboard's JSON that need no Grafana and no
//! Prometheus: each returns every problem found, so one run names them all.
use std::collections::{BTreeSet, HashSet};

use bpf_inventory_exporter::render::families::FAMILIES;
use serde_json::{json, Value};

use crate::grafana::{panels, targets, variables, DATASOURCE_REF};

/// Metrics a query may use besides the exporter's own: Prometheus' `up`.
const OTHER_METRICS: &[&str] = &["up"];
const GRID_COLUMNS: i64 = 24;

pub fn problems(dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    top_level(dashboard, &mut problems);
    let mut ids = HashSet::new();
    let mut boxes = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("<untitled>");
        let mut problem = |what: String| problems.push(format!("panel {title:?}: {what}"));
        match panel["id"].as_i64() {
            Some(id) if !ids.insert(id) => problem(format!("duplicate id {id}")),
            Some(_) => {}
            None => problem("no numeric id".into()),
        }
        if panel["type"] == "row" {
            continue;
        }
        if !is_datasource_ref(&panel["datasource"]) {
            problem(format!(
                "datasource {} is not the variable",
                panel["datasource"]
            ));
        }
        if panel["description"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty())
        {
            problem("no description".into());
        }
        if panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            problem("no unit".into());
        }
        let mut ref_ids = HashSet::new();
        let mut any_target = false;
        for target in targets(panel) {
            any_target = true;
            let ref_id = target["refId"].as_str().unwrap_or_default();
            if !ref_ids.insert(ref_id) {
                problem(format!("duplicate refId {ref_id:?}"));
            }
            if !is_datasource_ref(&target["datasource"]) {
                problem(format!("target {ref_id}: datasource is not the variable"));
            }
            match target["expr"].as_str() {
                Some(expr) => {
                    for name in unknown_metrics(expr) {
                        problem(format!(
                            "target {ref_id}: {name} is not a metric the exporter serves"
                        ));
                    }
                }
                None => problem(format!("target {ref_id}: no expr")),
            }
        }
        if !any_target {
            problem("no targets".into());
        }
        match grid_box(&panel["gridPos"]) {
            Some(b) => boxes.push((title.to_owned(), b)),
            None => problem(format!(
                "gridPos {} outside the 24-column grid",
                panel["gridPos"]
            )),
        }
    }
    for (i, (a, box_a)) in boxes.iter().enumerate() {
        for (b, box_b) in &boxes[i + 1..] {
            if overlap(*box_a, *box_b) {
                problems.push(format!("panels {a:?} and {b:?} overlap"));
            }
        }
    }
    problems
}

fn top_level(dashboard: &Value, problems: &mut Vec<String>) {
    let uid = dashboard["uid"].as_str().unwrap_or_default();
    if uid.is_empty()
        || uid.len() > 40
        || !uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.push(format!("uid {uid:?}: 1-40 letters, digits, - or _"));
    }
    if !dashboard["id"].is_null() {
        problems.push("id must be null (Grafana assigns it on import)".into());
    }
    if !dashboard["__inputs"].is_array() {
        problems.push("no __inputs".into());
    }
    // Provisioning does not replace ${DS_...} inputs: the variable must do it all.
    if dashboard.to_string().contains("${DS_") {
        problems.push("uses a ${DS_...} input instead of the datasource variable".into());
    }
    let required: BTreeSet<(String, String)> = dashboard["__requires"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (text(&r["type"]), text(&r["id"])))
        .collect();
    let mut needed = vec![("grafana", "grafana"), ("datasource", "prometheus")];
    let types: BTreeSet<String> = panels(dashboard)
        .iter()
        .map(|p| text(&p["type"]))
        .filter(|t| t != "row")
        .collect();
    needed.extend(types.iter().map(|t| ("panel", t.as_str())));
    for (kind, id) in needed {
        if !required.contains(&(kind.to_owned(), id.to_owned())) {
            problems.push(format!("__requires lacks {kind} {id}"));
        }
    }
    match variables(dashboard) {
        Ok(vars) => {
            if !vars.iter().any(|v| {
                v.name == "datasource" && v.kind == "datasource" && v.query == "prometheus"
            }) {
                problems.push("no datasource variable of type prometheus".into());
            }
        }
        Err(e) => problems.push(format!("templating: {e:#}")),
    }
    let tags = dashboard["tags"].as_array().cloned().unwrap_or_default();
    let linked = dashboard["links"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|l| {
            l["type"] == "dashboards"
                && l["includeVars"] == true
                && l["keepTime"] == true
                && l["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().all(|t| tags.contains(t)))
        });
    if !linked {
        problems
            .push("no link to the dashboards with its tags, carrying variables and time".into());
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn is_datasource_ref(v: &Value) -> bool {
    *v == json!({"type": "prometheus", "uid": DATASOURCE_REF})
}

/// Every `bpf_...` word of `expr` that is not an exporter family, and any
/// query using no exporter metric at all.
pub fn unknown_metrics(expr: &str) -> Vec<String> {
    let words: Vec<&str> = expr
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("bpf_"))
        .collect();
    let mut unknown: Vec<String> = words
        .iter()
        .filter(|w| !FAMILIES.iter().any(|f| f.name == **w))
        .map(|w| (*w).to_owned())
        .collect();
    if words.is_empty() && !OTHER_METRICS.iter().any(|m| expr.contains(m)) {
        unknown.push(format!("(no exporter metric in {expr})"));
    }
    unknown
}

/// x, y, width, height of a gridPos inside the grid.
fn grid_box(pos: &Value) -> Option<(i64, i64, i64, i64)> {
    let (x, y, w, h) = (
        pos["x"].as_i64()?,
        pos["y"].as_i64()?,
        pos["w"].as_i64()?,
        pos["h"].as_i64()?,
    );
    (x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= GRID_COLUMNS).then_some((x, y, w, h))
}

fn overlap(a: (i64, i64, i64, i64), b: (i64, i64, i64, i64)) -> bool {
    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
}
