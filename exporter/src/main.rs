//! Command line: parse arguments, set up logging, run a subcommand.
use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use bpf_inventory_exporter::{
    allocator,
    bpf::{self, Availability},
    collect, events,
    filter::NameFilter,
    otlp, privileges,
    render::{self, prometheus::RenderOptions},
    server::{self, RunOptions, ServerConfig},
    top,
};
use clap::Parser;

#[path = "main/cli.rs"]
mod cli;
#[path = "main/errors.rs"]
mod errors;
#[path = "main/flags.rs"]
mod flags;

use cli::{Cli, Command, DumpFormat, EventsFormat, LogFormat, LogLevel, ServeArgs};
use errors::one_line;

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
