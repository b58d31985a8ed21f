//! Prometheus exposition of an `Inventory`: text format 0.0.4 or OpenMetrics
//! 1.0, written directly with `write!` from the families table (a metrics
//! library's registry, measured against it, took several times as long at
//! 10 000 maps).
//! Pure: the inventory and the collection's own counters in, text out.
use std::{collections::BTreeMap, fmt::Write};

use super::aggregate::{by_type, Aggregate};

use super::fragments::{Fragments, Labels, MapFragment, ProgFragment};
use super::server_stats::ServerStats;
use super::{
    families::{self as f, Family, Kind},
    labels::{collector_label, label, self_label, Escaped},
};
use crate::{
    collect::CollectionStats,
    inventory::{Collector, Inventory, Link, Map, Program},
};

/// The two exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What the page contains besides the inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Per-program, per-map and per-link series; when off only the aggregates
    /// by type and the exporter's own series are written.
    pub per_object: bool,
    /// The labels of `bpf_exporter_build_info`.
    pub version: &'static str,
    /// A `pid` label on the `bpf_*_owner_info` series.
    pub owner_pid_label: bool,
    pub revision: &'static str,
    pub rustc_version: &'static str,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            per_object: true,
            version: env!("CARGO_PKG_VERSION"),
            owner_pid_label: false,
            revision: env!("BPF_EXPORTER_GIT_REVISION"),
            rustc_version: env!("BPF_EXPORTER_RUSTC_VERSION"),
        }
    }
}

/// Renders the whole page from scratch (no server families, no kept label
/// text): what the golden tests and the bench's render row use (`serve`
/// keeps label text between pages: [`render_page_with`]).
pub fn render_metrics(
    inventory: &Inventory,
    stats: &CollectionStats,
    options: &RenderOptions,
    format: Format,
) -> String {
    let mut out = String::new();
    render_page_with(
        &mut out,
        &mut Fragments::default(),
        inventory,
        stats,
        None,
        options,
        format,
    );
    out
}

/// Renders the whole page at the end of `out`, with the server's own families
/// when `server` is given, reusing the label text of the objects of the previous
/// page (`fragments`, refreshed here to this inventory's objects). The page is
/// the same as from scratch; only the objects whose fragment is missing or
/// stale are formatted again. A caller that knows the size of the previous
/// page passes a buffer of about that capacity; an empty one gets an estimate
/// (about 100 bytes per series), so a multi-MB page is not regrown.
pub fn render_page_with(
    out: &mut String,
    fragments: &mut Fragments,
    inventory: &Inventory,
    stats: &CollectionStats,
    server: Option<&ServerStats>,
    options: &RenderOptions,
    format: Format,
) {
    if out.capacity() == 0 {
        let series =
            9 * inventory.programs.len() + 4 * inventory.maps.len() + inventory.links.len();
        out.reserve(100 * series + 4096);
    }
    let mut page = PageWriter {
        out: std::mem::take(out),
        format,
    };
    if options.per_object {
        fragments.refresh(inventory);
        page.programs(&inventory.programs, fragments.programs());
        page.maps(&inventory.maps, fragments.maps());
        page.links(&inventory.links);
        page.owner_info(inventory, options.owner_pid_label);
    }
    page.aggregates(inventory);
    page.owner_groups(inventory);
    page.node(&inventory.node.posture);
    page.exporter(inventory, stats, options);
    if let Some(server) = server {
        page.server(server);
    }
    if page.format == Format::OpenMetrics {
        page.out.push_str("# EOF\n");
    }
    *out = page.out;
}

/// Writes one page into its buffer.
struct PageWriter {
    out: String,
    format: Format,
}

/// The value of one object's sample in a family, if known.
type ValueOf<T> = fn(&T) -> Option<Value>;

/// A sample value: integers are written exactly, the rest as shortest floats.
#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

// Writing into a String cannot fail, so the fmt::Results below are ignored
// (`let _ =`) rather than threaded through every call.
impl PageWriter {
    fn header(&mut self, family: &Family) {
        let (name, kind) = match self.format {
            Format::Text => (
                family.name,
                match family.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge | Kind::Info => "gauge",
                },
            ),
            Format::OpenMetrics => (
                family.openmetrics_name(),
                match family.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                    Kind::Info => "info",
                },
            ),
        };
        let _ = writeln!(self.out, "# HELP {name} {}", family.help);
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        if let (Format::OpenMetrics, Some(unit)) = (self.format, family.unit.openmetrics()) {
            let _ = writeln!(self.out, "# UNIT {name} {unit}");
        }
    }

    /// One sample; `labels` is already rendered (`a="x",b="y"`, maybe empty).
    fn sample(&mut self, family: &Family, labels: &str, value: Value) {
        self.out.push_str(family.name);
        if !labels.is_empty() {
            self.out.push('{');
            self.out.push_str(labels);
            self.out.push('}');
        }
        self.out.push(' ');
        self.value(value);
    }

    /// The value and the end of the line.
    fn value(&mut self, value: Value) {
        match value {
            // itoa: integers are most samples, and fmt's integer path is slower.
            Value::Int(v) => self.out.push_str(itoa::Buffer::new().format(v)),
            Value::Float(v) => {
                let _ = write!(self.out, "{v}");
            }
        }
        self.out.push('\n');
    }

    /// One sample of an object's series: `name{labels} value`.
    fn object_sample(&mut self, family: &Family, labels: &Labels<'_>, value: Value) {
        self.out.push_str(family.name);
        self.out.push('{');
        self.out.push_str(labels.object);
        self.self_label(labels.is_self);
        self.out.push_str("} ");
        self.value(value);
    }

    /// An object's `_info` sample: its object labels, the info extras, `self`.
    fn info_sample(&mut self, family: &Family, labels: &Labels<'_>) {
        self.out.push_str(family.name);
        self.out.push('{');
        self.out.push_str(labels.object);
        self.out.push_str(labels.info);
        self.self_label(labels.is_self);
        self.out.push_str("} 1\n");
    }

    fn self_label(&mut self, is_self: bool) {
        if is_self {
            self.out.push_str(",self=\"true\"");
        }
    }

    /// A family with one sample per object whose value is known; `fragments`
    /// are the objects' own, in the same order.
    fn per_object<T, F>(
        &mut self,
        family: &Family,
        objects: &[T],
        fragments: &[F],
        labels: impl Fn(&F) -> Labels<'_>,
        value: impl Fn(&T) -> Option<Value>,
    ) {
        self.header(family);
        for (object, fragment) in objects.iter().zip(fragments) {
            if let Some(v) = value(object) {
                self.object_sample(family, &labels(fragment), v);
            }
        }
    }

    fn programs(&mut self, programs: &[Program], fragments: &[ProgFragment]) {
        self.header(&f::PROG_INFO);
        for fragment in fragments {
            self.info_sample(&f::PROG_INFO, &fragment.labels());
        }
        let families: [(&Family, ValueOf<Program>); 8] = [
            (&f::PROG_LOADED, |p| {
                Some(Value::Float(p.loaded_at.timestamp_micros() as f64 / 1e6))
            }),
            (&f::PROG_XLATED, |p| Some(Value::Int(p.xlated_bytes.into()))),
            (&f::PROG_JITED, |p| Some(Value::Int(p.jited_bytes.into()))),
            (&f::PROG_VERIFIED, |p| {
                p.verified_insns.map(|v| Value::Int(v.into()))
            }),
            (&f::PROG_MEMORY, |p| Some(Value::Int(p.memory_bytes))),
            (&f::PROG_RUN_SECONDS, |p| {
                p.run_time_ns.map(|ns| Value::Float(ns as f64 / 1e9))
            }),
            (&f::PROG_RUNS, |p| p.run_count.map(Value::Int)),
            (&f::PROG_RECURSION_MISSES, |p| {
                p.recursion_misses.map(Value::Int)
            }),
        ];
        for (family, value) in families {
            self.per_object(family, programs, fragments, ProgFragment::labels, value);
        }
    }

    fn maps(&mut self, maps: &[Map], fragments: &[MapFragment]) {
        self.header(&f::MAP_INFO);
        for fragment in fragments {
            self.info_sample(&f::MAP_INFO, &fragment.labels());
        }
        let families: [(&Family, ValueOf<Map>); 3] = [
            (&f::MAP_MAX_ENTRIES, |m| {
                Some(Value::Int(m.max_entries.into()))
            }),
            (&f::MAP_ENTRIES, |m| m.entries.map(Value::Int)),
            (&f::MAP_MEMORY, |m| m.memory_bytes.map(Value::Int)),
        ];
        for (family, value) in families {
            self.per_object(family, maps, fragments, MapFragment::labels, value);
        }
    }

    fn links(&mut self, links: &[Link]) {
        self.header(&f::LINK_INFO);
        for l in links {
            let mut labels = String::new();
            let _ = write!(labels, "id=\"{}\"", l.id);
            label(&mut labels, "type", &l.link_type);
            let _ = write!(labels, ",prog_id=\"{}\"", l.prog_id);
            if let Some(attach_type) = &l.attach_type {
                label(&mut labels, "attach_type", attach_type);
            }
            if let Some(target) = &l.target {
                label(&mut labels, "target", &target.to_string());
            }
            self_label(&mut labels, l.is_self);
            self.sample(&f::LINK_INFO, &labels, Value::Int(1));
        }
    }

    fn aggregates(&mut self, inventory: &Inventory) {
        let progs = by_type(&inventory.programs, |p| {
            (&p.prog_type, Some(p.memory_bytes))
        });
        let maps = by_type(&inventory.maps, |m| (&m.map_type, m.memory_bytes));
        let links = by_type(&inventory.links, |l| (&l.link_type, None));
        self.by_type(&f::PROGS, &progs, |a| Some(a.count));
        self.by_type(&f::MAPS, &maps, |a| Some(a.count));
        self.by_type(&f::LINKS, &links, |a| Some(a.count));
        self.by_type(&f::PROGS_MEMORY, &progs, |a| {
            a.memory_known.then_some(a.memory)
        });
        self.by_type(&f::MAPS_MEMORY, &maps, |a| {
            a.memory_known.then_some(a.memory)
        });
    }

    fn by_type(
        &mut self,
        family: &Family,
        types: &BTreeMap<&str, Aggregate>,
        value: impl Fn(&Aggregate) -> Option<u64>,
    ) {
        self.header(family);
        let mut labels = String::new();
        for (object_type, aggregate) in types {
            if let Some(v) = value(aggregate) {
                labels.clear();
                let _ = write!(labels, "type=\"{}\"", Escaped(object_type));
                self.sample(family, &labels, Value::Int(v));
            }
        }
    }

    fn exporter(
        &mut self,
        inventory: &Inventory,
        stats: &CollectionStats,
        options: &RenderOptions,
    ) {
        self.header(&f::BUILD_INFO);
        let build = format!(
            "version=\"{}\",revision=\"{}\",rustc_version=\"{}\"",
            Escaped(options.version),
            Escaped(options.revision),
            Escaped(options.rustc_version)
        );
        self.sample(&f::BUILD_INFO, &build, Value::Int(1));
        self.header(&f::SCRAPE_DURATION);
        self.sample(
            &f::SCRAPE_DURATION,
            "",
            Value::Float(stats.duration.as_secs_f64()),
        );
        self.header(&f::COLLECTOR_SUPPORTED);
        for c in Collector::ALL {
            let supported = inventory.collector_supported(c);
            self.sample(
                &f::COLLECTOR_SUPPORTED,
                &collector_label(c),
                Value::Int(supported.into()),
            );
        }
        self.header(&f::COLLECTOR_SUCCESS);
        for c in Collector::ALL
            .into_iter()
            .filter(|&c| inventory.collector_supported(c))
        {
            let ok = inventory.collector_ok(c);
            self.sample(
                &f::COLLECTOR_SUCCESS,
                &collector_label(c),
                Value::Int(ok.into()),
            );
        }
        self.header(&f::COLLECTOR_ERRORS);
        for (c, errors) in stats.collector_errors_total {
            self.sample(
                &f::COLLECTOR_ERRORS,
                &collector_label(c),
                Value::Int(errors),
            );
        }
        self.header(&f::COLLECTIONS);
        self.sample(&f::COLLECTIONS, "", Value::Int(stats.collections_total));
        self.header(&f::BPF_STATS_ENABLED);
        self.sample(
            &f::BPF_STATS_ENABLED,
            "",
            Value::Int(inventory.bpf_stats_enabled.into()),
        );
        self.header(&f::MAP_MEMORY_AGE);
        if let Some(age) = stats.map_memory_age {
            self.sample(&f::MAP_MEMORY_AGE, "", Value::Float(age.as_secs_f64()));
        }
        // Headers always (every page has every family), samples once pushing.
        self.header(&f::OTLP_EXPORTS);
        if let Some(otlp) = &stats.otlp {
            for (result, count) in [("success", otlp.succeeded), ("failure", otlp.failed)] {
                let labels = format!("result=\"{result}\"");
                self.sample(&f::OTLP_EXPORTS, &labels, Value::Int(count));
            }
        }
        self.header(&f::OTLP_EXPORT_DURATION);
        if let Some(took) = stats.otlp.and_then(|o| o.last_duration) {
            self.sample(
                &f::OTLP_EXPORT_DURATION,
                "",
                Value::Float(took.as_secs_f64()),
            );
        }
        self.header(&f::OTLP_EVENTS_DROPPED);
        if let Some(otlp) = &stats.otlp {
            self.sample(&f::OTLP_EVENTS_DROPPED, "", Value::Int(otlp.events_dropped));
        }
        self.events(stats.events.as_ref());
    }
}

impl PageWriter {
    /// `serve`'s own families: every header, values where known.
    fn server(&mut self, server: &ServerStats) {
        let process = server.process.as_ref();
        let values: [(&Family, Option<Value>); 6] = [
            (
                &f::PROCESS_CPU,
                process.map(|p| Value::Float(p.cpu_seconds)),
            ),
            (
                &f::PROCESS_RESIDENT,
                process.map(|p| Value::Int(p.resident_bytes)),
            ),
            (
                &f::PROCESS_VIRTUAL,
                process.map(|p| Value::Int(p.virtual_bytes)),
            ),
            (
                &f::PROCESS_OPEN_FDS,
                process.map(|p| Value::Int(p.open_fds)),
            ),
            (
                &f::PROCESS_MAX_FDS,
                process.and_then(|p| p.max_fds).map(Value::Int),
            ),
            (
                &f::PROCESS_START_TIME,
                process.map(|p| Value::Float(p.start_time_seconds)),
            ),
        ];
        for (family, value) in values {
            self.header(family);
            if let Some(value) = value {
                self.sample(family, "", value);
            }
        }
        self.header(&f::REQUESTS_REJECTED);
        for &(reason, count) in &server.rejected {
            let labels = format!("reason=\"{}\"", Escaped(reason));
            self.sample(&f::REQUESTS_REJECTED, &labels, Value::Int(count));
        }
        let web_config = server.web_config.as_ref();
        self.header(&f::WEB_CONFIG_LAST_RELOAD);
        if let Some(reloads) = web_config {
            let value = Value::Int(u64::from(reloads.last_successful));
            self.sample(&f::WEB_CONFIG_LAST_RELOAD, "", value);
        }
        self.header(&f::WEB_CONFIG_RELOADS);
        if let Some(reloads) = web_config {
            for (result, count) in [("success", reloads.succeeded), ("failure", reloads.failed)] {
                let labels = format!("result=\"{result}\"");
                self.sample(&f::WEB_CONFIG_RELOADS, &labels, Value::Int(count));
            }
        }
    }
}

#[path = "prometheus_events.rs"]
mod events;
#[path = "prometheus_owners.rs"]
mod owners;

#[path = "prometheus_node.rs"]
mod node;

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
