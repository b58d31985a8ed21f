//! What `serve` adds to a page besides the collection: its own process, the
//! requests it rejected and the reloads of its web config. Gathered by the server when it renders a page,
//! written by the Prometheus renderer ([`super::families::SERVER_FAMILIES`]).

/// The server's part of a page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerStats {
    /// None when /proc could not be read.
    pub process: Option<ProcessStats>,
    /// Rejected requests since start, by reason (every reason, zeros included).
    pub rejected: Vec<(&'static str, u64)>,
    /// None without `--web.config.file`.
    pub web_config: Option<WebConfigReloads>,
}

/// Reloads of `--web.config.file` since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebConfigReloads {
    /// Whether the latest reload succeeded (true before any).
    pub last_successful: bool,
    pub succeeded: u64,
    pub failed: u64,
}

/// The usual `process_*` values, from /proc/self.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    /// The soft RLIMIT_NOFILE; None when unlimited.
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}
