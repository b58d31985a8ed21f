//! A real Prometheus (Debian's package) scrapes the exporter every second on
//! 127.0.0.1; its HTTP API must show the fixture's true values, `up` 1, and an
//! object destroyed between scrapes must disappear.
mod support;

use std::{
    fs,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use aya::maps::HashMap;
use e2e_tests::{have_root, Fixture};
use support::{free_port, http_get, Server, STARTUP};

const ENTRIES: u32 = 123;

struct Prometheus {
    child: Child,
    port: u16,
    _storage: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Result<Self> {
        let storage = tempfile::tempdir()?;
        let config = storage.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: bpf\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )?;
        let port = free_port()?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                storage.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting prometheus (apt-get install prometheus)")?;
        let prometheus = Prometheus {
            child,
            port,
            _storage: storage,
        };
        prometheus.wait_until("Prometheus ready", |p| {
            Ok(http_get(&p.url("/-/ready"), &[])?.status == 200)
        })?;
        Ok(prometheus)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Instant query: each result's labels and value.
    fn query(&self, promql: &str) -> Result<Vec<(serde_json::Value, f64)>> {
        let response = ureq::get(&self.url("/api/v1/query"))
            .query("query", promql)
            .call()
            .with_context(|| format!("query {promql}"))?;
        let body: serde_json::Value = response.into_json()?;
        let results = body["data"]["result"].as_array().context("result")?;
        results
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().context("value")?.parse()?;
                Ok((r["metric"].clone(), value))
            })
            .collect()
    }

    fn value(&self, promql: &str) -> Result<Option<f64>> {
        let results = self.query(promql)?;
        match results.as_slice() {
            [] => Ok(None),
            [(_, value)] => Ok(Some(*value)),
            more => bail!("{promql}: {} series", more.len()),
        }
    }

    fn scrapes(&self) -> Result<f64> {
        Ok(self
            .value("count_over_time(up{job=\"bpf\"}[10m])")?
            .unwrap_or(0.0))
    }

    /// Polls `done` every 200 ms until it holds; fails after STARTUP.
    fn wait_until(&self, what: &str, done: impl Fn(&Self) -> Result<bool>) -> Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if done(self).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for: {what}");
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_true_values_and_sees_objects_go() {
    if !have_root("prometheus_scrapes_true_values_and_sees_objects_go") {
        return;
    }
    let mut kept = Fixture::load().unwrap();
    let map = kept.ebpf.map_mut("fixture_hash").unwrap();
    let mut hash: HashMap<_, u32, u64> = HashMap::try_from(map).unwrap();
    for key in 0..ENTRIES {
        hash.insert(key, 1, 0).unwrap();
    }
    let kept_id = kept.map_id("fixture_hash");
    let doomed = Fixture::load().unwrap();
    let doomed_id = doomed.map_id("fixture_hash");

    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    let prometheus = Prometheus::start(&server.address.to_string()).unwrap();
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
