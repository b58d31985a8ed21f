//! Links of every kind this host's kernel can make, for the link-target tests,
//! and the kernel's own report of a link (`BPF_OBJ_GET_INFO_BY_FD`): the
//! oracle for the kinds the installed bpftool (7.1, Debian bookworm) does not
//! decode (tcx, netfilter, perf_event, uprobe_multi, sockmap).
//!
//! aya attaches what it supports; the rest are made with `BPF_LINK_CREATE`
//! and, for program types aya 0.14 cannot load (netfilter, uprobe_multi), a
//! two-instruction program loaded with `BPF_PROG_LOAD`.
use std::{
    fs,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use aya_obj::generated::{
    bpf_attach_type, bpf_attr, bpf_cmd, bpf_link_info, bpf_prog_info, bpf_prog_type,
};
use bpf_inventory_exporter::{
    bpf::syscall::{bpf, bpf_fd},
    inventory::LinkTarget,
};

fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a union of integer structs; all zeroes is valid (and what the kernel wants).
    unsafe { std::mem::zeroed() }
}

/// Loads `r0 = 1; exit` (NF_ACCEPT for netfilter) as `prog_type`.
pub fn load_trivial_program(
    prog_type: bpf_prog_type,
    expected: bpf_attach_type,
    name: &str,
) -> Result<OwnedFd> {
    let insns = [0x0000_0001_0000_00b7, 0x0000_0000_0000_0095];
    load_program(prog_type, expected, name, &insns)
}

/// Loads hand-encoded instructions (`code | regs << 8 | off << 16 | imm << 32`).
pub fn load_program(
    prog_type: bpf_prog_type,
    expected: bpf_attach_type,
    name: &str,
    insns: &[u64],
) -> Result<OwnedFd> {
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    let mut attr = zeroed_attr();
    // SAFETY: the BPF_PROG_LOAD member of a zeroed union of integers.
    let load = unsafe { &mut attr.__bindgen_anon_3 };
    load.prog_type = prog_type as u32;
    load.expected_attach_type = expected as u32;
    load.insn_cnt = insns.len() as u32;
    load.insns = insns.as_ptr() as u64;
    load.license = license.as_ptr() as u64;
    load.log_level = 1;
    load.log_size = log.len() as u32;
    load.log_buf = log.as_mut_ptr() as u64;
    for (dst, src) in load.prog_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: a BPF_PROG_LOAD attr; `insns`, `license` and `log` outlive the call.
    match unsafe { bpf_fd(bpf_cmd::BPF_PROG_LOAD as u32, &mut attr) } {
        Ok(fd) => Ok(fd),
        Err(e) => bail!(
            "BPF_PROG_LOAD {name}: {e}: {}",
            String::from_utf8_lossy(&log).trim_end_matches('\0')
        ),
    }
}

/// `BPF_LINK_CREATE`; `extra` fills the attach-type specific part.
pub fn link_create(
    prog: BorrowedFd<'_>,
    target: u32,
    attach_type: bpf_attach_type,
    extra: impl FnOnce(&mut bpf_attr),
) -> Result<OwnedFd> {
    let mut attr = zeroed_attr();
    attr.link_create.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    attr.link_create.__bindgen_anon_2.target_fd = target;
    attr.link_create.attach_type = attach_type as u32;
    extra(&mut attr);
    // SAFETY: a BPF_LINK_CREATE attr; what `extra` points to (iterator info)
    // is the caller's and outlives the call.
    unsafe { bpf_fd(bpf_cmd::BPF_LINK_CREATE as u32, &mut attr) }
        .with_context(|| format!("BPF_LINK_CREATE {attach_type:?}"))
}

/// A map iterator link (`iter/bpf_map_elem`) over the map `map_fd`.
pub fn map_iter_link(prog: BorrowedFd<'_>, map_fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    // union bpf_iter_link_info: { map: { map_fd } ... }, 16 bytes
    let iter_info: [u32; 4] = [map_fd.as_raw_fd() as u32, 0, 0, 0];
    link_create(prog, 0, bpf_attach_type::BPF_TRACE_ITER, |attr| {
        // SAFETY: the iterator member of a zeroed union of integers.
        let iter = unsafe { &mut attr.link_create.__bindgen_anon_3.__bindgen_anon_1 };
        iter.iter_info = iter_info.as_ptr() as u64;
        iter.iter_info_len = 16;
    })
}

pub fn prog_id(fd: BorrowedFd<'_>) -> Result<u32> {
    Ok(prog_id_and_tag(fd)?.0)
}

/// The ids of every program loaded on the host now (`BPF_PROG_GET_NEXT_ID`).
pub fn prog_ids() -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut start = 0;
    loop {
        let mut attr = zeroed_attr();
        attr.__bindgen_anon_6.__bindgen_anon_1.start_id = start;
        // SAFETY: a BPF_PROG_GET_NEXT_ID attr of integers only.
        match unsafe { bpf(bpf_cmd::BPF_PROG_GET_NEXT_ID as u32, &mut attr) } {
            Ok(_) => {
                // SAFETY: the kernel wrote next_id; integers only.
                start = unsafe { attr.__bindgen_anon_6.next_id };
                ids.push(start);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(ids),
            Err(e) => return Err(e).context("BPF_PROG_GET_NEXT_ID"),
        }
    }
}

/// The program's id and tag, as the kernel reports them.
pub fn prog_id_and_tag(fd: BorrowedFd<'_>) -> Result<(u32, [u8; 8])> {
    // SAFETY: plain integer struct.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut attr = zeroed_attr();
    attr.info.bpf_fd = fd.as_raw_fd() as u32;
    attr.info.info_len = size_of::<bpf_prog_info>() as u32;
    attr.info.info = &mut info as *mut _ as u64;
    // SAFETY: a BPF_OBJ_GET_INFO_BY_FD attr pointing at `info`, of info_len bytes.
    unsafe { bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as u32, &mut attr) }.context("prog info")?;
    Ok((info.id, info.tag))
}

/// What the kernel reports for link `id` (its `*_fill_link_info`), as the
/// exporter's `LinkTarget`, and the attach type where the kernel reports one.
pub struct KernelLink {
    pub link_type: u32,
    pub prog_id: u32,
    pub target: Option<LinkTarget>,
    pub attach_type: Option<u32>,
}

fn get_link_info(fd: BorrowedFd<'_>, info: &mut bpf_link_info) -> Result<()> {
    let mut attr = zeroed_attr();
    attr.info.bpf_fd = fd.as_raw_fd() as u32;
    attr.info.info_len = size_of::<bpf_link_info>() as u32;
    attr.info.info = info as *mut _ as u64;
    // SAFETY: a BPF_OBJ_GET_INFO_BY_FD attr pointing at `info`, of info_len bytes.
    unsafe { bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as u32, &mut attr) }.context("link info")?;
    Ok(())
}

fn c_str(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

pub fn kernel_link(id: u32) -> Result<KernelLink> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.link_id = id;
    // SAFETY: a BPF_LINK_GET_FD_BY_ID attr of integers only.
    let fd = unsafe { bpf_fd(bpf_cmd::BPF_LINK_GET_FD_BY_ID as u32, &mut attr) }
        .context("link fd by id")?;
    // SAFETY: plain integer structs and unions.
    let mut info: bpf_link_info = unsafe { std::mem::zeroed() };
    get_link_info(fd.as_fd(), &mut info)?;
    // Second call with a buffer for the kind's string.
    let mut name = vec![0u8; 4096];
    let (ptr, len) = (name.as_mut_ptr() as u64, name.len() as u32);
    let link_type = info.type_;
    let u = &mut info.__bindgen_anon_1;
    match link_type {
        1 => (u.raw_tracepoint.tp_name, u.raw_tracepoint.tp_name_len) = (ptr, len),
        4 => (u.iter.target_name, u.iter.target_name_len) = (ptr, len),
        12 => (u.uprobe_multi.path, u.uprobe_multi.path_size) = (ptr, len),
        7 => {
            u.perf_event.__bindgen_anon_1.uprobe.file_name = ptr;
            u.perf_event.__bindgen_anon_1.uprobe.name_len = len;
        }
        _ => {}
    }
    get_link_info(fd.as_fd(), &mut info)?;
    let name = c_str(&name);
    let u = &info.__bindgen_anon_1;
    let device = |ifindex: u32| {
        Some(if ifindex == 0 {
            LinkTarget::Detached
        } else {
            LinkTarget::Interface { ifindex }
        })
    };
    // SAFETY: each arm reads the member of this link type (numbers: uapi enum bpf_link_type).
    let (target, attach_type) = unsafe {
        match link_type {
            1 => (Some(LinkTarget::Name { name, map_id: None }), None),
            2 => (None, Some(u.tracing.attach_type)),
            3 => (
                Some(match u.cgroup.cgroup_id {
                    0 => LinkTarget::Detached,
                    cgroup_id => LinkTarget::Cgroup { cgroup_id },
                }),
                Some(u.cgroup.attach_type),
            ),
            4 => {
                let map_id = u.iter.__bindgen_anon_1.map.map_id;
                (
                    Some(LinkTarget::Name {
                        name,
                        map_id: (map_id != 0).then_some(map_id),
                    }),
                    None,
                )
            }
            5 => (
                Some(match u.netns.netns_ino {
                    0 => LinkTarget::Detached,
                    netns_ino => LinkTarget::Netns { netns_ino },
                }),
                Some(u.netns.attach_type),
            ),
            6 => (device(u.xdp.ifindex), None),
            7 => {
                let pe = &u.perf_event;
                let target = match pe.type_ {
                    1 | 2 => Some(LinkTarget::Uprobe {
                        file: name,
                        offset: pe.__bindgen_anon_1.uprobe.offset.into(),
                        retprobe: pe.type_ == 2,
                    }),
                    3 | 4 => Some(LinkTarget::Kprobe {
                        func: Some(name).filter(|n| !n.is_empty()),
                        offset: pe.__bindgen_anon_1.kprobe.offset.into(),
                        retprobe: pe.type_ == 4,
                    }),
                    5 => Some(LinkTarget::Tracepoint { tracepoint: name }),
                    6 => Some(LinkTarget::PerfEvent {
                        event_type: pe.__bindgen_anon_1.event.type_,
                        event_config: pe.__bindgen_anon_1.event.config,
                    }),
                    _ => None,
                };
                (target, None)
            }
            8 => (
                Some(LinkTarget::KprobeMulti {
                    func_cnt: u.kprobe_multi.count,
                }),
                None,
            ),
            // struct_ops { map_id } and sockmap { map_id, attach_type } (newer
            // than these bindings): the same offsets as tcx { ifindex, attach_type }
            9 | 14 => (
                Some(match u.struct_ops.map_id {
                    0 => LinkTarget::Detached,
                    map_id => LinkTarget::Map { map_id },
                }),
                (link_type == 14).then_some(u.tcx.attach_type),
            ),
            10 => (
                Some(LinkTarget::Netfilter {
                    pf: u.netfilter.pf,
                    hook: u.netfilter.hooknum,
                    prio: u.netfilter.priority,
                }),
                None,
            ),
            11 => (device(u.tcx.ifindex), Some(u.tcx.attach_type)),
            12 => (
                Some(LinkTarget::UprobeMulti {
                    path: name,
                    func_cnt: u.uprobe_multi.count,
                    pid: u.uprobe_multi.pid,
                }),
                None,
            ),
            13 => (device(u.netkit.ifindex), Some(u.netkit.attach_type)),
            _ => (None, None),
        }
    };
    Ok(KernelLink {
        link_type,
        prog_id: info.prog_id,
        target,
        attach_type,
    })
}

fn run(cmd: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd} (apt-get install iproute2)"))?;
    if !out.status.success() {
        bail!("{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A veth pair this test created; deleted on drop (or by `delete`).
pub struct Veth {
    pub name: String,
    pub ifindex: u32,
    deleted: bool,
}

impl Veth {
    pub fn create(name: &str) -> Result<Self> {
        let _ = run("ip", &["link", "del", name]); // a leftover of a killed run
        run(
            "ip",
            &[
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{name}p"),
            ],
        )?;
        let ifindex: u32 = fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))?
            .trim()
            .parse()?;
        Ok(Self {
            name: name.to_owned(),
            ifindex,
            deleted: false,
        })
    }

    pub fn delete(&mut self) -> Result<()> {
        self.deleted = true;
        run("ip", &["link", "del", &self.name])
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = run("ip", &["link", "del", &self.name]);
        }
    }
}

/// A named network namespace (`ip netns add`); deleted on drop (or by `delete`).
pub struct Netns {
    pub name: String,
    deleted: bool,
}

impl Netns {
    pub fn create(name: &str) -> Result<Self> {
        let _ = run("ip", &["netns", "del", name]); // a leftover of a killed run
        run("ip", &["netns", "add", name])?;
        Ok(Self {
            name: name.to_owned(),
            deleted: false,
        })
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    pub fn delete(&mut self) -> Result<()> {
        self.deleted = true;
        run("ip", &["netns", "del", &self.name])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = run("ip", &["netns", "del", &self.name]);
        }
    }
}

/// A directory that is removed (with its contents) on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
        let _ = fs::remove_dir(&self.0);
    }
}

/// A new cgroup v2 directory; removed on drop.
pub fn temp_cgroup(name: &str) -> Result<TempDir> {
    let mounts = fs::read_to_string("/proc/mounts")?;
    let root = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"cgroup2"))
        .map(|f| PathBuf::from(f[1]))
        .context("no cgroup2 mount")?;
    let dir = root.join(name);
    let _ = fs::remove_dir(&dir);
    fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    Ok(TempDir(dir))
}

/// aya finds tracepoint ids in tracefs: mount it where it is not.
pub fn ensure_tracefs() -> Result<()> {
    if Path::new("/sys/kernel/tracing/events").exists() {
        return Ok(());
    }
    run(
        "mount",
        &["-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
    )
}
