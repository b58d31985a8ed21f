//! The one table of every metric family the exporter exports: Prometheus name,
//! OpenTelemetry name, type, unit, labels and help. The Prometheus renderer
//! and the OTLP push (`render/otlp.rs`, `otlp/instruments.rs`) read the same
//! rows, so the two exports cannot drift; docs/metrics.md's table lists the
//! same rows (`exporter/tests/metrics_doc.rs` checks every cell).

/// How a family's value behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    /// Metadata with a constant value 1 (`_info`); a gauge in the 0.0.4 text
    /// format, `info` in OpenMetrics.
    Info,
}

/// The base unit of a family's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count or a ratio (OpenTelemetry's `{entry}`-style annotations are in `otel_unit`).
    None,
    Seconds,
    Bytes,
}

impl Unit {
    /// The OpenMetrics `# UNIT` value (the family name ends with it).
    pub const fn openmetrics(self) -> Option<&'static str> {
        match self {
            Unit::None => None,
            Unit::Seconds => Some("seconds"),
            Unit::Bytes => Some("bytes"),
        }
    }
}

/// One metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// Name in the Prometheus text format, with `_total` / `_info` suffixes.
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// Label names. `self` is set (to "true") only on the exporter's own objects.
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// OpenTelemetry metric name and UCUM unit.
    pub otel_name: &'static str,
    pub otel_unit: &'static str,
}

impl Family {
    /// The OpenMetrics family name: without `_total` (counters) or `_info`
    /// (info), which OpenMetrics adds to the sample names.
    pub fn openmetrics_name(&self) -> &'static str {
        let suffix = match self.kind {
            Kind::Counter => "_total",
            Kind::Info => "_info",
            Kind::Gauge => "",
        };
        self.name.strip_suffix(suffix).unwrap_or(self.name)
    }
}

const OBJECT: &[&str] = &["id", "name", "type", "self"];
const BY_TYPE: &[&str] = &["type"];
/// `pid` only with `--owner-pid-label`; `container_id` and `pod_uid` only where the cgroup names them.
const OWNER: &[&str] = &["id", "comm", "container_id", "pod_uid", "pid"];
const OWNER_GROUP: &[&str] = &["comm", "container_id", "pod_uid"];
/// The process of a load or unload event; each only where known.
const LOADER: &[&str] = &["comm", "container_id", "pod_uid"];

macro_rules! families {
    ($(#[$list_doc:meta])* $list:ident: $($(#[$doc:meta])* $id:ident = $name:literal, $kind:ident, $unit:ident, $labels:expr,
        $otel:literal, $otel_unit:literal, $help:literal;)*) => {
        $($(#[$doc])* pub const $id: Family = Family {
            name: $name,
            kind: Kind::$kind,
            unit: Unit::$unit,
            labels: $labels,
            help: $help,
            otel_name: $otel,
            otel_unit: $otel_unit,
        };)*
        $(#[$list_doc])*
        pub const $list: &[Family] = &[$($id),*];
    };
}

// One row per family: CONST = Prometheus name, type, unit, labels, OTel name, OTel unit, help.
families! {
    /// Every family of a collection's page, in the order the Prometheus renderer writes them.
    FAMILIES:
    // Programs, one series per program.
    PROG_INFO = "bpf_prog_info", Info, None, &["id", "name", "type", "tag", "attach_to", "gpl", "self"],
        "bpf.prog.info", "1", "Metadata of a loaded BPF program (value 1).";
    PROG_LOADED = "bpf_prog_loaded_timestamp_seconds", Gauge, Seconds, OBJECT,
        "bpf.prog.load_time", "s", "Time the program was loaded, in seconds since the Unix epoch.";
    PROG_XLATED = "bpf_prog_xlated_bytes", Gauge, Bytes, OBJECT,
        "bpf.prog.xlated.size", "By", "Size of the program's translated (verified) BPF instructions.";
    PROG_JITED = "bpf_prog_jited_bytes", Gauge, Bytes, OBJECT,
        "bpf.prog.jited.size", "By", "Size of the program's JIT-compiled machine code.";
    PROG_VERIFIED = "bpf_prog_verified_instructions", Gauge, None, OBJECT,
        "bpf.prog.verified_instructions", "{instruction}", "Instructions the verifier processed when loading the program.";
    PROG_MEMORY = "bpf_prog_memory_bytes", Gauge, Bytes, OBJECT,
        "bpf.prog.memory.usage", "By", "Memory the kernel accounts to the program (bpftool's bytes_memlock).";
    PROG_RUN_SECONDS = "bpf_prog_run_seconds_total", Counter, Seconds, OBJECT,
        "bpf.prog.run.time", "s", "Time spent running the program while BPF statistics were enabled.";
    PROG_RUNS = "bpf_prog_runs_total", Counter, None, OBJECT,
        "bpf.prog.runs", "{run}", "Runs of the program while BPF statistics were enabled.";
    PROG_RECURSION_MISSES = "bpf_prog_recursion_misses_total", Counter, None, OBJECT,
        "bpf.prog.recursion_misses", "{miss}", "Runs of the program the kernel skipped because it was already running on the CPU.";

    // Maps, one series per map.
    MAP_INFO = "bpf_map_info", Info, None, &["id", "name", "type", "key_size", "value_size", "flags", "self"],
        "bpf.map.info", "1", "Metadata of a BPF map (value 1).";
    MAP_MAX_ENTRIES = "bpf_map_max_entries", Gauge, None, OBJECT,
        "bpf.map.max_entries", "{entry}", "Capacity of the map in entries.";
    MAP_ENTRIES = "bpf_map_entries", Gauge, None, OBJECT,
        "bpf.map.entries", "{entry}", "Entries in the map now; absent where the kernel cannot tell.";
    MAP_MEMORY = "bpf_map_memory_bytes", Gauge, Bytes, OBJECT,
        "bpf.map.memory.usage", "By", "Memory the kernel accounts to the map (bpftool's bytes_memlock), from a background refresh.";

    // Links, one series per link.
    LINK_INFO = "bpf_link_info", Info, None, &["id", "type", "prog_id", "attach_type", "target", "self"],
        "bpf.link.info", "1", "Metadata of a BPF link (value 1).";

    // Owners: one series per object and owner group (or process, with --owner-pid-label).
    PROG_OWNER = "bpf_prog_owner_info", Info, None, OWNER,
        "bpf.prog.owner.info", "1", "A process holding an fd to the program (value 1).";
    MAP_OWNER = "bpf_map_owner_info", Info, None, OWNER,
        "bpf.map.owner.info", "1", "A process holding an fd to the map (value 1).";
    LINK_OWNER = "bpf_link_owner_info", Info, None, OWNER,
        "bpf.link.owner.info", "1", "A process holding an fd to the link (value 1).";

    // Aggregates by type: kept when per-object series are switched off.
    PROGS = "bpf_progs", Gauge, None, BY_TYPE,
        "bpf.progs", "{program}", "Loaded BPF programs by type.";
    MAPS = "bpf_maps", Gauge, None, BY_TYPE,
        "bpf.maps", "{map}", "BPF maps by type.";
    LINKS = "bpf_links", Gauge, None, BY_TYPE,
        "bpf.links", "{link}", "BPF links by type.";
    PROGS_MEMORY = "bpf_progs_memory_bytes", Gauge, Bytes, BY_TYPE,
        "bpf.progs.memory.usage", "By", "Memory of all programs of a type.";
    MAPS_MEMORY = "bpf_maps_memory_bytes", Gauge, Bytes, BY_TYPE,
        "bpf.maps.memory.usage", "By", "Memory of all maps of a type; absent while any of them is unknown.";

    // Roll-ups per owner group: an object held by two groups counts in each.
    OWNER_PROGS = "bpf_owner_progs", Gauge, None, OWNER_GROUP,
        "bpf.owner.progs", "{program}", "Programs the owner group holds an fd to.";
    OWNER_MAPS = "bpf_owner_maps", Gauge, None, OWNER_GROUP,
        "bpf.owner.maps", "{map}", "Maps the owner group holds an fd to.";
    OWNER_LINKS = "bpf_owner_links", Gauge, None, OWNER_GROUP,
        "bpf.owner.links", "{link}", "Links the owner group holds an fd to.";
    OWNER_PROGS_MEMORY = "bpf_owner_progs_memory_bytes", Gauge, Bytes, OWNER_GROUP,
        "bpf.owner.progs.memory.usage", "By", "Memory of the programs the owner group holds.";
    OWNER_MAPS_MEMORY = "bpf_owner_maps_memory_bytes", Gauge, Bytes, OWNER_GROUP,
        "bpf.owner.maps.memory.usage", "By", "Memory of the maps the owner group holds; absent while any of them is unknown.";

    // The node's BPF posture: sysctls, securityfs, kernel config, bpffs mounts.
    NODE_UNPRIVILEGED_BPF_DISABLED = "bpf_node_unprivileged_bpf_disabled", Gauge, None, &[],
        "bpf.node.unprivileged_bpf_disabled", "1", "The kernel.unprivileged_bpf_disabled sysctl: 0 unprivileged BPF allowed, 1 disabled until reboot, 2 disabled (an admin may set 0).";
    NODE_JIT_ENABLED = "bpf_node_jit_enabled", Gauge, None, &[],
        "bpf.node.jit.enabled", "1", "The net.core.bpf_jit_enable sysctl: 0 interpreter only, 1 JIT, 2 JIT with debug output.";
    NODE_JIT_HARDEN = "bpf_node_jit_harden", Gauge, None, &[],
        "bpf.node.jit.harden", "1", "The net.core.bpf_jit_harden sysctl: 0 off, 1 for unprivileged loads, 2 for all loads.";
    NODE_JIT_KALLSYMS = "bpf_node_jit_kallsyms", Gauge, None, &[],
        "bpf.node.jit.kallsyms", "1", "The net.core.bpf_jit_kallsyms sysctl: whether JIT images are listed in /proc/kallsyms (1) or not (0).";
    NODE_JIT_LIMIT = "bpf_node_jit_limit_bytes", Gauge, Bytes, &[],
        "bpf.node.jit.limit", "By", "The net.core.bpf_jit_limit sysctl: bytes of JIT images unprivileged loads may take in all.";
    NODE_JIT_USED = "bpf_node_jit_used_ratio", Gauge, None, &[],
        "bpf.node.jit.utilization", "1", "Sum of the programs' JIT image sizes as a fraction of net.core.bpf_jit_limit.";
    NODE_STATS_ENABLED = "bpf_node_stats_enabled", Gauge, None, &[],
        "bpf.node.stats.enabled", "1", "The kernel.bpf_stats_enabled sysctl: whether the kernel counts program run time and runs for everyone (1) or not (0).";
    NODE_LSM = "bpf_node_lsm_info", Info, None, &["lsm"],
        "bpf.node.lsm.info", "1", "An active Linux security module, from securityfs; bpf when BPF LSM is on (value 1).";
    NODE_LOCKDOWN = "bpf_node_lockdown_info", Info, None, &["mode"],
        "bpf.node.lockdown.info", "1", "The kernel lockdown mode in effect, from securityfs (value 1).";
    NODE_KERNEL_CONFIG = "bpf_node_kernel_config_info", Info, None, &["option", "value"],
        "bpf.node.kernel_config.info", "1", "A BPF option of the running kernel's config and its value, n when not set (value 1).";
    FS_INFO = "bpf_fs_info", Info, None, &["mountpoint", "delegate_cmds", "delegate_maps", "delegate_progs", "delegate_attachs"],
        "bpf.fs.info", "1", "A bpffs mount and the BPF token delegation options it carries, each absent when not set (value 1).";

    // The exporter itself.
    BUILD_INFO = "bpf_exporter_build_info", Info, None, &["version", "revision", "rustc_version"],
        "bpf_exporter.build.info", "1", "Version, git revision and rustc version of the exporter (value 1).";
    SCRAPE_DURATION = "bpf_exporter_scrape_duration_seconds", Gauge, Seconds, &[],
        "bpf_exporter.collection.duration", "s", "Time the kernel read behind this page took.";
    COLLECTOR_SUPPORTED = "bpf_exporter_collector_supported", Gauge, None, &["collector"],
        "bpf_exporter.collector.supported", "1", "Whether this kernel has the collector's iterator (1) or not (0, e.g. links before Linux 5.19).";
    COLLECTOR_SUCCESS = "bpf_exporter_collector_success", Gauge, None, &["collector"],
        "bpf_exporter.collector.success", "1", "Whether the collector (iterator) succeeded in this collection (1) or failed (0); absent where unsupported.";
    COLLECTOR_ERRORS = "bpf_exporter_collector_errors_total", Counter, None, &["collector"],
        "bpf_exporter.collector.errors", "{error}", "Collections in which the collector (iterator) failed.";
    COLLECTIONS = "bpf_exporter_collections_total", Counter, None, &[],
        "bpf_exporter.collections", "{collection}", "Kernel reads done; concurrent scrapes share one.";
    BPF_STATS_ENABLED = "bpf_exporter_bpf_stats_enabled", Gauge, None, &[],
        "bpf_exporter.bpf_stats.enabled", "1", "Whether the kernel counts program run time and runs (1) or not (0).";
    MAP_MEMORY_AGE = "bpf_exporter_map_memory_age_seconds", Gauge, Seconds, &[],
        "bpf_exporter.map_memory.age", "s", "Age of the map memory values; absent until the first background refresh.";
    // The OTLP push (samples only when it is configured).
    OTLP_EXPORTS = "bpf_exporter_otlp_exports_total", Counter, None, &["result"],
        "bpf_exporter.otlp.exports", "{export}", "OTLP exports finished, by result (success or failure; retries are part of one export).";
    OTLP_EXPORT_DURATION = "bpf_exporter_otlp_export_duration_seconds", Gauge, Seconds, &[],
        "bpf_exporter.otlp.export.duration", "s", "Time the latest finished OTLP export took: collection, encoding and sending with retries.";
    OTLP_EVENTS_DROPPED = "bpf_exporter_otlp_events_dropped_total", Counter, None, &[],
        "bpf_exporter.otlp.events.dropped", "{event}", "Load and unload events that left the events buffer (--events-buffer) before the OTLP push could send them as log records.";
    // Load and unload events, counted since the exporter started (samples only when events are on).
    PROG_LOADS = "bpf_prog_loads_total", Counter, None, LOADER,
        "bpf.prog.loads", "{load}", "Programs loaded since the exporter started, by loading process (comm, container_id, pod_uid where known).";
    PROG_UNLOADS = "bpf_prog_unloads_total", Counter, None, LOADER,
        "bpf.prog.unloads", "{unload}", "Programs freed since the exporter started, by the process that dropped the last reference.";
    PROG_SHORT_LIVED = "bpf_prog_short_lived_total", Counter, None, &[],
        "bpf.prog.short_lived", "{program}", "Programs loaded and unloaded since the exporter started without any collection seeing them.";
    EVENTS_LOST = "bpf_exporter_events_lost_total", Counter, None, &[],
        "bpf_exporter.events.lost", "{record}", "Load and unload event records the kernel dropped because a ring was full.";
}

/// The families of the load and unload events.
pub const EVENT_FAMILIES: [Family; 4] = [PROG_LOADS, PROG_UNLOADS, PROG_SHORT_LIVED, EVENTS_LOST];

families! {
    /// The families `serve` adds to the page: its process (named as every
    /// Prometheus client library names them) and its HTTP side.
    SERVER_FAMILIES:
    PROCESS_CPU = "process_cpu_seconds_total", Counter, Seconds, &[],
        "process.cpu.time", "s", "Total user and system CPU time spent in seconds.";
    PROCESS_RESIDENT = "process_resident_memory_bytes", Gauge, Bytes, &[],
        "process.memory.usage", "By", "Resident memory size in bytes.";
    PROCESS_VIRTUAL = "process_virtual_memory_bytes", Gauge, Bytes, &[],
        "process.memory.virtual", "By", "Virtual memory size in bytes.";
    PROCESS_OPEN_FDS = "process_open_fds", Gauge, None, &[],
        "process.open_file_descriptor.count", "{file_descriptor}", "Number of open file descriptors.";
    PROCESS_MAX_FDS = "process_max_fds", Gauge, None, &[],
        "process.open_file_descriptor.limit", "{file_descriptor}", "Maximum number of open file descriptors.";
    PROCESS_START_TIME = "process_start_time_seconds", Gauge, Seconds, &[],
        "process.start_time", "s", "Start time of the process since unix epoch in seconds.";
    REQUESTS_REJECTED = "bpf_exporter_http_requests_rejected_total", Counter, None, &["reason"],
        "bpf_exporter.http.requests.rejected", "{request}", "HTTP requests answered with an error, by reason.";
    WEB_CONFIG_LAST_RELOAD = "bpf_exporter_web_config_last_reload_successful", Gauge, None, &[],
        "bpf_exporter.web_config.last_reload.successful", "1", "Whether the latest reload of --web.config.file succeeded (1) or was refused (0); 1 before any reload. Absent without the flag.";
    WEB_CONFIG_RELOADS = "bpf_exporter_web_config_reloads_total", Counter, None, &["result"],
        "bpf_exporter.web_config.reloads", "{reload}", "Reloads of --web.config.file (SIGHUP or a file change), by result: success, or failure (broken, empty, or lowering security: the configuration in force stays).";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_naming_guide() {
        for f in FAMILIES.iter().chain(SERVER_FAMILIES) {
            assert!(
                f.name.starts_with("bpf_") || f.name.starts_with("process_"),
                "{}",
                f.name
            );
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            assert_eq!(
                f.kind == Kind::Info,
                f.name.ends_with("_info"),
                "{}",
                f.name
            );
            if let Some(unit) = f.unit.openmetrics() {
                assert!(
                    f.openmetrics_name().ends_with(&format!("_{unit}")),
                    "{}: OpenMetrics requires the unit as suffix",
                    f.name
                );
            }
            // Help text is written unescaped: keep it free of escapes.
            assert!(!f.help.contains(['\\', '"', '\n']), "{}", f.name);
        }
        let mut names: Vec<&str> = FAMILIES
            .iter()
            .chain(SERVER_FAMILIES)
            .map(|f| f.openmetrics_name())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            FAMILIES.len() + SERVER_FAMILIES.len(),
            "duplicate family names"
        );
    }
}
