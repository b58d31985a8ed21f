//! What Grafana does to a Prometheus panel query before sending it: template
//! variables formatted like its Prometheus data source (`interpolateQueryExpr`
//! in grafana-prometheus' escaping.ts) and the built-in `$__interval`,
//! `$__rate_interval` and `$__range` computed like its backend
//! (pkg/promlib/models/query.go). Only what our dashboards use is supported;
//! anything else is an error, never passed through silently.
use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The data source reference every panel and target must carry.
pub const DATASOURCE_REF: &str = "${datasource}";

/// A dashboard's panels, rows flattened.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// A panel's targets.
pub fn targets(panel: &Value) -> impl Iterator<Item = &Value> {
    panel["targets"].as_array().into_iter().flatten()
}

/// A template variable, as far as query interpolation cares.
#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub kind: String,
    /// `query` of a query or custom variable.
    pub query: String,
    pub multi: bool,
    pub include_all: bool,
    pub all_value: Option<String>,
    /// Options of a custom variable and its current value.
    pub options: Vec<String>,
    pub current: Option<String>,
}

pub fn variables(dashboard: &Value) -> Result<Vec<Variable>> {
    let list = dashboard["templating"]["list"]
        .as_array()
        .context("templating.list")?;
    list.iter()
        .map(|v| {
            let text = |key: &str| v[key].as_str().map(str::to_owned);
            Ok(Variable {
                name: text("name").context("variable name")?,
                kind: text("type").context("variable type")?,
                query: text("query").unwrap_or_default(),
                multi: v["multi"].as_bool().unwrap_or(false),
                include_all: v["includeAll"].as_bool().unwrap_or(false),
                all_value: text("allValue").filter(|s| !s.is_empty()),
                options: v["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["value"].as_str().map(str::to_owned))
                    .collect(),
                current: v["current"]["value"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

/// What is selected in a variable: some of its values, or "All".
#[derive(Clone, Debug)]
pub enum Selection {
    Values(Vec<String>),
    /// "All": the custom all value, or else every value the variable offers.
    All {
        offered: Vec<String>,
    },
}

/// A variable's selection as text in a PromQL query, as Grafana formats it.
pub fn format(variable: &Variable, selection: &Selection) -> String {
    match selection {
        Selection::All { offered } => match &variable.all_value {
            // A custom all value is inserted as it is, unescaped.
            Some(all) => all.clone(),
            None => format_values(variable, offered),
        },
        Selection::Values(values) => format_values(variable, values),
    }
}

fn format_values(variable: &Variable, values: &[String]) -> String {
    if !variable.multi && !variable.include_all {
        return values.iter().map(|v| regular_escape(v)).collect();
    }
    let escaped: Vec<String> = values.iter().map(|v| special_regex_escape(v)).collect();
    match escaped.as_slice() {
        [one] => one.clone(),
        more => format!("({})", more.join("|")),
    }
}

/// `prometheusRegularEscape` (classic behaviour).
fn regular_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\\\'")
}

/// `prometheusSpecialRegexEscape` (classic behaviour): regex metacharacters
/// get two backslashes, one for the PromQL string and one for the regex.
fn special_regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str("\\\\");
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The dashboard time range and the data source's scrape interval, in ms.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    pub scrape_ms: i64,
    /// Max data points of the panel: Grafana uses the panel's width in pixels.
    pub max_data_points: i64,
}

/// The built-in interval variables of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtins {
    /// `$__interval`, also the step of a range query.
    pub interval_ms: i64,
    pub rate_interval_ms: i64,
    pub range_s: i64,
}

impl Window {
    pub fn builtins(&self) -> Result<Builtins> {
        let range_ms = self.to_ms - self.from_ms;
        // Grafana's interval is range / max data points, rounded to a "nice"
        // value, but never below the scrape interval. The rounding table is not
        // emulated: the test keeps its range short enough that the scrape
        // interval wins (and the safe interval, range / 11 000, is smaller still).
        if range_ms / self.max_data_points >= self.scrape_ms {
            bail!("a {range_ms} ms range needs Grafana's interval rounding, which is not emulated");
        }
        let interval_ms = self.scrape_ms;
        Ok(Builtins {
            interval_ms,
            rate_interval_ms: (interval_ms + self.scrape_ms).max(4 * self.scrape_ms),
            range_s: (range_ms as f64 / 1000.0).round() as i64,
        })
    }
}

/// `gtime.FormatInterval`: the largest whole unit.
fn format_interval(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Go's `time.Duration.String()` for whole milliseconds ("4s", "1m30s").
fn go_duration(ms: i64) -> String {
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) if ms < 1000 => format!("{ms}ms"),
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// `expr` with every `$name` / `${name}` replaced: built-ins from `builtins`,
/// template variables from `values` (already formatted). `$1`-style
/// references (label_replace) are left alone, as Grafana does; an unknown
/// variable is an error.
pub fn interpolate(
    expr: &str,
    values: &BTreeMap<String, String>,
    builtins: Builtins,
) -> Result<String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').context("unclosed ${")?;
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let value = match name {
            "" => bail!("a lone $ in {expr}"),
            n if n.chars().all(|c| c.is_ascii_digit()) => format!("${n}"),
            "__interval" => format_interval(builtins.interval_ms),
            "__rate_interval" => go_duration(builtins.rate_interval_ms),
            "__range" => format!("{}s", builtins.range_s),
            n => values
                .get(n)
                .with_context(|| format!("unknown variable ${n} in {expr}"))?
                .clone(),
        };
        out.push_str(&value);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `label_values(selector, label)` or `label_values(label)`.
pub fn parse_label_values(query: &str) -> Result<(Option<&str>, &str)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .with_context(|| format!("not a label_values() query: {query}"))?;
    Ok(match inner.rsplit_once(',') {
        Some((selector, label)) => (Some(selector.trim()), label.trim()),
        None => (None, inner.trim()),
    })
}

#[test]
fn formats_like_grafana() {
    let mut var = Variable {
        name: "instance".into(),
        kind: "query".into(),
        query: String::new(),
        multi: true,
        include_all: true,
        all_value: None,
        options: vec![],
        current: None,
    };
    let one = Selection::Values(vec!["10.0.0.1:10435".into()]);
    assert_eq!(format(&var, &one), r"10\\.0\\.0\\.1:10435");
    let two = Selection::Values(vec!["a.b".into(), "c".into()]);
    assert_eq!(format(&var, &two), r"(a\\.b|c)");
    let all = Selection::All {
        offered: vec!["x".into(), "y".into()],
    };
    assert_eq!(format(&var, &all), "(x|y)");
    var.all_value = Some(".+".into());
    assert_eq!(format(&var, &all), ".+");
    var.multi = false;
    var.include_all = false;
    assert_eq!(format(&var, &one), "10.0.0.1:10435");

    assert_eq!(format_interval(1000), "1s");
    assert_eq!(format_interval(120_000), "2m");
    assert_eq!(go_duration(4000), "4s");
    assert_eq!(go_duration(90_000), "1m30s");
    assert_eq!(go_duration(3_600_000), "1h0m0s");
    let window = Window {
        from_ms: 0,
        to_ms: 9_600,
        scrape_ms: 1000,
        max_data_points: 1000,
    };
    let builtins = window.builtins().unwrap();
    assert_eq!(
        builtins,
        Builtins {
            interval_ms: 1000,
            rate_interval_ms: 4000,
            range_s: 10
        }
    );
    let values = BTreeMap::from([("top".to_string(), "10".to_string())]);
    assert_eq!(
        interpolate(
            r#"topk($top, rate(x[$__rate_interval])) offset ${__range} + label_replace(y, "a", "$1", "b", "(.*)")[$__interval]"#,
            &values,
            builtins
        )
        .unwrap(),
        r#"topk(10, rate(x[4s])) offset 10s + label_replace(y, "a", "$1", "b", "(.*)")[1s]"#
    );
    assert!(interpolate("x{a=\"$nope\"}", &values, builtins).is_err());
    assert_eq!(
        parse_label_values(r#"label_values(bpf_maps{job=~"$job"}, type)"#).unwrap(),
        (Some(r#"bpf_maps{job=~"$job"}"#), "type")
    );
}
