//! The results: one JSON document (so later runs can be compared) and one
//! text table with the ratios. Pure: built from plain data, unit-tested.
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{
    load::LoadResult,
    serve::Rss,
    stats::{format_ms, format_ratio, ratio, Summary},
};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub schema: u32,
    pub host: Host,
    pub git_commit: Option<String>,
    pub repetitions: usize,
    pub sizes: Vec<SizeResult>,
    pub load_test: Option<LoadResult>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub kernel_release: String,
    pub cpus: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizeResult {
    /// Objects the bench created.
    pub maps: usize,
    pub programs: usize,
    /// Objects the kernel held during the run (ours, the exporter's, the host's).
    pub seen: Seen,
    /// In measurement order; `summary` is null and `skipped` says why when a
    /// method could not run.
    pub methods: Vec<MethodResult>,
    pub ratios: Ratios,
    pub serve: Option<ServeResult>,
    /// The churn phase (`events.rs`); absent from results before it existed.
    #[serde(default)]
    pub churn: Option<ChurnResult>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub programs: usize,
    pub maps: usize,
    pub links: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: String,
    pub summary: Option<Summary>,
    pub skipped: Option<String>,
}

/// Medians divided: `collect_over_raw` is ours/ours (target ≤ 1.5); the
/// others are baseline / collect (targets ≥ 10 and ≥ 50).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    pub collect_over_raw: Option<f64>,
    pub syscalls_over_collect: Option<f64>,
    pub bpftool_over_collect: Option<f64>,
    /// e2e GET /metrics with events on (the default) / with `--no-events`,
    /// same rounds; then the same while programs churn.
    #[serde(default)]
    pub events_on_over_off: Option<f64>,
    #[serde(default)]
    pub events_on_over_off_churn: Option<f64>,
}

/// The churn phase: a thread loaded and unloaded `programs` programs in
/// `seconds` (`per_second` asked), while both serves were scraped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChurnResult {
    pub per_second: u32,
    /// Churn before the timed rounds began.
    pub warmup_seconds: f64,
    pub programs: u64,
    pub seconds: f64,
    /// How far bpf_prog_loads_total of the events serve grew over the phase
    /// (other loads on the host count too).
    pub loads_counted: Option<f64>,
    /// How far its bpf_exporter_events_lost_total grew.
    #[serde(default)]
    pub lost_counted: Option<f64>,
    /// utime + stime over the phase, per second of it, of each serve.
    pub cpu_ms_per_second_on: f64,
    pub cpu_ms_per_second_off: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServeResult {
    /// Right after start-up, before the first scrape.
    pub start: Rss,
    /// A second after the last scrape: between two Prometheus scrapes.
    pub idle: Rss,
    /// utime + stime of `serve` over `cpu_scrapes` sequential GET /metrics.
    pub cpu_seconds_per_scrape: Option<f64>,
    pub cpu_scrapes: usize,
    pub metrics_bytes: Option<usize>,
}

impl SizeResult {
    pub fn median(&self, method: &str) -> Option<f64> {
        self.methods
            .iter()
            .find(|m| m.method == method)
            .and_then(|m| m.summary.as_ref())
            .map(|s| s.median_ms)
    }

    pub fn compute_ratios(&mut self) {
        let collect = self.median(COLLECT);
        self.ratios = Ratios {
            collect_over_raw: ratio(collect, self.median(RAW)),
            syscalls_over_collect: ratio(self.median(SYSCALLS), collect),
            bpftool_over_collect: ratio(self.median(BPFTOOL), collect),
            events_on_over_off: ratio(self.median(E2E_METRICS), self.median(E2E_NO_EVENTS)),
            events_on_over_off_churn: ratio(
                self.median(E2E_CHURN),
                self.median(E2E_NO_EVENTS_CHURN),
            ),
        };
    }
}

pub const RAW: &str = "raw";
pub const RAW_WITH_OWNERS: &str = "raw + owners walk";
pub const COLLECT: &str = "collect";
pub const COLLECT_NO_OWNERS: &str = "collect --no-owners";
pub const SYSCALLS: &str = "baseline-syscalls";
pub const BPFTOOL: &str = "baseline-bpftool";
pub const RENDER: &str = "render /metrics (no I/O)";
pub const RENDER_KEPT: &str = "render /metrics from kept fragments (no I/O)";
pub const ENCODE_JSON: &str = "encode /api/v1/inventory (no I/O)";
pub const EVENTS_OBSERVE: &str = "events: a collection matched against a full buffer (no I/O)";
pub const E2E_METRICS: &str = "e2e GET /metrics";
pub const E2E_NO_EVENTS: &str = "e2e GET /metrics --no-events";
pub const E2E_CHURN: &str = "e2e GET /metrics while programs churn";
pub const E2E_NO_EVENTS_CHURN: &str = "e2e GET /metrics --no-events while programs churn";

/// The ratio column for one method's row: against raw, and against raw +
/// owners walk too when that row was timed (what `collect` reads in all).
fn ratio_cell(size: &SizeResult, method: &str) -> String {
    let of = |base: &str| match (size.median(method), size.median(base)) {
        (Some(ms), Some(raw)) if raw > 0.0 => Some(format_ratio(Some(ms / raw))),
        _ => None,
    };
    match method {
        SYSCALLS => format!(
            "{} collect",
            format_ratio(size.ratios.syscalls_over_collect)
        ),
        BPFTOOL => format!("{} collect", format_ratio(size.ratios.bpftool_over_collect)),
        RAW => String::new(),
        E2E_NO_EVENTS => format!(
            "events on / off {}",
            format_ratio(size.ratios.events_on_over_off)
        ),
        E2E_NO_EVENTS_CHURN => format!(
            "events on / off {}",
            format_ratio(size.ratios.events_on_over_off_churn)
        ),
        RAW_WITH_OWNERS => of(RAW).map_or_else(String::new, |r| format!("{r} of raw")),
        _ => match (of(RAW), of(RAW_WITH_OWNERS)) {
            (Some(raw), Some(all)) => format!("{raw} of raw, {all} of raw + owners walk"),
            (Some(raw), None) => format!("{raw} of raw"),
            _ => String::new(),
        },
    }
}

/// Time per object (maps + programs in the kernel) of the methods the
/// scaling target is about, per size.
fn per_object_table(out: &mut String, results: &Results) {
    let methods = [
        RAW,
        RAW_WITH_OWNERS,
        COLLECT,
        "e2e GET /metrics",
        "e2e GET /api/v1/inventory",
    ];
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| maps / progs | objects | {} |",
        methods.map(|m| format!("{m} µs/object")).join(" | ")
    );
    let _ = writeln!(out, "|---|--:|{}", "--:|".repeat(methods.len()));
    for size in &results.sizes {
        let objects = size.seen.maps + size.seen.programs;
        let cells = methods.map(|m| match size.median(m) {
            Some(ms) if objects > 0 => format!("{:.3}", ms * 1e3 / objects as f64),
            _ => "—".to_owned(),
        });
        let _ = writeln!(
            out,
            "| {} / {} | {objects} | {} |",
            size.maps,
            size.programs,
            cells.join(" | ")
        );
    }
}

/// The human table (Markdown, so docs/performance.md can hold it verbatim).
pub fn render_table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| maps / progs created (in kernel) | method | median ms | p99 ms | baseline / ours |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|---|");
    for size in &results.sizes {
        for (i, m) in size.methods.iter().enumerate() {
            let label = if i == 0 {
                format!(
                    "{} / {} ({} / {})",
                    size.maps, size.programs, size.seen.maps, size.seen.programs
                )
            } else {
                String::new()
            };
            let (median, p99) = match (&m.summary, &m.skipped) {
                (Some(s), _) => (format_ms(s.median_ms), format_ms(s.p99_ms)),
                (None, Some(why)) => (format!("skipped: {why}"), String::new()),
                (None, None) => ("—".to_owned(), String::new()),
            };
            let _ = writeln!(
                out,
                "| {label} | {} | {median} | {p99} | {} |",
                m.method,
                ratio_cell(size, &m.method)
            );
        }
    }
    per_object_table(&mut out, results);
    let serving: Vec<&SizeResult> = results.sizes.iter().filter(|s| s.serve.is_some()).collect();
    if !serving.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| maps / progs | serve RSS at start MiB | idle MiB | peak MiB | CPU ms per scrape | /metrics bytes |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
        for size in serving {
            let Some(s) = &size.serve else { continue };
            let _ = writeln!(
                out,
                "| {} / {} | {:.1} | {:.1} | {:.1} | {} | {} |",
                size.maps,
                size.programs,
                mib(s.start.rss_kib),
                mib(s.idle.rss_kib),
                mib(s.idle.peak_kib),
                s.cpu_seconds_per_scrape
                    .map_or("n/a".to_owned(), |c| format_ms(c * 1e3)),
                s.metrics_bytes.map_or("n/a".to_owned(), |b| b.to_string()),
            );
        }
    }
    events_lines(&mut out, results);
    if let Some(load) = &results.load_test {
        let _ = writeln!(out);
        let pct: Vec<String> = load
            .latency_ms
            .iter()
            .map(|(p, ms)| format!("p{p:.0} {}", format_ms(*ms)))
            .collect();
        let _ = writeln!(
            out,
            "Load test: {} connections, {:.1} s, Accept-Encoding {}: {} requests, {:.1} req/s, \
             {} errors, latency ms {}; kernel collections {}; serve peak RSS {} MiB",
            load.connections,
            load.duration_s,
            load.accept_encoding.as_deref().unwrap_or("none"),
            load.requests,
            load.requests_per_s,
            load.errors(),
            pct.join(", "),
            load.collections
                .map_or("n/a".to_owned(), |c| format!("{c:.0}")),
            load.serve_peak_kib
                .map_or("n/a".to_owned(), |k| format!("{:.1}", mib(k))),
        );
    }
    for note in &results.notes {
        let _ = writeln!(out, "\nNote: {note}");
    }
    out
}

/// One line per size where events on was timed against `--no-events`.
fn events_lines(out: &mut String, results: &Results) {
    for size in &results.sizes {
        let ratios = &size.ratios;
        if ratios.events_on_over_off.is_none() && size.churn.is_none() {
            continue;
        }
        let _ = write!(
            out,
            "\nEvents, {} / {}: e2e /metrics events on / off {}",
            size.maps,
            size.programs,
            format_ratio(ratios.events_on_over_off)
        );
        if let Some(c) = &size.churn {
            let [loads, lost] = [c.loads_counted, c.lost_counted]
                .map(|n| n.map_or("n/a".to_owned(), |n| format!("{n:.0}")));
            let _ = write!(
                out,
                "; while {:.0} programs a second were loaded and unloaded ({} in {:.1} s, the \
                 first {:.0} s untimed; {loads} loads and {lost} lost records counted by serve): \
                 {}; serve CPU over that time events on {:.2}, --no-events {:.2} ms per second",
                c.programs as f64 / c.seconds,
                c.programs,
                c.seconds,
                c.warmup_seconds,
                format_ratio(ratios.events_on_over_off_churn),
                c.cpu_ms_per_second_on,
                c.cpu_ms_per_second_off,
            );
        }
        let _ = writeln!(out);
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
