//! The peers' ways of collecting the same inventory, measured against ours:
//! a syscall walk with aya (what bpfman-style exporters do) and bpftool runs.
use std::{
    collections::HashMap,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    process::Command,
};

use anyhow::{bail, Context, Result};
use aya::{
    maps::{loaded_maps, MapInfo, MapType},
    programs::{links::LinkInfo, loaded_links, loaded_programs, ProgramInfo},
};
use bpf_inventory_exporter::bpf::syscall::bpf;

/// What one syscall walk found: the fields our `collect` returns per scrape.
pub struct SyscallWalk {
    pub programs: Vec<(ProgramInfo, Vec<u32>, Option<u32>)>,
    pub maps: Vec<(MapInfo, Option<u64>)>,
    pub links: Vec<LinkInfo>,
}

impl SyscallWalk {
    /// Entry counts by map id (hash-type maps only).
    pub fn entries(&self) -> HashMap<u32, u64> {
        self.maps
            .iter()
            .filter_map(|(info, n)| n.map(|n| (info.id(), n)))
            .collect()
    }
}

/// Walks every object the way a syscall-based exporter does: per object
/// BPF_*_GET_NEXT_ID, BPF_*_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, close. For
/// programs also the used map ids (aya re-reads the info for them) and the
/// memlock from fdinfo (our `memory_bytes`); for hash-type maps a
/// BPF_MAP_GET_NEXT_KEY walk, the only way without BPF to count entries.
/// Map memlock is left out on both sides: our scrape reads it from a cache.
/// Objects that vanish during the walk are skipped, as the peers do.
pub fn syscall_walk() -> Result<SyscallWalk> {
    let mut programs = Vec::new();
    for info in loaded_programs() {
        let Ok(info) = info else { continue };
        let map_ids = info.map_ids().ok().flatten().unwrap_or_default();
        let memlock = info.memory_locked().ok();
        programs.push((info, map_ids, memlock));
    }
    let mut maps = Vec::new();
    for info in loaded_maps() {
        let Ok(info) = info else { continue };
        let entries = match info.map_type() {
            Ok(
                MapType::Hash
                | MapType::PerCpuHash
                | MapType::LruHash
                | MapType::LruPerCpuHash
                | MapType::HashOfMaps,
            ) => info
                .fd()
                .ok()
                .and_then(|fd| count_keys(fd.as_fd(), info.key_size()).ok()),
            _ => None,
        };
        maps.push((info, entries));
    }
    let links = loaded_links().filter_map(Result::ok).collect();
    Ok(SyscallWalk {
        programs,
        maps,
        links,
    })
}

/// Counts a map's keys with BPF_MAP_GET_NEXT_KEY (one syscall per key, plus one).
fn count_keys(fd: BorrowedFd<'_>, key_size: u32) -> io::Result<u64> {
    let mut key = vec![0u8; key_size as usize];
    let mut next = vec![0u8; key_size as usize];
    let mut count = 0u64;
    let mut first = true;
    loop {
        let mut attr = GetNextKeyAttr {
            map_fd: fd.as_raw_fd() as u32,
            pad: 0,
            key: if first { 0 } else { key.as_ptr() as u64 },
            next_key: next.as_mut_ptr() as u64,
        };
        // SAFETY: attr is the BPF_MAP_GET_NEXT_KEY (4) layout of `union bpf_attr`;
        // `key` and `next` are key_size bytes each and outlive the call.
        match unsafe { bpf(4, &mut attr) } {
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(count),
            Err(err) => return Err(err),
        }
        count += 1;
        first = false;
        std::mem::swap(&mut key, &mut next);
    }
}

#[repr(C)]
struct GetNextKeyAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    next_key: u64,
}

/// Counts from one pair of bpftool runs.
pub struct BpftoolCounts {
    pub programs: usize,
    pub maps: usize,
}

/// Runs `bpftool -j prog show` and `bpftool -j map show` and parses the JSON.
pub fn bpftool(bpftool: &str) -> Result<BpftoolCounts> {
    let programs = bpftool_list(bpftool, "prog")?;
    let maps = bpftool_list(bpftool, "map")?;
    Ok(BpftoolCounts {
        programs: programs.len(),
        maps: maps.len(),
    })
}

fn bpftool_list(bpftool: &str, object: &str) -> Result<Vec<serde_json::Value>> {
    let out = Command::new(bpftool)
        .args(["-j", object, "show"])
        .output()
        .with_context(|| format!("running {bpftool} (install Debian's bpftool)"))?;
    if !out.status.success() {
        bail!(
            "{bpftool} -j {object} show failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing {bpftool} -j {object} show output"))
}
