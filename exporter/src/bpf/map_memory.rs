//! Map memory as the kernel accounts it (`memlock` in the map's fdinfo, what
//! bpftool shows as bytes_memlock). The kernel computes it in map_mem_usage(),
//! which BPF cannot call, so it costs a get-fd-by-id, an fdinfo read and a
//! close per map: too slow for every scrape of a large host. Values are cached
//! per map id; a map not yet in the cache is read at once, and the whole cache
//! is re-read by `refresh` (the server runs it in the background).
use std::{
    io,
    os::fd::AsRawFd,
    sync::Mutex,
    time::{Duration, Instant},
};

use foldhash::HashMap;

use super::{records::OWNER_KIND_MAP, syscall::map_fd_by_id, transient::TransientFd};

/// Reads one map's `memlock` from fdinfo. Needs CAP_SYS_ADMIN. The fd is
/// transient: the owners walk never lists the exporter as the map's owner
/// for it.
pub fn read_map_memory(id: u32) -> io::Result<u64> {
    let opened = TransientFd::open(|| Ok((map_fd_by_id(id)?, OWNER_KIND_MAP, id)))?;
    let fd = opened.fd().as_raw_fd();
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    parse_memlock(&fdinfo).ok_or_else(|| io::Error::other("no memlock line in map fdinfo"))
}

fn parse_memlock(fdinfo: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
}

#[derive(Default)]
struct Cache {
    bytes: HashMap<u32, u64>,
    refreshed_at: Option<Instant>,
}

/// Cached map memory, shared between collections and the refresher.
#[derive(Default)]
pub struct MapMemory {
    cache: Mutex<Cache>,
}

impl MapMemory {
    /// The memory of each map in `ids` (None where unreadable, for instance
    /// the map vanished), reading those not cached yet.
    pub fn lookup(&self, ids: impl Iterator<Item = u32>) -> Vec<Option<u64>> {
        let mut cache = self.lock();
        ids.map(|id| match cache.bytes.get(&id) {
            Some(&bytes) => Some(bytes),
            None => {
                let bytes = read_map_memory(id).ok()?;
                cache.bytes.insert(id, bytes);
                Some(bytes)
            }
        })
        .collect()
    }

    /// Re-reads every map in `ids` and forgets maps not in it. The reads
    /// happen without the lock held, so collections are not blocked.
    pub fn refresh(&self, ids: &[u32]) {
        let fresh: HashMap<u32, u64> = ids
            .iter()
            .filter_map(|&id| read_map_memory(id).ok().map(|b| (id, b)))
            .collect();
        let mut cache = self.lock();
        cache.bytes = fresh;
        cache.refreshed_at = Some(Instant::now());
    }

    /// Time since the last full refresh, if there was one.
    pub fn age(&self) -> Option<Duration> {
        self.lock().refreshed_at.map(|t| t.elapsed())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves a plain map: still usable.
        crate::sync::lock(&self.cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memlock_from_fdinfo() {
        let fdinfo = "pos:\t0\nflags:\t02000002\nmap_type:\t1\nmemlock:\t8512\nmap_id:\t42\n";
        assert_eq!(parse_memlock(fdinfo), Some(8512));
        assert_eq!(parse_memlock("pos:\t0\n"), None);
    }
}
