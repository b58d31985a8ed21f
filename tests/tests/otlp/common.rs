//! Helpers shared by the OTLP test crates: the push's counters on `/metrics`.
// Each test crate uses a different subset.
#![allow(dead_code)]

use std::{
    thread,
    time::{Duration, Instant},
};

use crate::support::{sample, Server};

/// Upper bound of waits for an export; not a performance assertion.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn exports(server: &Server, result: &str) -> f64 {
    let page = server.metrics().unwrap();
    sample(
        &page,
        &format!("bpf_exporter_otlp_exports_total{{result=\"{result}\"}}"),
    )
    .unwrap_or(0.0)
}

pub fn wait_exports(server: &Server, result: &str, at_least: f64) -> f64 {
    server.wait_ready().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let n = exports(server, result);
        if n >= at_least {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{result} exports stay {n}\n{}",
            server.logs()
        );
        thread::sleep(Duration::from_millis(50));
    }
}
