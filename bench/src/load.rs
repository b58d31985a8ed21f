//! The load test: wrk (Debian's package) drives N concurrent connections at
//! `/metrics` on 127.0.0.1 for a bounded time; its report is parsed here.
use std::{net::SocketAddr, process::Command, time::Duration};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    pub connections: u32,
    pub duration_s: f64,
    pub accept_encoding: Option<String>,
    pub requests: u64,
    pub requests_per_s: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
    /// wrk's latency distribution: (percentile, milliseconds).
    pub latency_ms: Vec<(f64, f64)>,
    /// `bpf_exporter_collections_total` increase during the run.
    pub collections: Option<f64>,
    /// serve's VmHWM after the run, KiB.
    pub serve_peak_kib: Option<u64>,
}

impl LoadResult {
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// Runs wrk against `http://addr/path`; 2 threads (one per core here).
pub fn run_wrk(
    wrk: &str,
    addr: SocketAddr,
    path: &str,
    connections: u32,
    duration: Duration,
    accept_encoding: Option<&str>,
) -> Result<LoadResult> {
    let mut cmd = Command::new(wrk);
    cmd.arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("--timeout")
        .arg("10s");
    if let Some(enc) = accept_encoding {
        cmd.arg("-H").arg(format!("Accept-Encoding: {enc}"));
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .with_context(|| format!("running {wrk} (apt-get install -y wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{wrk} failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut result = parse_wrk(&text).with_context(|| format!("parsing wrk output:\n{text}"))?;
    result.connections = connections;
    result.accept_encoding = accept_encoding.map(str::to_owned);
    Ok(result)
}

/// Parses wrk 4's text report (`--latency`).
pub fn parse_wrk(text: &str) -> Result<LoadResult> {
    let mut result = LoadResult {
        connections: 0,
        duration_s: 0.0,
        accept_encoding: None,
        requests: 0,
        requests_per_s: 0.0,
        non_2xx: 0,
        socket_errors: 0,
        latency_ms: Vec::new(),
        collections: None,
        serve_peak_kib: None,
    };
    let mut in_distribution = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            if let Some((p, v)) = line.split_once('%') {
                if let (Ok(p), Some(ms)) = (p.trim().parse::<f64>(), parse_duration_ms(v.trim())) {
                    result.latency_ms.push((p, ms));
                    continue;
                }
            }
            in_distribution = false;
        }
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            result.requests_per_s = rest.trim().parse()?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = rest.trim().parse()?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            result.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some((count, rest)) = line.split_once(" requests in ") {
            result.requests = count.trim().parse()?;
            let secs = rest.split(',').next().unwrap_or_default();
            result.duration_s = parse_duration_ms(secs.trim()).unwrap_or(0.0) / 1e3;
        }
    }
    if result.requests == 0 && result.requests_per_s == 0.0 {
        bail!("no request count in wrk output");
    }
    Ok(result)
}

/// wrk prints `512.00us`, `12.34ms`, `1.02s`, `2.00m`.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        _ => return None,
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:9/metrics
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    34.45ms   94.56ms 850.63ms   93.52%
    Req/Sec   321.30    139.53   686.00     72.50%
  Latency Distribution
     50%  510.00us
     75%   17.36ms
     90%   30.58ms
     99%    1.20s
  6413 requests in 10.01s, 3.24GB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    640.43
Transfer/sec:      1.61MB
";

    #[test]
    fn parses_a_full_report() {
        let r = parse_wrk(REPORT).unwrap();
        assert_eq!(r.requests, 6413);
        assert!((r.duration_s - 10.01).abs() < 1e-9);
        assert_eq!(r.requests_per_s, 640.43);
        assert_eq!((r.non_2xx, r.socket_errors, r.errors()), (7, 5, 12));
        assert_eq!(
            r.latency_ms,
            vec![(50.0, 0.51), (75.0, 17.36), (90.0, 30.58), (99.0, 1200.0)]
        );
    }

    #[test]
    fn a_clean_run_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse_wrk(&clean).unwrap().errors(), 0);
    }

    #[test]
    fn output_without_counts_is_an_error() {
        assert!(parse_wrk("unable to connect to 127.0.0.1:9 Connection refused").is_err());
    }
}
