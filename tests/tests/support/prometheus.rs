//! A real Prometheus (Debian's package) on 127.0.0.1 with a configuration the
//! test writes, its HTTP API, and a poll helper. Killed on drop.
use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{free_port, http_get, STARTUP};

pub struct Prometheus {
    child: Child,
    port: u16,
    pub dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` (prometheus.yml) after `setup` has
    /// written any files it names into the directory it runs in.
    pub fn start(config: &str, setup: impl FnOnce(&Path) -> Result<()>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        setup(dir.path())?;
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, config)?;
        let port = free_port()?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
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

    /// Instant query: each result's labels and value.
    pub fn query(&self, promql: &str) -> Result<Vec<(serde_json::Value, f64)>> {
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

    /// `/api/v1/rules`: the loaded rule groups.
    pub fn rules(&self) -> Result<serde_json::Value> {
        let body: serde_json::Value = ureq::get(&self.url("/api/v1/rules")).call()?.into_json()?;
        Ok(body["data"]["groups"].clone())
    }

    /// Polls `done` every 200 ms until it holds; fails after `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Self) -> Result<bool>,
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

    /// `wait_for` with the start-up limit.
    pub fn wait_until(&self, what: &str, done: impl Fn(&Self) -> Result<bool>) -> Result<()> {
        self.wait_for(what, STARTUP, done)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
