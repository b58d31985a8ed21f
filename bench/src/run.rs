//! One size of the benchmark: check the numbers are right, start `serve`,
//! time every method interleaved, then serve's memory, CPU and (at the
//! largest size) the load test.
use std::{path::Path, time::Duration};

use anyhow::{Context, Result};
use bpf_inventory_exporter::{collect::KernelSource, inventory::Inventory};

use crate::{
    baseline, events, http, load,
    measure::{self, Method, RawReaders, Targets, HTTP_METHODS},
    populate::Population,
    report::{Results, Seen, ServeResult, SizeResult, E2E_CHURN, E2E_NO_EVENTS_CHURN},
    serve::{metric_sum, Serve},
    Cli,
};

pub struct SizeRun<'a> {
    pub cli: &'a Cli,
    pub serve_exe: Option<&'a Path>,
    pub load: bool,
}

pub fn run_size(
    ctx: &SizeRun<'_>,
    source: &mut KernelSource,
    source_no_owners: &mut KernelSource,
    raw: &mut RawReaders,
    population: &Population,
    results: &mut Results,
) -> Result<SizeResult> {
    let (maps, programs) = (population.maps(), population.programs());
    let (seen, inventory) = verify(source, population, &ctx.cli.bpftool, results)?;
    let serve = start_serve(ctx, (maps, programs), false, results);
    // Its events off, the same otherwise: for the events rows.
    let serve_no_events = serve
        .as_ref()
        .and_then(|_| start_serve(ctx, (maps, programs), true, results));
    let start_rss = serve.as_ref().map(Serve::rss).transpose()?;
    let mut targets = Targets {
        source,
        source_no_owners,
        raw,
        bpftool: &ctx.cli.bpftool,
        serve: serve.as_ref().map(|s| s.addr),
        serve_no_events: serve_no_events.as_ref().map(|s| s.addr),
        full_event_log: events::full_log(),
        inventory: &inventory,
        fragments: Default::default(),
        page: String::new(),
        response: Vec::new(),
        collected: None,
    };
    let mut methods: Vec<(Method, Option<String>)> = [
        Method::Raw,
        Method::RawWithOwners,
        Method::Collect,
        Method::CollectNoOwners,
        Method::BaselineSyscalls,
        Method::BaselineBpftool,
        Method::Render,
        Method::RenderKept,
        Method::EncodeJson,
        Method::EventsObserve,
    ]
    .into_iter()
    .chain(HTTP_METHODS)
    .chain([Method::MetricsNoEvents])
    .filter(|m| ctx.cli.only.is_empty() || ctx.cli.only.contains(&m.name()))
    .map(|m| (m, None))
    .collect();
    for (method, skip) in &mut methods {
        *skip = match (method, &serve) {
            (Method::Http { .. }, None) => Some("serve not running".to_owned()),
            (method, _) => targets.probe(method),
        };
    }
    eprintln!("   timing {} rounds", ctx.cli.reps);
    let mut timed = measure::interleaved(&mut targets, &methods, ctx.cli.reps);
    let serve_result = match (&serve, start_rss) {
        (Some(serve), Some(start)) => Some(measure_serve(serve, start, ctx.cli.cpu_scrapes)?),
        _ => None,
    };
    if let (true, Some(serve)) = (ctx.load, &serve) {
        results.load_test = load_test(ctx.cli, serve, results);
    }
    // Last: the churn fills the events serve's buffer, which stays full.
    let mut churn = None;
    let wanted = |m: &str| ctx.cli.only.is_empty() || ctx.cli.only.iter().any(|o| o == m);
    if let (Some(on), Some(off), true, true) = (
        &serve,
        &serve_no_events,
        ctx.cli.churn_per_second > 0,
        wanted(E2E_CHURN) && wanted(E2E_NO_EVENTS_CHURN),
    ) {
        eprintln!(
            "   timing {} rounds while {} programs a second are loaded and unloaded (after {} s)",
            ctx.cli.reps, ctx.cli.churn_per_second, ctx.cli.churn_warmup_seconds
        );
        let (rows, result) = events::churn_phase(
            &mut targets,
            (on, off),
            ctx.cli.churn_per_second,
            Duration::from_secs(ctx.cli.churn_warmup_seconds),
            ctx.cli.reps,
        )?;
        timed.extend(rows);
        churn = Some(result);
    }
    let mut size = SizeResult {
        maps,
        programs,
        seen,
        methods: timed,
        ratios: Default::default(),
        serve: serve_result,
        churn,
    };
    size.compute_ratios();
    Ok(size)
}

/// Starts `serve` for this size (with `--no-events` if `no_events`); a
/// failure goes into the notes.
fn start_serve(
    ctx: &SizeRun<'_>,
    (maps, programs): (usize, usize),
    no_events: bool,
    results: &mut Results,
) -> Option<Serve> {
    let exe = ctx.serve_exe?;
    let suffix = if no_events { "-no-events" } else { "" };
    let log = ctx
        .cli
        .out
        .with_file_name(format!("serve-{maps}x{programs}{suffix}.log"));
    let mut args = ctx.cli.serve_args.clone();
    if no_events {
        args.push("--no-events".to_owned());
    }
    match Serve::start(exe, &args, log) {
        Ok(serve) => Some(serve),
        Err(e) => {
            results.notes.push(format!(
                "{maps}x{programs}: serve{} not measured: {e:#}",
                if no_events { " --no-events" } else { "" }
            ));
            None
        }
    }
}

/// Checks, untimed, that `collect` and the syscall walk both report the entry
/// counts we put in; a mismatch goes into the notes (and stderr), not a panic.
fn verify(
    source: &mut KernelSource,
    population: &Population,
    bpftool: &str,
    results: &mut Results,
) -> Result<(Seen, Inventory)> {
    let inventory = source.collect();
    let walk = baseline::syscall_walk()?;
    let tool = baseline::bpftool(bpftool);
    let walked = walk.entries();
    let (mut ours_wrong, mut walk_wrong) = (0usize, 0usize);
    for &(id, expected) in &population.expected_entries {
        if inventory.map(id).and_then(|m| m.entries) != Some(expected) {
            ours_wrong += 1;
        }
        if walked.get(&id) != Some(&expected) {
            walk_wrong += 1;
        }
    }
    let checked = population.expected_entries.len();
    eprintln!(
        "   verified entry counts of {checked} hash maps ({} entries): collect wrong {ours_wrong}, syscall walk wrong {walk_wrong}; \
         kernel holds {} maps, {} programs, {} links",
        population.hash_entries,
        inventory.maps.len(),
        inventory.programs.len(),
        inventory.links.len()
    );
    eprintln!(
        "   syscall walk sees {} maps, {} programs, {} links; bpftool {}",
        walk.maps.len(),
        walk.programs.len(),
        walk.links.len(),
        match &tool {
            Ok(t) => format!("{} maps, {} programs", t.maps, t.programs),
            Err(e) => format!("failed: {e:#}"),
        }
    );
    if ours_wrong + walk_wrong > 0 {
        results.notes.push(format!(
            "{}x{}: entry counts differ from the filled values: collect {ours_wrong}, syscall walk {walk_wrong} of {checked}",
            population.maps(),
            population.programs()
        ));
    }
    let seen = Seen {
        programs: inventory.programs.len(),
        maps: inventory.maps.len(),
        links: inventory.links.len(),
    };
    Ok((seen, inventory))
}

fn measure_serve(serve: &Serve, start: crate::serve::Rss, scrapes: usize) -> Result<ServeResult> {
    let mut metrics_bytes = None;
    let before = serve.cpu_seconds()?;
    let mut done = 0usize;
    for _ in 0..scrapes {
        match http::get(serve.addr, "/metrics", None) {
            Ok(r) if r.status == 200 => {
                metrics_bytes = Some(r.body().len());
                done += 1;
            }
            _ => break,
        }
    }
    let after = serve.cpu_seconds()?;
    std::thread::sleep(Duration::from_secs(1));
    Ok(ServeResult {
        start,
        idle: serve.rss().context("serve RSS after the scrapes")?,
        cpu_seconds_per_scrape: (done > 0).then(|| (after - before) / done as f64),
        cpu_scrapes: done,
        metrics_bytes,
    })
}

fn load_test(cli: &Cli, serve: &Serve, results: &mut Results) -> Option<load::LoadResult> {
    let collections = || {
        http::get(serve.addr, "/metrics", None).ok().and_then(|r| {
            metric_sum(
                &String::from_utf8_lossy(r.body()),
                "bpf_exporter_collections_total",
            )
        })
    };
    let encoding =
        (cli.load_accept_encoding != "none").then_some(cli.load_accept_encoding.as_str());
    eprintln!(
        "   load test: {} connections for {} s",
        cli.load_connections, cli.load_seconds
    );
    let before = collections();
    let outcome = load::run_wrk(
        &cli.wrk,
        serve.addr,
        "/metrics",
        cli.load_connections,
        Duration::from_secs(cli.load_seconds),
        encoding,
    );
    match outcome {
        Ok(mut result) => {
            // One of the two scrapes that read the counter is counted either way.
            result.collections = match (before, collections()) {
                (Some(b), Some(a)) => Some(a - b - 1.0),
                _ => None,
            };
            result.serve_peak_kib = serve.rss().ok().map(|r| r.peak_kib);
            Some(result)
        }
        Err(e) => {
            results.notes.push(format!("load test not run: {e:#}"));
            None
        }
    }
}
