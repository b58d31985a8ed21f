//! A dashboard's queries run against Prometheus as Grafana would run them:
//! variables from their own `label_values()` queries, interpolation from
//! `grafana.rs`, instant or range queries over the dashboard's time range.
use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{
    grafana::{self, Builtins, Selection, Window},
    support::prometheus::Prometheus,
};

/// Panels (dashboard uid, title) allowed to return no series in this test,
/// each with the reason. Empty: the fixture and the exporter's own objects
/// give every panel data.
const MAY_BE_EMPTY: &[(&str, &str, &str)] = &[];

/// How "All"-capable variables are set in one pass over the dashboards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every variable at one value that exists.
    Concrete,
    /// Variables that offer "All" at All.
    All,
}

/// One pass over a dashboard: how many queries ran, and every failure.
pub struct Report {
    pub queries: usize,
    pub failures: Vec<String>,
}

pub fn check_dashboard(
    prometheus: &Prometheus,
    dashboard: &Value,
    mode: Mode,
    concrete: &BTreeMap<&str, String>,
    window: Window,
) -> Result<Report> {
    let uid = dashboard["uid"].as_str().context("uid")?;
    let values = variable_values(prometheus, dashboard, mode, concrete, window)?;
    let builtins = window.builtins()?;
    let mut report = Report {
        queries: 0,
        failures: Vec::new(),
    };
    for panel in grafana::panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        let may_be_empty = MAY_BE_EMPTY
            .iter()
            .any(|(u, t, _)| *u == uid && *t == title);
        for target in grafana::targets(panel) {
            let ref_id = target["refId"].as_str().unwrap_or_default();
            let raw = target["expr"].as_str().context("expr")?;
            let expr = grafana::interpolate(raw, &values, builtins)?;
            // Grafana runs a range query unless only `instant` is set.
            let instant = target["instant"] == true;
            let range = target["range"] == true || !instant;
            let kinds = [(instant, "instant"), (range, "range")];
            for (_, kind) in kinds.into_iter().filter(|(wanted, _)| *wanted) {
                report.queries += 1;
                let what = format!("{uid} / {title:?} / {ref_id} ({kind}, {mode:?})");
                match run_query(prometheus, &expr, kind == "instant", window, builtins) {
                    Ok(0) if !may_be_empty => report
                        .failures
                        .push(format!("{what}: no series from {expr}")),
                    Ok(_) => {}
                    Err(e) => report.failures.push(format!("{what}: {e:#} in {expr}")),
                }
            }
        }
    }
    Ok(report)
}

/// Each template variable formatted for PromQL. A query variable's values
/// come from its own `label_values()` query against Prometheus, and the value
/// the test picks must be among them; a custom variable uses its current value.
pub fn variable_values(
    prometheus: &Prometheus,
    dashboard: &Value,
    mode: Mode,
    concrete: &BTreeMap<&str, String>,
    window: Window,
) -> Result<BTreeMap<String, String>> {
    let builtins = window.builtins()?;
    let mut values = BTreeMap::new();
    for var in grafana::variables(dashboard)? {
        let selection = match var.kind.as_str() {
            // Used only as the data source reference, never in a query.
            "datasource" => continue,
            "custom" => {
                let current = var
                    .current
                    .clone()
                    .context("custom variable without value")?;
                if !var.options.contains(&current) {
                    bail!("${}: current value {current} is not an option", var.name);
                }
                Selection::Values(vec![current])
            }
            "query" => {
                let (selector, label) = grafana::parse_label_values(&var.query)?;
                let selector = grafana::interpolate(selector.unwrap_or("{}"), &values, builtins)?;
                let offered = label_values(prometheus, label, &selector, window)
                    .with_context(|| format!("${}: {}", var.name, var.query))?;
                let want = concrete
                    .get(var.name.as_str())
                    .with_context(|| format!("the test picks no value for ${}", var.name))?;
                if !offered.contains(want) {
                    bail!("${}: {want} is not among {offered:?}", var.name);
                }
                if mode == Mode::All && var.include_all {
                    Selection::All { offered }
                } else {
                    Selection::Values(vec![want.clone()])
                }
            }
            other => bail!("${}: variable type {other} is not emulated", var.name),
        };
        values.insert(var.name.clone(), grafana::format(&var, &selection));
    }
    Ok(values)
}

pub fn seconds(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

fn label_values(
    prometheus: &Prometheus,
    label: &str,
    selector: &str,
    window: Window,
) -> Result<Vec<String>> {
    let data = prometheus.api(
        &format!("/api/v1/label/{label}/values"),
        &[
            ("match[]", selector),
            ("start", &seconds(window.from_ms)),
            ("end", &seconds(window.to_ms)),
        ],
    )?;
    Ok(data
        .as_array()
        .context("label values")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

/// Runs `expr` as Grafana's backend would: an instant query at the end of
/// the range, or a range query with start and end aligned to the step.
/// Returns the number of series.
fn run_query(
    prometheus: &Prometheus,
    expr: &str,
    instant: bool,
    window: Window,
    builtins: Builtins,
) -> Result<usize> {
    let data = if instant {
        prometheus.api(
            "/api/v1/query",
            &[("query", expr), ("time", &seconds(window.to_ms))],
        )?
    } else {
        range_query(prometheus, expr, window, builtins)?
    };
    Ok(data["result"].as_array().context("result")?.len())
}

/// A range query with start and end aligned to the step, as Grafana's backend sends it.
fn range_query(
    prometheus: &Prometheus,
    expr: &str,
    window: Window,
    builtins: Builtins,
) -> Result<Value> {
    let step = builtins.interval_ms;
    prometheus.api(
        "/api/v1/query_range",
        &[
            ("query", expr),
            ("start", &seconds(window.from_ms / step * step)),
            ("end", &seconds(window.to_ms / step * step)),
            ("step", &seconds(step)),
        ],
    )
}

/// The series of the (only) instant query of the panel titled `title`.
pub fn panel_series(
    prometheus: &Prometheus,
    dashboard: &Value,
    title: &str,
    concrete: &BTreeMap<&str, String>,
    window: Window,
) -> Vec<(Value, f64)> {
    target_series(prometheus, dashboard, title, None, concrete, window)
}

/// The series of one target of a panel (`ref_id`, or the first), at the end
/// of the window.
pub fn target_series(
    prometheus: &Prometheus,
    dashboard: &Value,
    title: &str,
    ref_id: Option<&str>,
    concrete: &BTreeMap<&str, String>,
    window: Window,
) -> Vec<(Value, f64)> {
    let panel = grafana::panels(dashboard)
        .into_iter()
        .find(|p| p["title"] == title && p["type"] != "stat")
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    series_at_end(prometheus, dashboard, panel, ref_id, concrete, window)
}

/// The series of the stat panel titled `title` (a title a table may share),
/// at the end of the window.
pub fn stat_series(
    prometheus: &Prometheus,
    dashboard: &Value,
    title: &str,
    concrete: &BTreeMap<&str, String>,
    window: Window,
) -> Vec<(Value, f64)> {
    let panel = grafana::panels(dashboard)
        .into_iter()
        .find(|p| p["title"] == title && p["type"] == "stat")
        .unwrap_or_else(|| panic!("no stat {title:?}"));
    series_at_end(prometheus, dashboard, panel, None, concrete, window)
}

fn series_at_end(
    prometheus: &Prometheus,
    dashboard: &Value,
    panel: &Value,
    ref_id: Option<&str>,
    concrete: &BTreeMap<&str, String>,
    window: Window,
) -> Vec<(Value, f64)> {
    let title = panel["title"].as_str().unwrap_or_default();
    let values = variable_values(prometheus, dashboard, Mode::Concrete, concrete, window).unwrap();
    let target = match ref_id {
        Some(ref_id) => grafana::targets(panel)
            .find(|t| t["refId"] == ref_id)
            .unwrap_or_else(|| panic!("{title:?} has no target {ref_id}")),
        None => &panel["targets"][0],
    };
    let raw = target["expr"].as_str().unwrap();
    let expr = grafana::interpolate(raw, &values, window.builtins().unwrap()).unwrap();
    let data = prometheus
        .api(
            "/api/v1/query",
            &[("query", &expr), ("time", &seconds(window.to_ms))],
        )
        .unwrap();
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// The (only) range query of a panel, run as Grafana runs it over the window,
/// with each series' values added up over the steps: for a per-interval
/// panel, what happened over the whole range.
pub struct RangeSums<'a> {
    pub prometheus: &'a Prometheus,
    pub dashboard: &'a Value,
    pub concrete: &'a BTreeMap<&'a str, String>,
    pub window: Window,
}

impl RangeSums<'_> {
    pub fn of(&self, title: &str) -> Vec<(Value, f64)> {
        let panel = grafana::panels(self.dashboard)
            .into_iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        let values = variable_values(
            self.prometheus,
            self.dashboard,
            Mode::Concrete,
            self.concrete,
            self.window,
        )
        .unwrap();
        let builtins = self.window.builtins().unwrap();
        let raw = panel["targets"][0]["expr"].as_str().unwrap();
        let expr = grafana::interpolate(raw, &values, builtins).unwrap();
        let data = range_query(self.prometheus, &expr, self.window, builtins).unwrap();
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let sum = r["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|point| point[1].as_str().unwrap().parse::<f64>().unwrap())
                    .sum();
                (r["metric"].clone(), sum)
            })
            .collect()
    }
}
