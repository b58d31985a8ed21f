//! The `process_*` values of this process, read from /proc/self when a page
//! is rendered.
use procfs::process::{LimitValue, Process};

use crate::render::server_stats::ProcessStats;

/// None when /proc is not readable (logged at DEBUG: the page goes on without them).
pub fn process_stats() -> Option<ProcessStats> {
    match read() {
        Ok(stats) => Some(stats),
        Err(error) => {
            tracing::debug!(%error, "reading /proc/self failed");
            None
        }
    }
}

fn read() -> procfs::ProcResult<ProcessStats> {
    let me = Process::myself()?;
    let stat = me.stat()?;
    let ticks = procfs::ticks_per_second() as f64;
    let max_fds = match me.limits()?.max_open_files.soft_limit {
        LimitValue::Value(limit) => Some(limit),
        LimitValue::Unlimited => None,
    };
    Ok(ProcessStats {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        resident_bytes: stat.rss * procfs::page_size(),
        virtual_bytes: stat.vsize,
        open_fds: me.fd_count()? as u64,
        max_fds,
        start_time_seconds: procfs::boot_time_secs()? as f64 + stat.starttime as f64 / ticks,
    })
}
