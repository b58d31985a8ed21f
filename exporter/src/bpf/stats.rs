//! Program run statistics: the kernel counts run time and run count only while
//! `kernel.bpf_stats_enabled` is set or someone holds a BPF_ENABLE_STATS fd.
use std::os::fd::OwnedFd;

use aya::sys::{enable_stats, Stats, SyscallError};

/// Keeps the kernel's run-time statistics on while alive.
#[derive(Debug)]
pub struct StatsGuard {
    _fd: OwnedFd,
}

/// Enables run-time statistics until the guard is dropped (needs CAP_SYS_ADMIN).
pub fn enable() -> Result<StatsGuard, SyscallError> {
    enable_stats(Stats::RunTime).map(|fd| StatsGuard { _fd: fd })
}

/// Whether the `kernel.bpf_stats_enabled` sysctl is on. A BPF_ENABLE_STATS fd
/// held by a process does not show there (ours is tracked by its guard; another
/// process's cannot be seen).
pub fn kernel_stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|s| s.trim() != "0")
        .unwrap_or(false)
}
