//! The command line as clap parses it: the subcommands, their flags and the
//! values they take (parsed by `flags.rs`).
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use bpf_inventory_exporter::{bpf, events, filter};
use clap::{Args, Parser, Subcommand, ValueEnum};

use super::flags::{
    parse_collection_timeout, parse_duration, parse_listen_address, parse_mode,
    parse_read_header_timeout, parse_refresh_interval, parse_telemetry_path, parse_top_interval,
};

#[derive(Parser)]
// args_override_self: a flag given twice takes the last value (wrappers and scripts add flags).
#[command(
    version,
    about,
    args_conflicts_with_subcommands = true,
    args_override_self = true
)]
pub struct Cli {
    /// Log line format (on stderr).
    #[arg(long = "log.format", visible_alias = "log-format", value_enum, global = true,
          env = "BPF_EXPORTER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Least severe log level written; RUST_LOG, when set, takes precedence.
    #[arg(long = "log.level", value_enum, global = true, env = "BPF_EXPORTER_LOG_LEVEL",
          default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand: `serve` with these flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve Prometheus metrics over HTTP and/or push OTLP metrics (the default).
    #[command(args_override_self = true)]
    Serve(Box<ServeArgs>),
    /// Read the inventory once and print it.
    Dump {
        #[arg(long, value_enum, default_value_t = DumpFormat::Table)]
        format: DumpFormat,
        /// Hold BPF_ENABLE_STATS while collecting (run statistics).
        #[arg(long, env = "BPF_EXPORTER_ENABLE_BPF_STATS")]
        enable_bpf_stats: bool,
    },
    /// Load the iterators, read each once, print what this kernel supports
    /// and exit: non-zero if the exporter could not work here.
    Check,
    /// Pin text iterators as maps.debug, progs.debug and links.debug into a bpffs directory and exit.
    ///
    /// The files use the kernel's BPF preload format, then our columns; every
    /// `cat` of a file lists the kernel's objects as they are then.
    Pin {
        #[command(flatten)]
        dir: PinDir,
        /// File mode of the pinned files (octal); 0444 lets every user read every program's name.
        #[arg(long, default_value = "0400", value_parser = parse_mode)]
        mode: u32,
    },
    /// Remove the files `pin` made in the directory.
    Unpin {
        #[command(flatten)]
        dir: PinDir,
    },
    /// Follow BPF program loads and unloads live: one line per event on stdout, until SIGINT/SIGTERM.
    Events {
        #[arg(long, value_enum, default_value_t = EventsFormat::Text)]
        format: EventsFormat,
    },
    /// A live full-screen view: programs by CPU, maps by fill, links, owners, events (q quits, ? helps).
    Top {
        /// Time between two collections (rates are over it).
        #[arg(long, env = "BPF_EXPORTER_INTERVAL", default_value = "1s", value_parser = parse_top_interval, allow_hyphen_values = true)]
        interval: Duration,
        /// Hold BPF_ENABLE_STATS while running (program run time and runs: the CPU columns).
        #[arg(long, env = "BPF_EXPORTER_ENABLE_BPF_STATS")]
        enable_bpf_stats: bool,
        /// No events pane: do not open the load/unload rings.
        #[arg(long, env = "BPF_EXPORTER_NO_EVENTS")]
        no_events: bool,
    },
}

#[derive(Args, Clone)]
pub struct PinDir {
    /// A directory of its own in a BPF filesystem (not the mount's root); created if missing.
    #[arg(long, default_value = bpf::pin::DEFAULT_DIR)]
    pub dir: PathBuf,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on: IP:PORT, localhost:PORT or :PORT (all interfaces);
    /// ebpf_exporter has 9435, hence 10435.
    #[arg(long = "web.listen-address", visible_alias = "listen", env = "BPF_EXPORTER_LISTEN",
          default_value = "0.0.0.0:10435", value_parser = parse_listen_address)]
    pub listen: SocketAddr,
    /// Time a client has to send a request's headers, counted from when the
    /// server waits for the request: idle keep-alive connections close after it too.
    #[arg(long = "web.read-header-timeout", env = "BPF_EXPORTER_WEB_READ_HEADER_TIMEOUT",
          default_value = "10s", value_parser = parse_read_header_timeout, allow_hyphen_values = true)]
    pub read_header_timeout: Duration,
    /// TLS, basic auth and response headers, in the exporter-toolkit YAML format;
    /// read again on SIGHUP and when it (or a file it names) changes.
    #[arg(
        long = "web.config.file",
        env = "BPF_EXPORTER_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub web_config_file: Option<std::path::PathBuf>,
    /// Path of the Prometheus page.
    #[arg(long = "web.telemetry-path", env = "BPF_EXPORTER_WEB_TELEMETRY_PATH",
          default_value = "/metrics", value_parser = parse_telemetry_path)]
    pub telemetry_path: String,
    /// Connections open at once (lowered to fit the open-file limit); beyond it the
    /// oldest connection without a request in progress is closed.
    #[arg(long = "web.max-connections", env = "BPF_EXPORTER_WEB_MAX_CONNECTIONS",
          default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Hold BPF_ENABLE_STATS for the life of the process (program run time and run counts).
    #[arg(long, env = "BPF_EXPORTER_ENABLE_BPF_STATS")]
    pub enable_bpf_stats: bool,
    /// Export only programs and maps whose whole name matches this regex.
    #[arg(long, env = "BPF_EXPORTER_INCLUDE_NAME", value_name = "REGEX", value_parser = filter::check_pattern)]
    pub include_name: Option<String>,
    /// Leave out programs and maps whose whole name matches this regex (and their links).
    #[arg(long, env = "BPF_EXPORTER_EXCLUDE_NAME", value_name = "REGEX", value_parser = filter::check_pattern)]
    pub exclude_name: Option<String>,
    /// Only the aggregates by type and the exporter's own series: no per-object series.
    #[arg(long, env = "BPF_EXPORTER_AGGREGATES_ONLY")]
    pub aggregates_only: bool,
    /// Interval of the background re-read of map memory (one fdinfo read per map); 0s switches it off.
    #[arg(long, env = "BPF_EXPORTER_MAP_MEMORY_REFRESH", default_value = "30s", value_parser = parse_refresh_interval, allow_hyphen_values = true)]
    pub map_memory_refresh: Duration,
    /// Upper bound of one collection; a shorter Prometheus scrape timeout wins.
    #[arg(long, env = "BPF_EXPORTER_COLLECTION_TIMEOUT", default_value = "10s", value_parser = parse_collection_timeout, allow_hyphen_values = true)]
    pub collection_timeout: Duration,
    /// Skip the owners walk (iter/task_file): owners, pins and held_by are null, no owner series.
    #[arg(long, env = "BPF_EXPORTER_NO_OWNERS")]
    pub no_owners: bool,
    /// Reuse the last owners walk (processes, pins) while younger than this; 0s walks every collection.
    #[arg(long, env = "BPF_EXPORTER_OWNERS_MIN_INTERVAL", default_value = "0s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub owners_min_interval: Duration,
    /// Add a `pid` label to bpf_*_owner_info (pids churn: one series per process).
    #[arg(long, env = "BPF_EXPORTER_OWNER_PID_LABEL")]
    pub owner_pid_label: bool,
    /// Requests reading the kernel at once; more get 503.
    #[arg(long, env = "BPF_EXPORTER_MAX_REQUESTS_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_in_flight: u32,
    /// Open no HTTP port: push OTLP only (needs OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, env = "BPF_EXPORTER_NO_HTTP")]
    pub no_http: bool,
    /// OTLP: distinct series kept per per-object metric in one export (objects beyond fold into an overflow point).
    #[arg(long, env = "BPF_EXPORTER_OTLP_MAX_SERIES", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..))]
    pub otlp_max_series: u32,
    /// Pin the text iterators into this bpffs directory at start-up (mode 0400) and unpin them on exit.
    #[arg(long, env = "BPF_EXPORTER_PIN", value_name = "DIR")]
    pub pin: Option<PathBuf>,
    /// No BPF load/unload events: no /api/v1/events, no bpf_prog_loads_total and the like.
    #[arg(long, env = "BPF_EXPORTER_NO_EVENTS")]
    pub no_events: bool,
    /// Events kept for /api/v1/events (older ones are dropped, and counted in the answer).
    #[arg(long, env = "BPF_EXPORTER_EVENTS_BUFFER", default_value_t = events::DEFAULT_BUFFER as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub events_buffer: u32,
    /// Data pages of each CPU's events ring (a power of two); for tests that overflow it.
    #[arg(long, hide = true, default_value_t = bpf::perf_events::DEFAULT_DATA_PAGES as u32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub events_ring_pages: u32,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DumpFormat {
    Json,
    Table,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
