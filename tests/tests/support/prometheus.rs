//! A real Prometheus (Debian's package) on 127.0.0.1 and a port the test
//! picked, with a configuration the test writes (or one scraping a single
//! target every second), its HTTP API, and poll helpers. Killed on drop.
use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use e2e_tests::child::ChildGuard;
use serde_json::Value;

use super::{free_port, http_get, STARTUP};

/// The scrape interval (and timeout) of the configuration written by `scraping`.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

pub struct Prometheus {
    child: ChildGuard,
    port: u16,
    pub dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) as job `job` every
    /// [`SCRAPE_INTERVAL`].
    pub fn scraping(job: &str, target: &str) -> Result<Self> {
        let interval = SCRAPE_INTERVAL.as_secs();
        let config = format!(
            "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        );
        Self::start(&config, |_| Ok(()))
    }

    /// Starts Prometheus with `config` (prometheus.yml) after `setup` has
    /// written any files it names into the directory it runs in.
    pub fn start(config: &str, setup: impl FnOnce(&Path) -> Result<()>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        setup(dir.path())?;
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, config)?;
        let port = free_port()?;
        let child = ChildGuard::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .context("starting prometheus (apt-get install prometheus)")?;
        let prometheus = Prometheus { child, port, dir };
        prometheus.wait_until("Prometheus ready", |p| {
            Ok(http_get(&p.url("/-/ready"), &[])?.status == 200)
        })?;
        Ok(prometheus)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GET on the HTTP API: `data` of a success, or an error carrying
    /// Prometheus' own message (a parse error of a query, for example).
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let mut request = ureq::get(&self.url(path)).timeout(Duration::from_secs(30));
        for (name, value) in params {
            request = request.query(name, value);
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => return Err(e).with_context(|| format!("GET {path} {params:?}")),
        };
        let status = response.status();
        let body: Value = response.into_json()?;
        if status != 200 || body["status"] != "success" {
            bail!(
                "HTTP {status}: {} {}",
                body["errorType"].as_str().unwrap_or_default(),
                body["error"].as_str().unwrap_or_default()
            );
        }
        Ok(body["data"].clone())
    }

    /// Instant query now: each result's labels and value.
    pub fn query(&self, promql: &str) -> Result<Vec<(Value, f64)>> {
        let data = self.api("/api/v1/query", &[("query", promql)])?;
        let results = data["result"].as_array().context("result")?;
        results
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().context("value")?.parse()?;
                Ok((r["metric"].clone(), value))
            })
            .collect()
    }

    /// The value of the one series `promql` returns, `None` if it returns none.
    pub fn value(&self, promql: &str) -> Result<Option<f64>> {
        let results = self.query(promql)?;
        match results.as_slice() {
            [] => Ok(None),
            [(_, value)] => Ok(Some(*value)),
            more => bail!("{promql}: {} series", more.len()),
        }
    }

    /// Scrapes of the target so far (within the last 10 minutes).
    pub fn scrapes(&self) -> Result<f64> {
        Ok(self.value("count_over_time(up[10m])")?.unwrap_or(0.0))
    }

    /// `/api/v1/rules`: the loaded rule groups.
    pub fn rules(&self) -> Result<Value> {
        Ok(self.api("/api/v1/rules", &[])?["groups"].clone())
    }

    /// Polls `done` every 200 ms until it holds; fails after `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Self) -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if done(self).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out after {limit:?} waiting for: {what}");
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The (job, health, last error) of each target, once all `jobs` were scraped.
    pub fn target_health(&self, jobs: usize) -> Result<Vec<(String, String, String)>> {
        let mut health = Vec::new();
        let scraped = self.wait_until("every target scraped", |p| {
            let targets = p.api("/api/v1/targets", &[])?;
            health = targets["activeTargets"]
                .as_array()
                .context("activeTargets")?
                .iter()
                .map(|t| {
                    let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                    (
                        t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                        s("health"),
                        s("lastError"),
                    )
                })
                .filter(|(_, health, _)| health != "unknown")
                .collect();
            Ok(health.len() == jobs)
        });
        scraped.with_context(|| format!("targets scraped: {health:?}"))?;
        Ok(health)
    }

    /// `wait_for` with the start-up limit.
    pub fn wait_until(&self, what: &str, done: impl FnMut(&Self) -> Result<bool>) -> Result<()> {
        self.wait_for(what, STARTUP, done)
    }
}
