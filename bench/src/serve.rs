//! A `serve` process started by the bench on 127.0.0.1: its address, its
//! memory (/proc/<pid>/status) and CPU time (/proc/<pid>/stat). Stopped with
//! SIGTERM (then SIGKILL) when dropped.
use std::{
    fs::File,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::http;

pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

/// Resident memory of the process, KiB.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rss {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Serve {
    /// Starts `<exporter> serve --listen 127.0.0.1:<free port> <extra>` and
    /// waits until it answers HTTP.
    pub fn start(exporter: &Path, extra: &[String], log: PathBuf) -> Result<Self> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(exporter)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {} serve", exporter.display()))?;
        let mut serve = Serve { child, addr, log };
        serve.wait_ready(Duration::from_secs(30))?;
        Ok(serve)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "serve exited with {status} before listening; its log ({}):\n{}",
                    self.log.display(),
                    tail(&self.log)
                );
            }
            if TcpStream::connect(self.addr).is_ok() && self.ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("serve did not listen on {} within {timeout:?}", self.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `/readyz` says 200 once the first collection is done; a build without
    /// that route is ready when `/metrics` answers 200.
    fn ready(&self) -> bool {
        match http::get(self.addr, "/readyz", None) {
            Ok(r) if r.status == 404 => {
                http::get(self.addr, "/metrics", None).is_ok_and(|r| r.status == 200)
            }
            Ok(r) => r.status == 200,
            Err(_) => false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss(&self) -> Result<Rss> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} missing from {path}"))
        };
        Ok(Rss {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    /// utime + stime of the whole process (all threads), seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let ticks = cpu_ticks_from_stat(&stat).with_context(|| format!("parsing {path}"))?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Ok(ticks as f64 / hz.max(1) as f64)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM to the child we started, by its pid; SIGKILL if it lingers.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill with a pid we own and a valid signal number.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime (fields 14 and 15) from a /proc/<pid>/stat line. The command
/// name may contain spaces and parentheses, so count from the last ')'.
pub fn cpu_ticks_from_stat(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace().skip(11); // state is field 3
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Sums every sample of a counter family in a Prometheus text page.
pub fn metric_sum(page: &str, family: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(family) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        *found.get_or_insert(0.0) += value;
    }
    found
}

/// Asks the kernel for a free port, then releases it for `serve` to bind.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_survive_odd_command_names() {
        let stat = "4242 (bpf (inv) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0";
        assert_eq!(cpu_ticks_from_stat(stat), Some(22));
        assert_eq!(cpu_ticks_from_stat("garbage"), None);
    }

    #[test]
    fn counter_families_are_summed_exactly() {
        let page = "# TYPE bpf_exporter_collections_total counter\n\
                    bpf_exporter_collections_total 41\n\
                    bpf_exporter_collections_total_other 9\n\
                    bpf_exporter_collections_total{result=\"error\"} 1\n";
        assert_eq!(
            metric_sum(page, "bpf_exporter_collections_total"),
            Some(42.0)
        );
        assert_eq!(metric_sum(page, "bpf_missing"), None);
    }
}
