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
    bpf::{self, Availability},
    collect,
    filter::NameFilter,
    render::{self, prometheus::RenderOptions},
    server::{self, RunOptions, ServerConfig},
};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Log line format (on stderr).
    #[arg(long, value_enum, global = true, env = "BPF_EXPORTER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: `serve` with these flags.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve Prometheus metrics over HTTP (the default).
    Serve(ServeArgs),
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
}

#[derive(Args, Clone)]
struct PinDir {
    /// A directory of its own in a BPF filesystem (not the mount's root); created if missing.
    #[arg(long, default_value = bpf::pin::DEFAULT_DIR)]
    dir: PathBuf,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{text:?} is not an octal file mode such as 0400 or 0444"
        )),
    }
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on (ebpf_exporter has 9435, hence 10435).
    #[arg(long, env = "BPF_EXPORTER_LISTEN", default_value = "0.0.0.0:10435")]
    listen: SocketAddr,
    /// Hold BPF_ENABLE_STATS for the life of the process (program run time and run counts).
    #[arg(long, env = "BPF_EXPORTER_ENABLE_BPF_STATS")]
    enable_bpf_stats: bool,
    /// Export only programs and maps whose whole name matches this regex.
    #[arg(long, env = "BPF_EXPORTER_INCLUDE_NAME", value_name = "REGEX")]
    include_name: Option<String>,
    /// Leave out programs and maps whose whole name matches this regex (and their links).
    #[arg(long, env = "BPF_EXPORTER_EXCLUDE_NAME", value_name = "REGEX")]
    exclude_name: Option<String>,
    /// Only the aggregates by type and the exporter's own series: no per-object series.
    #[arg(long, env = "BPF_EXPORTER_AGGREGATES_ONLY")]
    aggregates_only: bool,
    /// Interval of the background re-read of map memory (one fdinfo read per map); 0s switches it off.
    #[arg(long, env = "BPF_EXPORTER_MAP_MEMORY_REFRESH", default_value = "30s", value_parser = humantime::parse_duration)]
    map_memory_refresh: Duration,
    /// Upper bound of one collection; a shorter Prometheus scrape timeout wins.
    #[arg(long, env = "BPF_EXPORTER_COLLECTION_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    collection_timeout: Duration,
    /// Requests reading the kernel at once; more get 503.
    #[arg(long, env = "BPF_EXPORTER_MAX_REQUESTS_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_requests_in_flight: u32,
    /// Pin the text iterators into this bpffs directory at start-up (mode 0400) and unpin them on exit.
    #[arg(long, env = "BPF_EXPORTER_PIN", value_name = "DIR")]
    pin: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpFormat {
    Json,
    Table,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpf-inventory-exporter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Dump {
            format,
            enable_bpf_stats,
        }) => {
            let mut source = collect::Source::open(&collect::Options {
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
    }
}

fn check() -> anyhow::Result<()> {
    let mut source = collect::Source::open(&collect::Options::default())?;
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
    for missing in support.unavailable() {
        println!("unavailable: {missing}");
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

const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before listening: without the capabilities, one line and exit.
    bpf_inventory_exporter::bpf::caps::check()?;
    anyhow::ensure!(
        std::path::Path::new(BTF_PATH).exists(),
        "kernel BTF unavailable ({BTF_PATH} missing): the exporter needs a kernel built with CONFIG_DEBUG_INFO_BTF"
    );
    // Before any thread starts: the arena limit applies to threads created later.
    server::tune_allocator();
    let filter = NameFilter::new(args.include_name.as_deref(), args.exclude_name.as_deref())?;
    let options = RunOptions {
        listen: args.listen,
        source: collect::Options {
            enable_bpf_stats: args.enable_bpf_stats,
            filter,
        },
        server: ServerConfig {
            collection_timeout: args.collection_timeout,
            max_requests_in_flight: args.max_requests_in_flight as usize,
            render: RenderOptions {
                per_object: !args.aggregates_only,
                ..RenderOptions::default()
            },
        },
        map_memory_refresh: (!args.map_memory_refresh.is_zero()).then_some(args.map_memory_refresh),
    };
    if let Some(dir) = &args.pin {
        let files = pin(dir, bpf::pin::DEFAULT_MODE)?;
        tracing::info!(?files, "pinned the text iterators");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let served = runtime.block_on(server::run(options));
    if let Some(dir) = &args.pin {
        let files = bpf::pin::unpin(dir)?;
        tracing::info!(?files, "unpinned the text iterators");
    }
    // A collection stuck in the kernel must not hold the exit beyond the 2 s budget.
    runtime.shutdown_timeout(Duration::from_millis(300));
    Ok(served?)
}
