//! Fills the real kernel with the benchmark's objects: maps of mixed types
//! (hash-type maps partly filled) and tiny socket-filter programs. Every object
//! is held by an fd we own, so dropping the `Population` releases them all.
//! Beyond what RLIMIT_NOFILE allows one process (here 20 000, not raisable
//! without CAP_SYS_RESOURCE), maps are handed to holder processes: a fork
//! that keeps only those maps' fds and waits to be killed.
use std::{ffi::CString, io, os::fd::OwnedFd};

use anyhow::{Context, Result};
use aya::maps::{HashMap, Map, MapData, PerCpuHashMap, PerCpuValues};
use aya_obj::generated::bpf_map_type;
use bpf_inventory_exporter::bpf::syscall::bpf_fd;

/// Capacity of every benchmark map; hash-type maps hold `i % (FILL_MAX + 1)` entries.
pub const MAX_ENTRIES: u32 = 256;
pub const FILL_MAX: u32 = 128;

/// The map types cycled through, in creation order.
pub const MAP_KINDS: [(bpf_map_type, &str); 6] = [
    (bpf_map_type::BPF_MAP_TYPE_HASH, "hash"),
    (bpf_map_type::BPF_MAP_TYPE_ARRAY, "array"),
    (bpf_map_type::BPF_MAP_TYPE_LRU_HASH, "lru_hash"),
    (bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH, "percpu_hash"),
    (bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY, "percpu_array"),
    (
        bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH,
        "lru_percpu_hash",
    ),
];

/// The benchmark's own maps and programs, released on drop (their fds close).
#[derive(Default)]
pub struct Population {
    maps: Vec<Map>,
    programs: Vec<OwnedFd>,
    /// (map id, element count) of every hash-type map we filled.
    pub expected_entries: Vec<(u32, u64)>,
    pub hash_entries: u64,
    /// Maps handed to holder processes, and those processes (killed on drop).
    handed_off: usize,
    holders: Vec<libc::pid_t>,
}

impl Drop for Population {
    fn drop(&mut self) {
        for &pid in &self.holders {
            // SAFETY: kill and waitpid on children we forked.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

impl Population {
    pub fn maps(&self) -> usize {
        self.handed_off + self.maps.len()
    }

    pub fn programs(&self) -> usize {
        self.programs.len()
    }

    /// Adds maps and programs until there are `maps` and `programs` of them.
    pub fn grow_to(&mut self, maps: usize, programs: usize) -> Result<()> {
        let limit = raise_nofile_limit(maps + programs + 4096)?;
        // Room for the exporter's own fds, the owners walk and bpftool checks.
        let held = limit.saturating_sub(4096).max(1024);
        let cpus =
            aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("reading {path}: {e}"))?;
        for i in self.maps()..maps {
            if self.maps.len() + programs >= held {
                self.hand_off(limit)?;
            }
            let map = create_map(i, cpus).with_context(|| {
                format!("creating benchmark map {i} (is the process root / CAP_BPF?)")
            })?;
            self.record_expected(i, &map)?;
            self.maps.push(map);
        }
        for i in self.programs.len()..programs {
            let fd = load_socket_filter(&format!("bench_p{i}"))
                .with_context(|| format!("loading benchmark program {i}"))?;
            self.programs.push(fd);
        }
        Ok(())
    }

    /// Forks a holder of the maps this process holds now, then closes them here.
    fn hand_off(&mut self, fd_limit: usize) -> Result<()> {
        use std::os::fd::{AsFd, AsRawFd};
        let mut keep: Vec<i32> = self
            .maps
            .iter()
            .map(|m| map_data(m).fd().as_fd().as_raw_fd())
            .collect();
        keep.sort_unstable();
        // SAFETY: the child only closes fds and pauses (async-signal-safe,
        // no allocation) until the parent kills it.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error()).context("fork of a map holder");
        }
        if pid == 0 {
            for fd in 0..fd_limit as i32 {
                if keep.binary_search(&fd).is_err() {
                    // SAFETY: closing fds in the child; it never uses them.
                    unsafe { libc::close(fd) };
                }
            }
            loop {
                // SAFETY: waits for the parent's SIGKILL.
                unsafe { libc::pause() };
            }
        }
        self.holders.push(pid);
        self.handed_off += self.maps.len();
        self.maps.clear();
        Ok(())
    }

    fn record_expected(&mut self, i: usize, map: &Map) -> Result<()> {
        let data = map_data(map);
        let id = data.info().context("map info")?.id();
        let (kind, _) = MAP_KINDS[i % MAP_KINDS.len()];
        if is_hash(kind) {
            let n = fill_for(i);
            self.hash_entries += u64::from(n);
            self.expected_entries.push((id, u64::from(n)));
        }
        Ok(())
    }
}

fn map_data(map: &Map) -> &MapData {
    match map {
        Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::Array(d)
        | Map::PerCpuArray(d) => d,
        // create_map only makes the six kinds above.
        other => unreachable!("unexpected benchmark map {other:?}"),
    }
}

fn is_hash(kind: bpf_map_type) -> bool {
    matches!(
        kind,
        bpf_map_type::BPF_MAP_TYPE_HASH
            | bpf_map_type::BPF_MAP_TYPE_LRU_HASH
            | bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH
            | bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH
    )
}

/// Entries put in the `i`-th map when it is a hash type: 0 to FILL_MAX.
pub fn fill_for(i: usize) -> u32 {
    (i as u32) % (FILL_MAX + 1)
}

/// Creates map `i` through aya's public `MapData::create` and fills it with
/// BPF_MAP_UPDATE_ELEM (aya's `insert`) when it is a hash type.
fn create_map(i: usize, cpus: usize) -> Result<Map> {
    let (kind, _) = MAP_KINDS[i % MAP_KINDS.len()];
    let def = aya_obj::Map::new_from_params(kind as u32, 4, 8, MAX_ENTRIES, 0);
    let data = MapData::create(def, &format!("bench_{i}"), None)?;
    let mut map = Map::from_map_data(data)?;
    let fill = fill_for(i);
    match map {
        Map::HashMap(_) | Map::LruHashMap(_) => {
            let mut hash = HashMap::<_, u32, u64>::try_from(&mut map)?;
            for key in 0..fill {
                hash.insert(key, u64::from(key), 0)?;
            }
        }
        Map::PerCpuHashMap(_) | Map::PerCpuLruHashMap(_) => {
            let mut hash = PerCpuHashMap::<_, u32, u64>::try_from(&mut map)?;
            for key in 0..fill {
                let values = PerCpuValues::try_from(vec![u64::from(key); cpus])?;
                hash.insert(key, values, 0)?;
            }
        }
        _ => {}
    }
    Ok(map)
}

/// Loads `r0 = 0; exit` as a socket filter with the given name.
///
/// Hand-rolled BPF_PROG_LOAD because aya 0.14 has no public API to load a
/// program from raw instructions (only from an ELF object).
pub fn load_socket_filter(name: &str) -> Result<OwnedFd> {
    const MOV64_R0_0: u64 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K, dst r0, imm 0
    const EXIT: u64 = 0x95; // BPF_JMP | BPF_EXIT
    let insns = [MOV64_R0_0, EXIT];
    let license = CString::new("GPL").expect("no NUL in a literal");
    let mut attr = ProgLoadAttr {
        prog_type: libc::c_uint::from(1u8), // BPF_PROG_TYPE_SOCKET_FILTER
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    for (dst, src) in attr.prog_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src;
    }
    // SAFETY: attr is a valid, fully initialised prefix of `union bpf_attr`
    // for BPF_PROG_LOAD (5); `insns` and `license` outlive the call.
    unsafe { bpf_fd(5, &mut attr) }.context("BPF_PROG_LOAD")
}

/// The BPF_PROG_LOAD prefix of `union bpf_attr` (include/uapi/linux/bpf.h),
/// up to `prog_name`; the kernel zero-fills the fields after it.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// Raises the soft limit towards `wanted` as far as the hard limit allows;
/// returns the limit in force.
fn raise_nofile_limit(wanted: usize) -> Result<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    let wanted = (wanted as libc::rlim_t).min(limit.rlim_max);
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur as usize);
    }
    limit.rlim_cur = wanted;
    // SAFETY: setrlimit reads the valid rlimit we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error())
            .context("raising RLIMIT_NOFILE for the benchmark's map and program fds");
    }
    Ok(wanted as usize)
}
