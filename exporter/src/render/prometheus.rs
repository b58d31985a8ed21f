//! Prometheus exposition of an `Inventory`: text format 0.0.4 or OpenMetrics
//! 1.0, written directly with `write!` from the families table (a metrics
//! library's registry costs several times more at 10 000 maps; see issue 3).
//! Pure: the inventory and the collection's own counters in, text out.
use std::{collections::BTreeMap, fmt::Write};

use super::aggregate::{by_type, Aggregate};

use super::server_stats::ServerStats;
use super::{
    families::{self as f, Family, Kind},
    labels::{collector_label, label, object_labels, self_label, Escaped},
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

/// Renders the whole page.
pub fn render_metrics(
    inventory: &Inventory,
    stats: &CollectionStats,
    options: &RenderOptions,
    format: Format,
) -> String {
    let mut out = String::new();
    render_metrics_into(&mut out, inventory, stats, options, format);
    out
}

/// Renders the whole page at the end of `out`. A caller that knows the size
/// of the previous page passes a buffer of about that capacity; an empty one
/// gets an estimate (about 100 bytes per series), so a multi-MB page is not
/// regrown several times.
pub fn render_metrics_into(
    out: &mut String,
    inventory: &Inventory,
    stats: &CollectionStats,
    options: &RenderOptions,
    format: Format,
) {
    render_page_into(out, inventory, stats, None, options, format);
}

/// [`render_metrics_into`] with the server's own families (`serve`'s page).
pub fn render_page_into(
    out: &mut String,
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
    let mut page = Page {
        out: std::mem::take(out),
        format,
    };
    // The two halves of a large page are written on two threads and joined.
    if options.per_object && inventory.maps.len() >= PARALLEL_FROM_MAPS {
        let tail_capacity = page.out.capacity() / 2;
        let tail = std::thread::scope(|scope| {
            let tail = scope.spawn(|| {
                let mut tail = Page {
                    out: String::with_capacity(tail_capacity),
                    format,
                };
                tail.tail(inventory, stats, server, options);
                tail.out
            });
            page.head(inventory, options);
            tail.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        page.out.push_str(&tail);
    } else {
        page.head(inventory, options);
        page.tail(inventory, stats, server, options);
    }
    *out = page.out;
}

/// Below this many maps the page is written on one thread.
const PARALLEL_FROM_MAPS: usize = 2048;

struct Page {
    out: String,
    format: Format,
}

/// A sample value: integers are written exactly, the rest as shortest floats.
#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

// Writing into a String cannot fail, so the fmt::Results below are ignored
// (`let _ =`) rather than threaded through every call.
impl Page {
    /// Programs, then the first half of the map families.
    fn head(&mut self, inventory: &Inventory, options: &RenderOptions) {
        if options.per_object {
            self.programs(&inventory.programs);
            self.map_info_and_capacity(&inventory.maps);
        }
    }

    /// The rest of the map families, links, aggregates and the exporter's own
    /// series: concatenated after `head`, the whole page.
    fn tail(
        &mut self,
        inventory: &Inventory,
        stats: &CollectionStats,
        server: Option<&ServerStats>,
        options: &RenderOptions,
    ) {
        if options.per_object {
            self.map_contents(&inventory.maps);
            self.links(&inventory.links);
            self.owner_info(inventory, options.owner_pid_label);
        }
        self.aggregates(inventory);
        self.owner_groups(inventory);
        self.exporter(inventory, stats, options);
        if let Some(server) = server {
            self.server(server);
        }
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
    }

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
        match value {
            // itoa: integers are most samples, and fmt's integer path is slower.
            Value::Int(v) => self.out.push_str(itoa::Buffer::new().format(v)),
            Value::Float(v) => {
                let _ = write!(self.out, "{v}");
            }
        }
        self.out.push('\n');
    }

    /// A family with one sample per object whose value is known.
    fn per_object<T>(
        &mut self,
        family: &Family,
        objects: &[(&T, String)],
        value: impl Fn(&T) -> Option<Value>,
    ) {
        self.header(family);
        for (object, labels) in objects {
            if let Some(v) = value(object) {
                self.sample(family, labels, v);
            }
        }
    }

    fn programs(&mut self, programs: &[Program]) {
        self.header(&f::PROG_INFO);
        for p in programs {
            let mut labels = object_labels(p.id, &p.name, &p.prog_type, false);
            label(&mut labels, "tag", &p.tag);
            if let Some(attach_to) = &p.attach_to {
                label(&mut labels, "attach_to", attach_to);
            }
            label(
                &mut labels,
                "gpl",
                if p.gpl_compatible { "true" } else { "false" },
            );
            self_label(&mut labels, p.is_self);
            self.sample(&f::PROG_INFO, &labels, Value::Int(1));
        }
        let objects: Vec<(&Program, String)> = programs
            .iter()
            .map(|p| (p, object_labels(p.id, &p.name, &p.prog_type, p.is_self)))
            .collect();
        self.per_object(&f::PROG_LOADED, &objects, |p| {
            Some(Value::Float(p.loaded_at.timestamp_micros() as f64 / 1e6))
        });
        self.per_object(&f::PROG_XLATED, &objects, |p| {
            Some(Value::Int(p.xlated_bytes.into()))
        });
        self.per_object(&f::PROG_JITED, &objects, |p| {
            Some(Value::Int(p.jited_bytes.into()))
        });
        self.per_object(&f::PROG_VERIFIED, &objects, |p| {
            p.verified_insns.map(|v| Value::Int(v.into()))
        });
        self.per_object(&f::PROG_MEMORY, &objects, |p| {
            Some(Value::Int(p.memory_bytes))
        });
        self.per_object(&f::PROG_RUN_SECONDS, &objects, |p| {
            p.run_time_ns.map(|ns| Value::Float(ns as f64 / 1e9))
        });
        self.per_object(&f::PROG_RUNS, &objects, |p| p.run_count.map(Value::Int));
        self.per_object(&f::PROG_RECURSION_MISSES, &objects, |p| {
            p.recursion_misses.map(Value::Int)
        });
    }

    fn map_info_and_capacity(&mut self, maps: &[Map]) {
        self.header(&f::MAP_INFO);
        for m in maps {
            let mut labels = object_labels(m.id, &m.name, &m.map_type, false);
            let _ = write!(
                labels,
                ",key_size=\"{}\",value_size=\"{}\",flags=\"{}\"",
                m.key_size, m.value_size, m.flags
            );
            self_label(&mut labels, m.is_self);
            self.sample(&f::MAP_INFO, &labels, Value::Int(1));
        }
        self.per_object(&f::MAP_MAX_ENTRIES, &map_labels(maps), |m| {
            Some(Value::Int(m.max_entries.into()))
        });
    }

    fn map_contents(&mut self, maps: &[Map]) {
        let objects = map_labels(maps);
        self.per_object(&f::MAP_ENTRIES, &objects, |m| m.entries.map(Value::Int));
        self.per_object(&f::MAP_MEMORY, &objects, |m| m.memory_bytes.map(Value::Int));
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
    }
}

impl Page {
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
    }
}

fn map_labels(maps: &[Map]) -> Vec<(&Map, String)> {
    maps.iter()
        .map(|m| (m, object_labels(m.id, &m.name, &m.map_type, m.is_self)))
        .collect()
}

#[path = "prometheus_owners.rs"]
mod owners;

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
