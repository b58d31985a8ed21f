//! Scrape-cost benchmark: fills the kernel with N maps and M programs and
//! times our iterator collection against the peers' syscall walk and bpftool,
//! plus `serve` end to end, its memory and a load test.
//! Needs root on a BPF host; see docs/performance.md.
mod baseline;
mod events;
mod http;
mod load;
mod measure;
mod owners;
mod populate;
mod report;
mod run;
mod serve;
mod stats;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use bpf_inventory_exporter::{
    bpf::{owners::OwnerWalk, Iterators},
    collect,
};
use clap::Parser;

use crate::{
    populate::Population,
    report::{Host, Results, SCHEMA_VERSION},
};

#[derive(Parser)]
#[command(
    about = "Benchmark the BPF inventory collection against syscall- and bpftool-based collection"
)]
pub struct Cli {
    /// Sizes as MAPSxPROGRAMS, comma separated; run in ascending order, each
    /// adding to the objects of the one before.
    #[arg(long, default_value = "100x20,1000x200,10000x1000", value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<(usize, usize)>,
    /// Timed rounds per size (after one warm-up round).
    #[arg(long, default_value_t = 30)]
    reps: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    #[arg(long, default_value = "bpftool")]
    bpftool: String,
    /// The exporter binary whose `serve` is measured end to end (default:
    /// next to this binary; build it with `cargo build --release`).
    #[arg(long)]
    exporter: Option<PathBuf>,
    /// Extra arguments for `serve` (repeat the flag per argument).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Do not start `serve` (parts 1-4 only).
    #[arg(long)]
    no_serve: bool,
    /// Sequential GET /metrics scrapes over which serve's CPU time is measured.
    #[arg(long, default_value_t = 50)]
    cpu_scrapes: usize,
    /// Programs loaded and unloaded per second while `/metrics` is timed
    /// again with events on and `--no-events` (0: no such phase).
    #[arg(long, default_value_t = 100)]
    churn_per_second: u32,
    /// Seconds of that churn before the timing starts: 60 at 100 a second
    /// fill the events buffer (10 000 events), the most a collection matches.
    #[arg(long, default_value_t = 60)]
    churn_warmup_seconds: u64,
    /// Load test at the largest size: concurrent connections and seconds (0 = off).
    #[arg(long, default_value_t = 32)]
    load_connections: u32,
    #[arg(long, default_value_t = 10)]
    load_seconds: u64,
    /// Accept-Encoding sent by the load test (Prometheus sends gzip); "none" for none.
    #[arg(long, default_value = "gzip")]
    load_accept_encoding: String,
    #[arg(long, default_value = "wrk")]
    wrk: String,
    /// Time only these methods (names as in the table, comma separated), e.g.
    /// `--only raw` under `perf record`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Owners walk sizes as PROCESSESxFDS (e.g. 200x20,2000x50): holders of
    /// one map's fds, walk timed before the other parts; none by default.
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    owners: Vec<(usize, usize)>,
    /// Print the table of an earlier run's JSON and exit (no kernel needed).
    #[arg(long, value_name = "RESULTS_JSON")]
    show: Option<PathBuf>,
    /// Create MAPSxPROGRAMS of the benchmark's objects, hold them until a line
    /// (or EOF) on stdin, then release them and exit: a host of known size for
    /// measuring something else against (docs/performance.md "Cardinality").
    #[arg(long, value_name = "MAPSxPROGRAMS", value_parser = parse_size)]
    hold: Option<(usize, usize)>,
}

fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let (maps, progs) = text
        .split_once('x')
        .ok_or_else(|| format!("{text:?} is not MAPSxPROGRAMS"))?;
    let parse = |s: &str| s.trim().parse::<usize>().map_err(|e| format!("{s:?}: {e}"));
    Ok((parse(maps)?, parse(progs)?))
}

fn main() -> Result<()> {
    let mut cli = Cli::parse();
    if let Some(path) = &cli.show {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let results: Results = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a results file", path.display()))?;
        print!("{}", report::render_table(&results));
        return Ok(());
    }
    if let Some((maps, programs)) = cli.hold {
        return hold(maps, programs);
    }
    // The allocator settings of `serve`: the in-process rows (raw, collect,
    // render) allocate as `serve` does (multi-MB buffers mmapped fresh).
    bpf_inventory_exporter::allocator::tune_allocator();
    cli.sizes.sort();
    if cli.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let exporter = match &cli.exporter {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("bpf-inventory-exporter"),
    };
    if let Some(dir) = cli.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut source = collect::KernelSource::open(&collect::Options::default())
        .context("opening the collection source (run as root on a BPF host)")?;
    let mut source_no_owners = collect::KernelSource::open(&collect::Options {
        no_owners: true,
        ..Default::default()
    })
    .context("opening a second collection source, without owners")?;
    let mut raw = measure::RawReaders {
        iterators: Iterators::load().context("loading the iterators for the raw read")?,
        owners: OwnerWalk::load().context("loading the owners walk for the raw read")?,
    };
    let mut population = Population::default();
    let mut results = Results {
        schema: SCHEMA_VERSION,
        host: Host {
            kernel_release: read_trimmed("/proc/sys/kernel/osrelease"),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        },
        git_commit: git_commit(),
        repetitions: cli.reps,
        sizes: Vec::new(),
        load_test: None,
        notes: Vec::new(),
    };
    results.notes.extend(owners::measure(
        &cli.owners,
        cli.reps,
        &mut source,
        &mut source_no_owners,
    )?);
    let serve_exe = (!cli.no_serve).then_some(exporter.as_path());
    if serve_exe.is_some_and(|p| !p.exists()) {
        results.notes.push(format!(
            "{} not found: end-to-end parts skipped (cargo build --release -p bpf-inventory-exporter)",
            exporter.display()
        ));
    }
    results.notes.push(format!(
        "load average at start: {}",
        read_trimmed("/proc/loadavg")
    ));
    let largest = cli.sizes.last().copied();
    for &(maps, programs) in &cli.sizes {
        eprintln!("== {maps} maps, {programs} programs");
        population.grow_to(maps, programs)?;
        let ctx = run::SizeRun {
            cli: &cli,
            serve_exe: serve_exe.filter(|p| p.exists()),
            load: Some((maps, programs)) == largest && cli.load_seconds > 0,
        };
        let size = run::run_size(
            &ctx,
            &mut source,
            &mut source_no_owners,
            &mut raw,
            &population,
            &mut results,
        )?;
        results.sizes.push(size);
    }
    results.notes.push(format!(
        "load average at end: {}",
        read_trimmed("/proc/loadavg")
    ));
    results.notes.push(
        "p99 is nearest-rank: with fewer than 100 repetitions it is the slowest run".to_owned(),
    );
    let table = report::render_table(&results);
    println!("{table}");
    std::fs::write(&cli.out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", cli.out.display()))?;
    eprintln!("results written to {}", cli.out.display());
    drop(population); // closes every benchmark map and program fd
    Ok(())
}

/// Holds the objects until stdin has a line or ends; the `Population`'s drop
/// then closes every fd and kills any holder process.
fn hold(maps: usize, programs: usize) -> Result<()> {
    let mut population = Population::default();
    population.grow_to(maps, programs)?;
    println!(
        "holding {} maps (bench_*) and {} programs (bench_p*); press Enter to release them",
        population.maps(),
        population.programs()
    );
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading stdin")?;
    Ok(())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
