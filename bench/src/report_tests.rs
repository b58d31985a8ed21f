use super::*;

fn summary(median_ms: f64) -> Option<Summary> {
    Some(Summary {
        samples: 3,
        median_ms,
        p99_ms: median_ms * 2.0,
        min_ms: median_ms / 2.0,
        max_ms: median_ms * 2.0,
    })
}

fn method(name: &str, median: Option<f64>) -> MethodResult {
    MethodResult {
        method: name.to_owned(),
        summary: median.and_then(summary),
        skipped: median
            .is_none()
            .then(|| "GET /api/v1/inventory answered 404".to_owned()),
    }
}

fn results() -> Results {
    let mut size = SizeResult {
        maps: 100,
        programs: 20,
        seen: Seen {
            programs: 31,
            maps: 130,
            links: 2,
        },
        methods: vec![
            method(RAW, Some(2.0)),
            method(RAW_WITH_OWNERS, Some(5.0)),
            method(COLLECT, Some(2.5)),
            method(SYSCALLS, Some(50.0)),
            method(BPFTOOL, Some(250.0)),
            method("e2e GET /api/v1/inventory", None),
        ],
        ratios: Ratios::default(),
        serve: Some(ServeResult {
            start: Rss {
                rss_kib: 10240,
                peak_kib: 10240,
            },
            idle: Rss {
                rss_kib: 12288,
                peak_kib: 20480,
            },
            cpu_seconds_per_scrape: Some(0.004),
            cpu_scrapes: 50,
            metrics_bytes: Some(1234),
        }),
        churn: None,
    };
    size.compute_ratios();
    Results {
        schema: SCHEMA_VERSION,
        host: Host {
            kernel_release: "6.18.0".to_owned(),
            cpus: 2,
        },
        git_commit: Some("abc123".to_owned()),
        repetitions: 3,
        sizes: vec![size],
        load_test: None,
        notes: vec![],
    }
}

#[test]
fn ratios_are_baseline_over_ours() {
    let r = &results().sizes[0].ratios;
    assert_eq!(r.collect_over_raw, Some(1.25));
    assert_eq!(r.syscalls_over_collect, Some(20.0));
    assert_eq!(r.bpftool_over_collect, Some(100.0));
}

#[test]
fn json_shape_is_stable() {
    let json = serde_json::to_value(results()).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&json),
        [
            "git_commit",
            "host",
            "load_test",
            "notes",
            "repetitions",
            "schema",
            "sizes"
        ]
    );
    let size = &json["sizes"][0];
    assert_eq!(
        keys(size),
        ["churn", "maps", "methods", "programs", "ratios", "seen", "serve"]
    );
    assert_eq!(size["methods"][2]["method"], "collect");
    assert_eq!(size["methods"][2]["summary"]["median_ms"], 2.5);
    assert_eq!(size["methods"][5]["summary"], serde_json::Value::Null);
    assert_eq!(size["ratios"]["syscalls_over_collect"], 20.0);
    assert_eq!(size["serve"]["idle"]["peak_kib"], 20480);
    // Round trip: a later run can read an earlier run's file.
    let back: Results = serde_json::from_value(json).unwrap();
    assert_eq!(back, results());
}

#[test]
fn table_shows_ratios_and_skips() {
    let table = render_table(&results());
    assert!(table.contains("| 100 / 20 (130 / 31) | raw | 2.000 | 4.000 |  |"));
    assert!(table.contains("| raw + owners walk | 5.000 | 10.00 | 2.50× of raw |"));
    assert!(
        table.contains("| collect | 2.500 | 5.000 | 1.25× of raw, 0.50× of raw + owners walk |")
    );
    assert!(table.contains("| baseline-syscalls | 50.00 | 100.0 | 20.0× collect |"));
    assert!(table.contains("skipped: GET /api/v1/inventory answered 404"));
    assert!(table.contains("| 100 / 20 | 10.0 | 12.0 | 20.0 | 4.000 | 1234 |"));
}

/// `results()` with the events rows: /metrics with events on and off, alone
/// and while programs churn.
fn with_events() -> Results {
    let mut results = results();
    let size = &mut results.sizes[0];
    size.methods.extend([
        method(E2E_METRICS, Some(2.0)),
        method(E2E_NO_EVENTS, Some(2.5)),
        method(E2E_CHURN, Some(3.75)),
        method(E2E_NO_EVENTS_CHURN, Some(3.0)),
    ]);
    size.churn = Some(ChurnResult {
        per_second: 100,
        warmup_seconds: 5.0,
        programs: 1500,
        seconds: 15.0,
        loads_counted: Some(1502.0),
        lost_counted: Some(0.0),
        cpu_ms_per_second_on: 12.5,
        cpu_ms_per_second_off: 10.0,
    });
    size.compute_ratios();
    results
}

#[test]
fn events_on_over_off_in_the_same_run() {
    let results = with_events();
    let r = &results.sizes[0].ratios;
    assert_eq!(r.events_on_over_off, Some(0.8));
    assert_eq!(r.events_on_over_off_churn, Some(1.25));
    let table = render_table(&results);
    assert!(
        table.contains("| e2e GET /metrics --no-events | 2.500 | 5.000 | events on / off 0.80× |")
    );
    assert!(table.contains(
        "| e2e GET /metrics --no-events while programs churn | 3.000 | 6.000 | events on / off 1.25× |"
    ));
    assert!(table.contains(
        "Events, 100 / 20: e2e /metrics events on / off 0.80×; while 100 programs a second were \
         loaded and unloaded (1500 in 15.0 s, the first 5 s untimed; 1502 loads and 0 lost records \
         counted by serve): 1.25×; serve CPU over that time events on 12.50, --no-events 10.00 ms per second\n"
    ));
    let back: Results = serde_json::from_value(serde_json::to_value(&results).unwrap()).unwrap();
    assert_eq!(back, results);
}

/// Results written before the events rows read back without them.
#[test]
fn earlier_results_files_still_read() {
    let text = include_str!("../results/issue15-10000-final4-6.18-2cpu.json");
    let results: Results = serde_json::from_str(text).unwrap();
    let size = &results.sizes[0];
    assert_eq!(
        (size.churn.as_ref(), size.ratios.events_on_over_off),
        (None, None)
    );
    assert!(!render_table(&results).contains("Events,"));
}
