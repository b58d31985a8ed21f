//! Command line: parse arguments, set up logging, run a subcommand.
use std::{
    io::IsTerminal,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use bpf_inventory_exporter::{
    allocator,
    bpf::{self, Availability},
    collect, events,
    filter::{self, NameFilter},
    otlp, privileges,
    render::{self, prometheus::RenderOptions},
    server::{self, RunOptions, ServerConfig},
    top,
};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[path = "main/errors.rs"]
mod errors;
#[path = "main/flags.rs"]
mod flags;

use errors::one_line;
use flags::{
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
struct Cli {
    /// Log line format (on stderr).
    #[arg(long = "log.format", visible_alias = "log-format", value_enum, global = true,
          env = "BPF_EXPORTER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Least severe log level written; RUST_LOG, when set, takes precedence.
    #[arg(long = "log.level", value_enum, global = true, env = "BPF_EXPORTER_LOG_LEVEL",
          default_value_t = LogLevel::Info)]
    log_level: LogLevel,
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: `serve` with these flags.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
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
struct PinDir {
    /// A directory of its own in a BPF filesystem (not the mount's root); created if missing.
    #[arg(long, default_value = bpf::pin::DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on: IP:PORT, localhost:PORT or :PORT (all interfaces);
    /// ebpf_exporter has 9435, hence 10435.
    #[arg(long = "web.listen-address", visible_alias = "listen", env = "BPF_EXPORTER_LISTEN",
          default_value = "0.0.0.0:10435", value_parser = parse_listen_address)]
    listen: SocketAddr,
    /// Time a client has to send a request's headers, counted from when the
    /// server waits for the request: idle keep-alive connections close after it too.
    #[arg(long = "web.read-header-timeout", env = "BPF_EXPORTER_WEB_READ_HEADER_TIMEOUT",
          default_value = "10s", value_parser = parse_read_header_timeout, allow_hyphen_values = true)]
    read_header_timeout: Duration,
    /// TLS, basic auth and response headers, in the exporter-toolkit YAML format;
    /// read again on SIGHUP and when it (or a file it names) changes.
    #[arg(
        long = "web.config.file",
        env = "BPF_EXPORTER_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    web_config_file: Option<std::path::PathBuf>,
    /// Path of the Prometheus page.
    #[arg(long = "web.telemetry-path", env = "BPF_EXPORTER_WEB_TELEMETRY_PATH",
          default_value = "/metrics", value_parser = parse_telemetry_path)]
    telemetry_path: String,
    /// Connections open at once (lowered to fit the open-file limit); beyond it the
    /// oldest connection without a request in progress is closed.
    #[arg(long = "web.max-connections", env = "BPF_EXPORTER_WEB_MAX_CONNECTIONS",
          default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Hold BPF_ENABLE_STATS for the life of the process (program run time and run counts).
    #[arg(long, env = "BPF_EXPORTER_ENABLE_BPF_STATS")]
    enable_bpf_stats: bool,
    /// Export only programs and maps whose whole name matches this regex.
    #[arg(long, env = "BPF_EXPORTER_INCLUDE_NAME", value_name = "REGEX", value_parser = filter::check_pattern)]
    include_name: Option<String>,
    /// Leave out programs and maps whose whole name matches this regex (and their links).
    #[arg(long, env = "BPF_EXPORTER_EXCLUDE_NAME", value_name = "REGEX", value_parser = filter::check_pattern)]
    exclude_name: Option<String>,
    /// Only the aggregates by type and the exporter's own series: no per-object series.
    #[arg(long, env = "BPF_EXPORTER_AGGREGATES_ONLY")]
    aggregates_only: bool,
    /// Interval of the background re-read of map memory (one fdinfo read per map); 0s switches it off.
    #[arg(long, env = "BPF_EXPORTER_MAP_MEMORY_REFRESH", default_value = "30s", value_parser = parse_refresh_interval, allow_hyphen_values = true)]
    map_memory_refresh: Duration,
    /// Upper bound of one collection; a shorter Prometheus scrape timeout wins.
    #[arg(long, env = "BPF_EXPORTER_COLLECTION_TIMEOUT", default_value = "10s", value_parser = parse_collection_timeout, allow_hyphen_values = true)]
    collection_timeout: Duration,
    /// Skip the owners walk (iter/task_file): owners, pins and held_by are null, no owner series.
    #[arg(long, env = "BPF_EXPORTER_NO_OWNERS")]
    no_owners: bool,
    /// Reuse the last owners walk (processes, pins) while younger than this; 0s walks every collection.
    #[arg(long, env = "BPF_EXPORTER_OWNERS_MIN_INTERVAL", default_value = "0s", value_parser = parse_duration, allow_hyphen_values = true)]
    owners_min_interval: Duration,
    /// Add a `pid` label to bpf_*_owner_info (pids churn: one series per process).
    #[arg(long, env = "BPF_EXPORTER_OWNER_PID_LABEL")]
    owner_pid_label: bool,
    /// Requests reading the kernel at once; more get 503.
    #[arg(long, env = "BPF_EXPORTER_MAX_REQUESTS_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_requests_in_flight: u32,
    /// Open no HTTP port: push OTLP only (needs OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, env = "BPF_EXPORTER_NO_HTTP")]
    no_http: bool,
    /// OTLP: distinct series kept per per-object metric in one export (objects beyond fold into an overflow point).
    #[arg(long, env = "BPF_EXPORTER_OTLP_MAX_SERIES", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..))]
    otlp_max_series: u32,
    /// Pin the text iterators into this bpffs directory at start-up (mode 0400) and unpin them on exit.
    #[arg(long, env = "BPF_EXPORTER_PIN", value_name = "DIR")]
    pin: Option<PathBuf>,
    /// No BPF load/unload events: no /api/v1/events, no bpf_prog_loads_total and the like.
    #[arg(long, env = "BPF_EXPORTER_NO_EVENTS")]
    no_events: bool,
    /// Events kept for /api/v1/events (older ones are dropped, and counted in the answer).
    #[arg(long, env = "BPF_EXPORTER_EVENTS_BUFFER", default_value_t = events::DEFAULT_BUFFER as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    events_buffer: u32,
    /// Data pages of each CPU's events ring (a power of two); for tests that overflow it.
    #[arg(long, hide = true, default_value_t = bpf::perf_events::DEFAULT_DATA_PAGES as u32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    events_ring_pages: u32,
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpFormat {
    Json,
    Table,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EventsFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let top = matches!(cli.command, Some(Command::Top { .. }));
    init_logging(cli.log_format, cli.log_level, top);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpf-inventory-exporter: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// `top` logs through its screen (the footer) and from warnings up unless
/// asked for debug: start-up lines would stay on the shell's screen.
fn init_logging(format: LogFormat, level: LogLevel, top: bool) {
    let level = match level {
        LogLevel::Info if top => LogLevel::Warn,
        level => level,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| level.directive().into());
    let builder = tracing_subscriber::fmt()
        .with_ansi(!top && std::io::stderr().is_terminal())
        .with_env_filter(filter);
    match (format, top) {
        (LogFormat::Text, false) => builder.with_writer(std::io::stderr).init(),
        (LogFormat::Json, false) => builder.with_writer(std::io::stderr).json().init(),
        (LogFormat::Text, true) => builder.with_writer(top::LogSink).init(),
        (LogFormat::Json, true) => builder.with_writer(top::LogSink).json().init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Dump {
            format,
            enable_bpf_stats,
        }) => {
            let mut source = collect::KernelSource::open(&collect::Options {
                enable_bpf_stats,
                ..Default::default()
            })?;
            let inventory = source.collect();
            match format {
                DumpFormat::Json => println!("{}", serde_json::to_string_pretty(&inventory)?),
                DumpFormat::Table => print!("{}", render::table::render_table(&inventory)),
            }
            Ok(())
        }
        Some(Command::Check) => check(),
        Some(Command::Pin { dir, mode }) => {
            for path in pin(&dir.dir, mode)? {
                println!("pinned {}", path.display());
            }
            Ok(())
        }
        Some(Command::Unpin { dir }) => {
            for path in bpf::pin::unpin(&dir.dir)? {
                println!("removed {}", path.display());
            }
            Ok(())
        }
        Some(Command::Events { format }) => {
            Ok(events::follow_until_signal(format == EventsFormat::Json)?)
        }
        Some(Command::Top {
            interval,
            enable_bpf_stats,
            no_events,
        }) => {
            // As `serve`: a missing capability is one line before the screen is taken.
            bpf::check_prerequisites()?;
            Ok(top::run(top::Options {
                interval,
                enable_bpf_stats,
                events: !no_events,
            })?)
        }
    }
}

fn check() -> anyhow::Result<()> {
    let mut source = collect::KernelSource::open(&collect::Options::default())?;
    let inventory = source.collect();
    let support = source.support();
    println!("kernel {}", inventory.node.kernel_release);
    println!(
        "read {} programs, {} maps, {} links",
        inventory.programs.len(),
        inventory.maps.len(),
        inventory.links.len()
    );
    for (it, availability) in &support.iterators {
        let state = match availability {
            Availability::Loaded => "yes".to_owned(),
            Availability::Unsupported => "unsupported by this kernel".to_owned(),
            Availability::Failed(e) => format!("failed to load: {e}"),
        };
        println!("{} iterator: {state}", it.target());
    }
    match support.percpu_cpus {
        Some(cpus) => println!("per-CPU counters: yes ({cpus} CPUs)"),
        None => println!("per-CPU counters: no"),
    }
    match bpf::perf_events::ProgEventRings::open(bpf::perf_events::DEFAULT_DATA_PAGES) {
        Ok(_) => println!("load/unload events: yes"),
        Err(e) => println!("load/unload events: no ({e})"),
    }
    if inventory.owners_known() {
        println!("owners walk: yes");
    } else {
        println!("owners walk: no (iter/task_file, Linux 5.8+; see the log)");
    }
    for missing in support.unavailable() {
        println!("unavailable: {missing}");
    }
    print!("{}", render::table::render_posture(&inventory.node.posture));
    for error in source.posture_unreadable() {
        println!("posture unavailable: {error}");
    }
    for e in &inventory.errors {
        println!("failed: {} collector: {}", e.collector.as_str(), e.message);
    }
    anyhow::ensure!(inventory.errors.is_empty(), "collectors failed");
    Ok(())
}

/// Calibrates the per-CPU offsets with the exporter's iterators (released
/// again), then pins the text iterators; returns the files pinned.
fn pin(dir: &Path, mode: u32) -> anyhow::Result<Vec<PathBuf>> {
    bpf::caps::check()?;
    // Before loading anything: a bad --dir is one line, no log.
    bpf::pin::prepare_dir(dir)?;
    let offsets = bpf::Iterators::load()?.percpu_offsets();
    Ok(bpf::pin::pin(dir, mode, offsets.as_deref())?)
}

/// Raises the soft open-file limit to the hard one and fits the connection
/// cap under it, with fds in reserve for the BPF work.
fn connection_limits(args: &ServeArgs) -> anyhow::Result<server::ConnectionLimits> {
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    let wanted = args.max_connections as usize;
    let max_connections = server::fit_connections(wanted, fd_limit).with_context(|| {
        format!(
            "open-file limit {fd_limit} too low: the exporter keeps {} fds for BPF work; raise `ulimit -n`",
            server::FD_RESERVE
        )
    })?;
    if max_connections < wanted {
        tracing::info!(
            max_connections,
            fd_limit,
            "connection cap lowered to fit the open-file limit"
        );
    }
    Ok(server::ConnectionLimits {
        read_header_timeout: args.read_header_timeout,
        max_connections,
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before listening: without the capabilities, one line and exit.
    bpf::check_prerequisites()?;
    // Before any thread starts: the arena limit applies to threads created later.
    allocator::tune_allocator();
    let connections = connection_limits(&args)?;
    let web_config = std::sync::Arc::new(match &args.web_config_file {
        Some(path) => server::web_config::WebConfigHandle::load(path.clone())?,
        None => server::web_config::WebConfigHandle::none(),
    });
    let filter = NameFilter::new(args.include_name.as_deref(), args.exclude_name.as_deref())?;
    let render = RenderOptions {
        per_object: !args.aggregates_only,
        owner_pid_label: args.owner_pid_label,
        ..RenderOptions::default()
    };
    let otlp = otlp::PushConfig::from_env(args.otlp_max_series as usize, render.clone())?;
    anyhow::ensure!(
        otlp.is_some() || !args.no_http,
        "--no-http leaves nothing to do without an OTLP endpoint: set OTEL_EXPORTER_OTLP_ENDPOINT (and not OTEL_SDK_DISABLED=true)"
    );
    let options = RunOptions {
        listen: args.listen,
        source: collect::Options {
            enable_bpf_stats: args.enable_bpf_stats,
            filter,
            no_owners: args.no_owners,
            owners_min_interval: args.owners_min_interval,
            // 0s: no map memory, and CAP_SYS_ADMIN is dropped after start.
            without_map_memory: args.map_memory_refresh.is_zero(),
        },
        server: ServerConfig {
            collection_timeout: args.collection_timeout,
            max_requests_in_flight: args.max_requests_in_flight as usize,
            telemetry_path: args.telemetry_path.clone(),
            render,
        },
        connections,
        web_config,
        map_memory_refresh: (!args.map_memory_refresh.is_zero()).then_some(args.map_memory_refresh),
        http: !args.no_http,
        otlp,
        events_buffer: (!args.no_events).then_some(args.events_buffer as usize),
        events_ring_pages: args.events_ring_pages as usize,
    };
    let pinned = match &args.pin {
        Some(dir) => {
            let files = pin(dir, bpf::pin::DEFAULT_MODE)?;
            tracing::info!(?files, "pinned the text iterators");
            Some((dir, bpf::pin::Pinned::record(&files)?))
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Capabilities are per thread: each worker takes the drop when it next wakes.
        .on_thread_unpark(|| {
            if let Err(error) = privileges::apply_on_this_thread() {
                tracing::error!(%error, "dropping capabilities on a runtime thread failed");
            }
        })
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(server::run(options));
    if let Some((dir, pinned)) = &pinned {
        let files = bpf::pin::unpin_pinned(dir, pinned)?;
        tracing::info!(?files, "unpinned the text iterators");
    }
    // A collection stuck in the kernel must not hold the exit beyond the 2 s budget.
    runtime.shutdown_timeout(Duration::from_millis(300));
    Ok(served?)
}
