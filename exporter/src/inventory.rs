//! The inventory snapshot: every BPF program, map and link on the host at one
//! instant. Plain data with serde; this is the public JSON schema (see
//! docs/inventory.md). `None` always means "the kernel could not tell", never 0.
use std::{borrow::Cow, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod json;
pub mod names;
mod owner_groups;
mod posture;
pub use owner_groups::OwnerGroup;
pub use posture::{BpfFsMount, KernelConfigOption, Posture, KERNEL_CONFIG_OPTIONS};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Inventory {
    pub collected_at: DateTime<Utc>,
    pub node: Node,
    /// Whether the kernel is counting program run time and run counts: the
    /// `kernel.bpf_stats_enabled` sysctl is on or this exporter holds a
    /// `BPF_ENABLE_STATS` fd (another process's fd cannot be seen).
    pub bpf_stats_enabled: bool,
    pub programs: Vec<Program>,
    pub maps: Vec<Map>,
    pub links: Vec<Link>,
    /// Collectors that failed in this collection; their list above is empty.
    pub errors: Vec<CollectorError>,
    /// Collectors whose iterator this kernel does not have (bpf_link before
    /// Linux 5.19): their list above is empty, and that is not a failure.
    pub unsupported: Vec<Collector>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    pub hostname: String,
    pub kernel_release: String,
    /// Whether BPF on this node is locked down, and how much JIT room is left.
    pub posture: Posture,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Program {
    pub id: u32,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub prog_type: Cow<'static, str>,
    pub tag: String,
    pub loaded_at: DateTime<Utc>,
    pub uid: Option<u32>,
    pub xlated_bytes: u32,
    pub jited_bytes: u32,
    pub verified_insns: Option<u32>,
    pub memory_bytes: u64,
    pub map_ids: Vec<u32>,
    pub btf_id: Option<u32>,
    pub gpl_compatible: bool,
    pub attach_to: Option<String>,
    pub run_time_ns: Option<u64>,
    pub run_count: Option<u64>,
    pub recursion_misses: Option<u64>,
    /// Loaded by this exporter (its iterators).
    #[serde(rename = "self")]
    pub is_self: bool,
    // `owners`, `pins` and `held_by` as fields of this object (a doc
    // comment here would wrap the schema api::openapi merges).
    #[serde(flatten)]
    #[schema(inline)]
    pub holders: Holders,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Map {
    pub id: u32,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub map_type: Cow<'static, str>,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub btf_id: Option<u32>,
    pub frozen: Option<bool>,
    pub entries: Option<u64>,
    pub memory_bytes: Option<u64>,
    #[serde(rename = "self")]
    pub is_self: bool,
    // `owners`, `pins` and `held_by` as fields of this object (a doc
    // comment here would wrap the schema api::openapi merges).
    #[serde(flatten)]
    #[schema(inline)]
    pub holders: Holders,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    pub id: u32,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub link_type: Cow<'static, str>,
    pub prog_id: u32,
    #[schema(value_type = Option<String>)]
    pub attach_type: Option<Cow<'static, str>>,
    pub target: Option<LinkTarget>,
    #[serde(rename = "self")]
    pub is_self: bool,
    // `owners`, `pins` and `held_by` as fields of this object (a doc
    // comment here would wrap the schema api::openapi merges).
    #[serde(flatten)]
    #[schema(inline)]
    pub holders: Holders,
}

/// Who and what holds a program, map or link (flattened into each): all
/// three `null` when owners are unknown (walk unavailable, `--no-owners`, or
/// the object was created after the walk began: `collect/owners.rs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Holders {
    /// Processes holding an fd to it; `null` when owners are unknown (see
    /// docs/owners.md: walk unavailable, `--no-owners`, or the object was
    /// created after the walk began).
    #[schema(value_type = Option<Vec<Owner>>)]
    #[serde(serialize_with = "json::owners")]
    pub owners: Option<Owners>,
    /// Its paths on the bpffs mounts; `null` when the pins cannot be read
    /// or owners are unknown.
    pub pins: Option<Vec<String>>,
    /// What keeps it alive; `null` when owners are unknown.
    pub held_by: Option<Vec<HeldBy>>,
}

/// The owners of an object, sorted by pid: shared (`Arc`) by consecutive
/// objects of the same owners, as a process's maps and programs usually are.
pub type Owners = Arc<[Owner]>;

/// A process holding at least one fd to a BPF object (one entry per process,
/// however many fds or forked copies it holds). Its text is shared (`Arc`)
/// by every object the process holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct Owner {
    /// Process id in the initial (host) pid namespace, as the kernel numbers
    /// the task (`task->tgid`); the walk sees only the processes of the
    /// exporter's pid namespace, which with hostPID is the host's.
    pub pid: u32,
    #[schema(value_type = String)]
    pub comm: Arc<str>,
    /// Its cgroup v2 path relative to the cgroup2 root; `null` if not found.
    #[schema(value_type = Option<String>)]
    pub cgroup: Option<Arc<str>>,
    /// Container id parsed from the cgroup path (kubelet, Docker, CRI-O, containerd names).
    #[schema(value_type = Option<String>)]
    pub container_id: Option<Arc<str>>,
    /// Kubernetes pod uid parsed from the cgroup path.
    #[schema(value_type = Option<String>)]
    pub pod_uid: Option<Arc<str>>,
}

/// What keeps a BPF object alive.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HeldBy {
    /// A process holds an fd (see `owners`).
    Process,
    /// Pinned on a bpffs (see `pins`).
    Pinned,
    /// A program referenced by a link.
    Link,
    /// A map used by a program.
    Program,
    /// A struct_ops object, held by the kernel subsystem it implements.
    Kernel,
    /// None of the above: a legacy attachment (tc, XDP via netlink, cgroup
    /// PROG_ATTACH) whose holder is not visible.
    Attached,
}

impl HeldBy {
    pub fn as_str(self) -> &'static str {
        match self {
            HeldBy::Process => "process",
            HeldBy::Pinned => "pinned",
            HeldBy::Link => "link",
            HeldBy::Program => "program",
            HeldBy::Kernel => "kernel",
            HeldBy::Attached => "attached",
        }
    }
}

/// What a link attaches to: what the kernel's `bpf_link_info` reports for its
/// kind, with bpftool's field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkTarget {
    Cgroup {
        cgroup_id: u64,
    },
    /// xdp, tcx and netkit links.
    Interface {
        ifindex: u32,
    },
    Netns {
        netns_ino: u32,
    },
    /// An iterator target, raw tracepoint or kernel function.
    Name {
        name: String,
        /// The map of a map iterator (`bpf_map_elem`, `bpf_sk_storage_map`, `sockmap`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        map_id: Option<u32>,
    },
    Netfilter {
        /// Protocol family (`NFPROTO_*`, 2 = IPv4, 10 = IPv6).
        pf: u32,
        /// Netfilter hook (`NF_INET_*`, 0 = prerouting ... 4 = postrouting).
        hook: u32,
        prio: i32,
    },
    /// A perf_event link of a kprobe or kretprobe.
    Kprobe {
        /// `null` when the probe was placed by address.
        func: Option<String>,
        offset: u64,
        retprobe: bool,
    },
    /// A perf_event link of a uprobe or uretprobe.
    Uprobe {
        file: String,
        offset: u64,
        retprobe: bool,
    },
    /// A perf_event link of a tracepoint.
    Tracepoint {
        tracepoint: String,
    },
    /// A perf_event link of a perf event (`perf_event_attr.type`, `.config`).
    PerfEvent {
        event_type: u32,
        event_config: u64,
    },
    KprobeMulti {
        func_cnt: u32,
    },
    UprobeMulti {
        /// Starts with `…/` when deeper or longer than 255 bytes.
        path: String,
        func_cnt: u32,
        /// 0: every process.
        pid: u32,
    },
    /// sockmap and struct_ops links.
    Map {
        map_id: u32,
    },
    /// The device, network namespace, cgroup or map is gone (the kernel
    /// reports 0 for it); the link still exists until its last fd closes.
    Detached,
}

impl std::fmt::Display for LinkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probe = |retprobe: bool, kind: &str| {
            if retprobe {
                format!("{}ret{}", &kind[..1], &kind[1..])
            } else {
                kind.to_owned()
            }
        };
        match self {
            LinkTarget::Cgroup { cgroup_id } => write!(f, "cgroup:{cgroup_id}"),
            LinkTarget::Interface { ifindex } => write!(f, "ifindex:{ifindex}"),
            LinkTarget::Netns { netns_ino } => write!(f, "netns:{netns_ino}"),
            LinkTarget::Name { name, map_id: None } => f.write_str(name),
            LinkTarget::Name {
                name,
                map_id: Some(id),
            } => write!(f, "{name} map:{id}"),
            LinkTarget::Netfilter { pf, hook, prio } => {
                write!(f, "netfilter:pf={pf},hook={hook},prio={prio}")
            }
            LinkTarget::Kprobe {
                func,
                offset,
                retprobe,
            } => write!(
                f,
                "{}:{}+{offset:#x}",
                probe(*retprobe, "kprobe"),
                func.as_deref().unwrap_or("")
            ),
            LinkTarget::Uprobe {
                file,
                offset,
                retprobe,
            } => write!(f, "{}:{file}+{offset:#x}", probe(*retprobe, "uprobe")),
            LinkTarget::Tracepoint { tracepoint } => write!(f, "tracepoint:{tracepoint}"),
            LinkTarget::PerfEvent {
                event_type,
                event_config,
            } => write!(f, "perf_event:type={event_type},config={event_config}"),
            LinkTarget::KprobeMulti { func_cnt } => write!(f, "kprobe_multi:count={func_cnt}"),
            LinkTarget::UprobeMulti {
                path,
                func_cnt,
                pid,
            } => write!(f, "uprobe_multi:{path},count={func_cnt},pid={pid}"),
            LinkTarget::Map { map_id } => write!(f, "map:{map_id}"),
            LinkTarget::Detached => f.write_str("detached"),
        }
    }
}

/// The three collectors: one per iterator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Collector {
    Programs,
    Maps,
    Links,
}

impl Collector {
    pub const ALL: [Collector; 3] = [Collector::Programs, Collector::Maps, Collector::Links];

    pub fn as_str(self) -> &'static str {
        match self {
            Collector::Programs => "programs",
            Collector::Maps => "maps",
            Collector::Links => "links",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CollectorError {
    pub collector: Collector,
    pub message: String,
}

impl Inventory {
    pub fn program(&self, id: u32) -> Option<&Program> {
        self.programs
            .binary_search_by_key(&id, |p| p.id)
            .ok()
            .map(|i| &self.programs[i])
    }

    pub fn map(&self, id: u32) -> Option<&Map> {
        self.maps
            .binary_search_by_key(&id, |m| m.id)
            .ok()
            .map(|i| &self.maps[i])
    }

    pub fn link(&self, id: u32) -> Option<&Link> {
        self.links
            .binary_search_by_key(&id, |l| l.id)
            .ok()
            .map(|i| &self.links[i])
    }

    /// Whether this collection has owners (the owners walk ran).
    pub fn owners_known(&self) -> bool {
        let known = |h: &Holders| h.owners.is_some();
        self.programs.iter().any(|p| known(&p.holders))
            || self.maps.iter().any(|m| known(&m.holders))
            || self.links.iter().any(|l| known(&l.holders))
    }

    pub fn collector_ok(&self, collector: Collector) -> bool {
        !self.errors.iter().any(|e| e.collector == collector)
    }

    pub fn collector_supported(&self, collector: Collector) -> bool {
        !self.unsupported.contains(&collector)
    }
}

#[cfg(test)]
mod tests {
    use super::LinkTarget;

    #[test]
    fn link_targets_serialise_with_bpftools_field_names() {
        let nf = LinkTarget::Netfilter {
            pf: 2,
            hook: 1,
            prio: -128,
        };
        assert_eq!(
            serde_json::to_value(&nf).unwrap(),
            serde_json::json!({"kind": "netfilter", "pf": 2, "hook": 1, "prio": -128})
        );
        assert_eq!(
            serde_json::to_value(LinkTarget::Detached).unwrap(),
            serde_json::json!({"kind": "detached"})
        );
        let iter = LinkTarget::Name {
            name: "bpf_map".into(),
            map_id: None,
        };
        assert_eq!(
            serde_json::to_value(&iter).unwrap(),
            serde_json::json!({"kind": "name", "name": "bpf_map"})
        );
    }

    #[test]
    fn link_targets_display_as_one_label_value() {
        let cases = [
            (LinkTarget::Detached, "detached"),
            (
                LinkTarget::Name {
                    name: "bpf_map_elem".into(),
                    map_id: Some(7),
                },
                "bpf_map_elem map:7",
            ),
            (
                LinkTarget::Uprobe {
                    file: "/bin/true".into(),
                    offset: 0x40,
                    retprobe: true,
                },
                "uretprobe:/bin/true+0x40",
            ),
            (
                LinkTarget::Kprobe {
                    func: Some("vfs_read".into()),
                    offset: 0,
                    retprobe: false,
                },
                "kprobe:vfs_read+0x0",
            ),
            (
                LinkTarget::Netfilter {
                    pf: 10,
                    hook: 4,
                    prio: 5,
                },
                "netfilter:pf=10,hook=4,prio=5",
            ),
            (LinkTarget::Map { map_id: 3 }, "map:3"),
        ];
        for (target, shown) in cases {
            assert_eq!(target.to_string(), shown);
        }
    }
}
