//! A real Prometheus (Debian's package) scrapes the exporter every second on
//! 127.0.0.1; its HTTP API must show the fixture's true values, `up` 1, and an
//! object destroyed between scrapes must disappear.
mod support;

use e2e_tests::{have_root, Fixture};
use support::{prometheus::Prometheus, Server};

const ENTRIES: u32 = 123;

#[test]
fn prometheus_scrapes_true_values_and_sees_objects_go() {
    if !have_root("prometheus_scrapes_true_values_and_sees_objects_go") {
        return;
    }
    let mut kept = Fixture::load().unwrap();
    kept.fill_hash(0..ENTRIES);
    let kept_id = kept.map_id("fixture_hash");
    let doomed = Fixture::load().unwrap();
    let doomed_id = doomed.map_id("fixture_hash");

    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    let prometheus = Prometheus::scraping("bpf", &server.address.to_string()).unwrap();
    prometheus
        .wait_until("two scrapes", |p| Ok(p.scrapes()? >= 2.0))
        .unwrap();

    assert_eq!(prometheus.value("up{job=\"bpf\"}").unwrap(), Some(1.0));
    let kept_max = format!("bpf_map_max_entries{{id=\"{kept_id}\",name=\"fixture_hash\"}}");
    let kept_entries = format!("bpf_map_entries{{id=\"{kept_id}\",name=\"fixture_hash\"}}");
    assert_eq!(prometheus.value(&kept_max).unwrap(), Some(1000.0));
    assert_eq!(
        prometheus.value(&kept_entries).unwrap(),
        Some(f64::from(ENTRIES))
    );
    let doomed_max = format!("bpf_map_max_entries{{id=\"{doomed_id}\"}}");
    assert_eq!(prometheus.value(&doomed_max).unwrap(), Some(1000.0));
    let results = prometheus.query(&kept_entries).unwrap();
    assert_eq!(results[0].0["type"], "hash");

    // Destroy one fixture; after the next scrapes its series are stale (gone
    // from instant queries), while the other fixture's stay.
    drop(doomed);
    let scrapes_at_drop = prometheus.scrapes().unwrap();
    prometheus
        .wait_until("the destroyed map's series to go", |p| {
            Ok(p.value(&doomed_max)?.is_none() && p.scrapes()? > scrapes_at_drop)
        })
        .unwrap();
    assert_eq!(prometheus.value(&kept_max).unwrap(), Some(1000.0));
    assert_eq!(prometheus.value("up{job=\"bpf\"}").unwrap(), Some(1.0));
    assert!(
        server
            .logs()
            .lines()
            .all(|l| !l.contains("\"WARN\"") && !l.contains("\"ERROR\"")),
        "{}",
        server.logs()
    );
}
