//! The OTLP push of the real binary against the real kernel, received by a
//! test receiver on the official protobuf definitions (`otlp/receiver.rs`):
//! the fixture's exact values over HTTP/protobuf and gRPC, resource, units,
//! temporality, delta differences, headers, 3 000 maps of our own as distinct
//! points, https with the collector's CA from OTEL_EXPORTER_OTLP_CERTIFICATE
//! (metrics and the events' log records).
//! The faults are in `otlp_faults.rs`.
#[path = "otlp/common.rs"]
mod common;
#[path = "otlp/receiver.rs"]
mod receiver;
mod support;

use aya::maps::{Map, MapData};
use common::{exports, wait_exports, WAIT};
use e2e_tests::{bpftool, have_root, Fixture, FIXTURE_PROG};
use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest,
    common::v1::any_value::Value as Attr,
    metrics::v1::{metric::Data, AggregationTemporality},
};
use receiver::{
    attribute, metric, point_with_id, points, resource_attribute, value, Answer, Received,
    Receiver, TestPki,
};
use support::{wait_until, Server};

const ENTRIES: u32 = 37;

fn fixture_with_entries() -> Fixture {
    let mut fixture = Fixture::load().expect("load fixture");
    fixture.fill_hash(0..ENTRIES);
    fixture
}

fn bpftool_prog(id: u32) -> serde_json::Value {
    bpftool(&["prog", "show", "id", &id.to_string()]).expect("bpftool")
}

/// Whether the request has a point for map `id` in `bpf.map.max_entries`.
fn has_map(request: &ExportMetricsServiceRequest, id: u32) -> bool {
    metric(request, "bpf.map.max_entries").is_ok_and(|m| point_with_id(m, id).is_ok())
}

fn kernel_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[test]
fn http_and_grpc_pushes_carry_the_fixture_values() {
    if !have_root("http_and_grpc_pushes_carry_the_fixture_values") {
        return;
    }
    let mut fixture = fixture_with_entries();
    let hash = fixture.map_id("fixture_hash");
    let array = fixture.map_id("fixture_array");
    let prog = fixture.program_id(FIXTURE_PROG);
    for (protocol, grpc) in [("http/protobuf", false), ("grpc", true)] {
        let receiver = Receiver::start(Answer::Ok).unwrap();
        let url = receiver.url(grpc);
        let server = Server::start_with_env(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
                ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=e2e"),
                ("NODE_NAME", "node-under-test"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=e2e,x-token=abc%3D"),
            ],
            &["--enable-bpf-stats"],
        )
        .unwrap();
        receiver
            .wait_for(protocol, WAIT, |r| {
                r.iter().any(|r| has_map(&r.request, hash))
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
        // Runs while the exporter holds BPF_ENABLE_STATS; then the export
        // that carries them.
        for _ in 0..3 {
            fixture.run_program(1);
        }
        let bt = bpftool_prog(prog);
        let run_cnt = bt["run_cnt"].as_u64().unwrap_or(0);
        assert!(run_cnt > 0, "the fixture program ran: {bt}");
        let carries_runs = |r: &Received| {
            metric(&r.request, "bpf.prog.runs")
                .is_ok_and(|m| point_with_id(m, prog).is_ok_and(|p| value(p) == run_cnt as f64))
        };
        let received = receiver
            .wait_for("the runs", WAIT, |r| r.iter().any(carries_runs))
            .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
        let Received {
            request,
            grpc: by_grpc,
            ..
        } = received.iter().find(|r| carries_runs(r)).unwrap().clone();
        assert_eq!(by_grpc, grpc, "{protocol} arrived on the other port");
        // OTEL_EXPORTER_OTLP_HEADERS, values URL-decoded as the spec says.
        let mut headers = received[0].headers.clone();
        headers.sort();
        assert_eq!(
            headers,
            [
                ("x-tenant".into(), "e2e".into()),
                ("x-token".into(), "abc=".into())
            ],
            "{protocol}"
        );

        let entries = metric(&request, "bpf.map.entries").unwrap();
        assert_eq!(entries.unit, "{entry}");
        assert!(
            matches!(entries.data, Some(Data::Gauge(_))),
            "entries is a gauge"
        );
        assert_eq!(
            value(point_with_id(entries, hash).unwrap()),
            f64::from(ENTRIES)
        );
        assert_eq!(value(point_with_id(entries, array).unwrap()), 16.0);
        let point = point_with_id(entries, hash).unwrap();
        assert_eq!(
            attribute(&point.attributes, "name"),
            Some(&Attr::StringValue("fixture_hash".into()))
        );
        assert_eq!(
            attribute(&point.attributes, "type"),
            Some(&Attr::StringValue("hash".into()))
        );
        let max_entries = metric(&request, "bpf.map.max_entries").unwrap();
        assert_eq!(max_entries.unit, "{entry}");
        assert_eq!(value(point_with_id(max_entries, hash).unwrap()), 1000.0);

        // Run statistics: a cumulative monotonic sum equal to bpftool's.
        let runs = metric(&request, "bpf.prog.runs").unwrap();
        assert_eq!(runs.unit, "{run}");
        let Some(Data::Sum(sum)) = &runs.data else {
            panic!("bpf.prog.runs is not a sum: {runs:?}");
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let run_time = metric(&request, "bpf.prog.run.time").unwrap();
        assert_eq!(run_time.unit, "s");
        assert_eq!(
            value(point_with_id(run_time, prog).unwrap()),
            bt["run_time_ns"].as_u64().unwrap() as f64 / 1e9
        );
        let memory = metric(&request, "bpf.prog.memory.usage").unwrap();
        assert_eq!(memory.unit, "By");
        assert_eq!(
            value(point_with_id(memory, prog).unwrap()),
            bt["bytes_memlock"].as_u64().unwrap() as f64
        );

        // The resource: ours, the node's, and what the environment adds.
        let resource = |key| resource_attribute(&request, key);
        assert_eq!(
            resource("service.name").as_deref(),
            Some("bpf-inventory-exporter")
        );
        assert_eq!(
            resource("service.version").as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            resource("host.name"),
            Some(kernel_file("/proc/sys/kernel/hostname"))
        );
        assert_eq!(resource("os.type").as_deref(), Some("linux"));
        assert_eq!(
            resource("os.version"),
            Some(kernel_file("/proc/sys/kernel/osrelease"))
        );
        assert_eq!(
            resource("k8s.node.name").as_deref(),
            Some("node-under-test")
        );
        assert_eq!(resource("deployment.environment").as_deref(), Some("e2e"));
        let scope = request.resource_metrics[0].scope_metrics[0]
            .scope
            .as_ref()
            .unwrap();
        assert_eq!(scope.name, "bpf-inventory-exporter");

        // The push is counted on /metrics.
        wait_exports(&server, "success", 1.0);
        assert_eq!(exports(&server, "failure"), 0.0, "{}", server.logs());
    }
}

#[test]
fn delta_temporality_sends_the_difference() {
    if !have_root("delta_temporality_sends_the_difference") {
        return;
    }
    let mut fixture = fixture_with_entries();
    fixture.run_program(1);
    let prog = fixture.program_id(FIXTURE_PROG);
    let receiver = Receiver::start(Answer::Ok).unwrap();
    let server = Server::start_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_url()),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "400"),
        ],
        &["--enable-bpf-stats"],
    )
    .unwrap();
    let runs_of = |r: &Received| {
        let runs = metric(&r.request, "bpf.prog.runs").ok()?;
        point_with_id(runs, prog).ok().map(value)
    };
    let first = receiver
        .wait_for("two exports", WAIT, |r| {
            r.iter().filter(|r| runs_of(r).is_some()).count() >= 2
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
    // bpftool leaves run_cnt out while it is 0.
    let before = bpftool_prog(prog)["run_cnt"].as_u64().unwrap_or(0);
    fixture.run_program(1);
    let after = bpftool_prog(prog)["run_cnt"].as_u64().unwrap();
    let difference = (after - before) as f64;
    let seen = first.len();
    let received = receiver
        .wait_for("three more exports", WAIT, |r| {
            r[seen..].iter().filter(|r| runs_of(r).is_some()).count() >= 3
        })
        .unwrap();
    let deltas: Vec<f64> = received.iter().filter_map(runs_of).collect();
    // The first export carries everything counted before it; later ones the
    // differences: one export has our run's difference, the others nothing.
    assert_eq!(deltas.iter().sum::<f64>(), after as f64, "{deltas:?}");
    let later: Vec<f64> = deltas[1..].iter().copied().filter(|d| *d != 0.0).collect();
    assert_eq!(later, vec![difference], "{deltas:?}");
    let runs = metric(&received.last().unwrap().request, "bpf.prog.runs").unwrap();
    let Some(Data::Sum(sum)) = &runs.data else {
        panic!("not a sum");
    };
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    // Gauges stay absolute values.
    let entries = metric(&received.last().unwrap().request, "bpf.map.entries").unwrap();
    assert_eq!(
        value(point_with_id(entries, fixture.map_id("fixture_hash")).unwrap()),
        f64::from(ENTRIES)
    );
    drop(server);
}

/// Maps of our own: `count` arrays named `otlp_<i>` with max_entries 1 + i % 100.
fn create_maps(count: usize) -> Vec<Map> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a valid rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur as usize > count + 100,
        "RLIMIT_NOFILE {} is too low for {count} maps",
        limit.rlim_cur
    );
    (0..count)
        .map(|i| {
            let def = aya_obj::Map::new_from_params(
                2, // BPF_MAP_TYPE_ARRAY
                4,
                8,
                1 + (i as u32 % 100),
                0,
            );
            let data = MapData::create(def, &format!("otlp_{i}"), None).expect("create map");
            Map::Array(data)
        })
        .collect()
}

fn map_id(map: &Map) -> u32 {
    let Map::Array(data) = map else {
        unreachable!("create_maps makes arrays")
    };
    data.info().unwrap().id()
}

#[test]
fn three_thousand_maps_are_distinct_points() {
    if !have_root("three_thousand_maps_are_distinct_points") {
        return;
    }
    const MAPS: usize = 3_000;
    let maps = create_maps(MAPS);
    let ids: Vec<u32> = maps.iter().map(map_id).collect();
    let all_ours = |r: &Received| {
        metric(&r.request, "bpf.map.max_entries")
            .is_ok_and(|m| ids.iter().all(|&id| point_with_id(m, id).is_ok()))
    };
    let overflow = |r: &Received| {
        metric(&r.request, "bpf.map.max_entries").is_ok_and(|m| {
            points(m)
                .iter()
                .any(|p| attribute(&p.attributes, "otel.metric.overflow").is_some())
        })
    };

    let receiver = Receiver::start(Answer::Ok).unwrap();
    let server = Server::start_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_url()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
        &[],
    )
    .unwrap();
    let received = receiver
        .wait_for("every map of ours", WAIT, |r| r.iter().any(all_ours))
        .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
    let export = received.iter().find(|r| all_ours(r)).unwrap();
    let max_entries = metric(&export.request, "bpf.map.max_entries").unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let matching: Vec<_> = points(max_entries)
            .iter()
            .filter(|p| attribute(&p.attributes, "id") == Some(&Attr::IntValue(id.into())))
            .collect();
        assert_eq!(matching.len(), 1, "map {id}");
        assert_eq!(
            value(matching[0]),
            f64::from(1 + (i as u32 % 100)),
            "map {id}"
        );
    }
    assert!(!overflow(export), "no overflow point");
    drop(server);
    receiver.stop();

    // The limit is what keeps them apart: below the count, the SDK folds.
    let receiver = Receiver::start(Answer::Ok).unwrap();
    let server = Server::start_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_url()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
        &["--otlp-max-series", "1000"],
    )
    .unwrap();
    receiver
        .wait_for("an overflow point", WAIT, |r| r.iter().any(overflow))
        .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
    drop(maps);
}
#[test]
fn https_with_the_collector_ca_from_otel_exporter_otlp_certificate() {
    if !have_root("https_with_the_collector_ca_from_otel_exporter_otlp_certificate") {
        return;
    }
    let pki = TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    for (protocol, grpc) in [("http/protobuf", false), ("grpc", true)] {
        let receiver = Receiver::start_tls(Answer::Ok, &pki).unwrap();
        let url = receiver.https_url(grpc);
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", url.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ];
        // Without the CA the collector's certificate is not trusted.
        let untrusted = Server::start_with_env(&env, &[]).unwrap();
        wait_exports(&untrusted, "failure", 1.0);
        assert_eq!(exports(&untrusted, "success"), 0.0, "{protocol}");
        assert!(
            receiver.received().is_empty() && receiver.received_logs().is_empty(),
            "{protocol}: nothing got through"
        );
        drop(untrusted);

        let mut with_ca = env.to_vec();
        with_ca.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", ca));
        let server = Server::start_with_env(&with_ca, &[]).unwrap();
        let received = receiver
            .wait_for(protocol, WAIT, |r| r.iter().any(|r| r.accepted))
            .unwrap_or_else(|e| panic!("{protocol}: {e}\n{}", server.logs()));
        assert_eq!(received[0].grpc, grpc, "{protocol}");
        assert!(metric(&received[0].request, "bpf.maps").is_ok());
        wait_exports(&server, "success", 1.0);

        // The events take the same way: the load of a program loaded now.
        let fixture = Fixture::load().expect("load fixture");
        let prog = Attr::IntValue(fixture.program_id(FIXTURE_PROG).into());
        let load = Attr::StringValue("load".into());
        let arrived = || {
            receiver
                .received_logs()
                .iter()
                .filter(|logs| logs.grpc == grpc)
                .flat_map(|logs| &logs.request.resource_logs)
                .flat_map(|resource| &resource.scope_logs)
                .flat_map(|scope| &scope.log_records)
                .any(|record| {
                    attribute(&record.attributes, "prog_id") == Some(&prog)
                        && attribute(&record.attributes, "kind") == Some(&load)
                })
        };
        wait_until("the load as a log record", WAIT, arrived)
            .unwrap_or_else(|e| panic!("{protocol}: {e}\n{}", server.logs()));
    }
}
