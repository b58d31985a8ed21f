//! Test support shared by unit tests, crate-level tests and benches: a fixed
//! `Inventory` with every field kind (None values, a collector error, names
//! that need escaping) and an `InventorySource` that serves it without a
//! kernel. Not part of the public API.
pub mod btf;
mod promtool;

pub use promtool::promtool_check_metrics;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    mpsc, Arc, Mutex,
};

use chrono::{DateTime, Utc};

use crate::{
    collect::{CollectionStats, InventorySource},
    inventory::{
        BpfFsMount, Collector, CollectorError, HeldBy, Holders, Inventory, KernelConfigOption,
        Link, LinkTarget, Map, Node, Owner, Posture, Program,
    },
};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn program(id: u32, name: &str, prog_type: &'static str) -> Program {
    Program {
        id,
        name: name.into(),
        prog_type: prog_type.into(),
        tag: format!("{:016x}", u64::from(id) * 0x0101_0101),
        loaded_at: at("2026-01-02T03:04:05.25Z"),
        uid: Some(0),
        xlated_bytes: 64 * id,
        jited_bytes: 48 * id,
        verified_insns: Some(8 * id),
        memory_bytes: 4096,
        map_ids: vec![],
        btf_id: None,
        gpl_compatible: true,
        attach_to: None,
        run_time_ns: None,
        run_count: None,
        recursion_misses: None,
        is_self: false,
        holders: Holders {
            owners: Some(vec![].into()),
            pins: Some(vec![]),
            held_by: Some(vec![]),
        },
    }
}

fn map(id: u32, name: &str, map_type: &'static str, max_entries: u32, entries: Option<u64>) -> Map {
    Map {
        id,
        name: name.into(),
        map_type: map_type.into(),
        key_size: 4,
        value_size: 8,
        max_entries,
        flags: 0,
        btf_id: Some(1),
        frozen: Some(false),
        entries,
        memory_bytes: Some(u64::from(max_entries) * 16),
        is_self: false,
        holders: Holders {
            owners: Some(vec![].into()),
            pins: Some(vec![]),
            held_by: Some(vec![]),
        },
    }
}

/// Waits (up to 10 s) until `done` holds: a dropped collection is released
/// on a blocking thread, shortly after its last user let go.
pub async fn released(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not released: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// The collection counters the golden pages and render tests use.
pub fn sample_stats() -> CollectionStats {
    CollectionStats {
        duration: std::time::Duration::from_micros(2_500),
        collections_total: 7,
        collector_errors_total: [
            (Collector::Programs, 0),
            (Collector::Maps, 0),
            (Collector::Links, 1),
        ],
        map_memory_age: Some(std::time::Duration::from_millis(12_500)),
        otlp: Some(crate::collect::ExportStats {
            succeeded: 5,
            failed: 2,
            last_duration: Some(std::time::Duration::from_millis(40)),
            events_dropped: 3,
        }),
        events: Some(crate::collect::EventStats {
            loads: vec![
                (
                    crate::collect::LoaderLabels {
                        comm: Some("bpftool".into()),
                        container_id: None,
                        pod_uid: None,
                    },
                    3,
                ),
                (
                    crate::collect::LoaderLabels {
                        comm: Some("agent".into()),
                        container_id: Some(
                            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                                .into(),
                        ),
                        pod_uid: Some("0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
                    },
                    2,
                ),
            ],
            unloads: vec![(crate::collect::LoaderLabels::default(), 1)],
            short_lived: 1,
            lost: 0,
        }),
    }
}

/// A fixed inventory: two programs (one of them the exporter's own, one with
/// run statistics and a name that needs escaping), three maps (one of
/// unknown entry count and memory) and two links. All collectors succeeded;
/// [`sample_inventory_with_error`] is the variant with a failed one.
pub fn sample_inventory() -> Inventory {
    let mut xdp = program(7, "xdp_\"edge\"\\fw", "xdp");
    xdp.map_ids = vec![11, 12];
    xdp.attach_to = Some("eth0\nsecondary".into());
    xdp.gpl_compatible = false;
    xdp.run_time_ns = Some(1_500_000_000);
    xdp.run_count = Some(3_000);
    xdp.recursion_misses = Some(2);
    let mut dump = program(21, "dump_maps", "tracing");
    dump.is_self = true;
    dump.attach_to = Some("bpf_map".into());
    dump.verified_insns = None;
    let mut own_map = map(13, "iterators.bss", "array", 1, Some(1));
    own_map.is_self = true;
    let mut unknown = map(12, "events", "ringbuf", 4096, None);
    unknown.memory_bytes = None;
    unknown.key_size = 0;
    unknown.value_size = 0;
    // Owners: a pod's agent holds the XDP program and its hash map, a
    // host bpftool the hash map too; the exporter holds its own objects.
    let agent = Owner {
        pid: 4242,
        comm: "edge-agent".into(),
        cgroup: Some("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b5e8f4a_1c2d_4e5f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.scope".into()),
        container_id: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        pod_uid: Some("0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
    };
    let bpftool = Owner {
        pid: 77,
        comm: "bpftool".into(),
        cgroup: Some("/user.slice/session-1.scope".into()),
        container_id: None,
        pod_uid: None,
    };
    let exporter = Owner {
        pid: 100,
        comm: "bpf-inventory-e".into(),
        cgroup: None,
        container_id: None,
        pod_uid: None,
    };
    xdp.holders.owners = Some(vec![agent.clone()].into());
    xdp.holders.held_by = Some(vec![HeldBy::Process, HeldBy::Link]);
    dump.holders.owners = Some(vec![exporter.clone()].into());
    dump.holders.held_by = Some(vec![HeldBy::Process, HeldBy::Link]);
    own_map.holders.owners = Some(vec![exporter.clone()].into());
    own_map.holders.held_by = Some(vec![HeldBy::Process, HeldBy::Program]);
    unknown.holders.held_by = Some(vec![HeldBy::Program]);
    let mut hash = map(11, "fixture_hash", "hash", 1000, Some(42));
    hash.holders.owners = Some(vec![bpftool, agent].into());
    hash.holders.held_by = Some(vec![HeldBy::Process, HeldBy::Program]);
    Inventory {
        collected_at: at("2026-01-02T03:05:00Z"),
        node: Node {
            hostname: "node-1".into(),
            kernel_release: "6.18.0-test".into(),
            posture: sample_posture(),
        },
        bpf_stats_enabled: true,
        unsupported: Vec::new(),
        programs: vec![xdp, dump],
        maps: vec![hash, unknown, own_map],
        links: vec![
            Link {
                id: 3,
                link_type: "xdp".into(),
                prog_id: 7,
                attach_type: Some("xdp".into()),
                target: Some(LinkTarget::Interface { ifindex: 2 }),
                is_self: false,
                holders: Holders {
                    owners: Some(vec![].into()),
                    pins: Some(vec!["/sys/fs/bpf/edge/xdp_link".into()]),
                    held_by: Some(vec![HeldBy::Pinned]),
                },
            },
            Link {
                id: 4,
                link_type: "iter".into(),
                prog_id: 21,
                attach_type: None,
                target: Some(LinkTarget::Name {
                    name: "bpf_map".into(),
                    map_id: None,
                }),
                is_self: true,
                holders: Holders {
                    owners: Some(vec![exporter.clone()].into()),
                    pins: Some(vec![]),
                    held_by: Some(vec![HeldBy::Process]),
                },
            },
        ],
        errors: vec![],
    }
}

/// A posture with every field known: a node that allows unprivileged BPF
/// and has a bpffs delegating commands.
/// An event of `comm` loading or unloading program `prog_id`, in a pod.
pub fn sample_event(
    kind: crate::events::EventKind,
    prog_id: u32,
    comm: &str,
) -> crate::events::Event {
    crate::events::Event {
        seq: 0,
        time: chrono::DateTime::from_timestamp_nanos(1_765_152_000_123_456_789),
        kind,
        prog_id,
        tag: "59f4a931744dcdc6".into(),
        name: Some("probe".into()),
        prog_type: None,
        pid: Some(4242),
        tid: Some(4243),
        comm: Some(comm.into()),
        cgroup: Some("/kubepods/pod0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/c".into()),
        container_id: None,
        pod_uid: Some("0b5e8f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
    }
}

pub fn sample_posture() -> Posture {
    let config = [("CONFIG_BPF_JIT_ALWAYS_ON", "n"), ("CONFIG_BPF_LSM", "y")];
    Posture {
        unprivileged_bpf_disabled: Some(0),
        stats_enabled: Some(1),
        jit_enabled: Some(1),
        jit_harden: Some(0),
        jit_kallsyms: Some(1),
        jit_limit_bytes: Some(1 << 20),
        jited_bytes: Some(3 << 18),
        lsm: Some(vec!["capability".into(), "bpf".into()]),
        lockdown: Some("integrity".into()),
        kernel_config: Some(
            config
                .iter()
                .map(|(option, value)| KernelConfigOption {
                    option: (*option).into(),
                    value: (*value).into(),
                })
                .collect(),
        ),
        bpf_fs: Some(vec![
            BpfFsMount {
                mountpoint: "/sys/fs/bpf".into(),
                delegate_cmds: None,
                delegate_maps: None,
                delegate_progs: None,
                delegate_attachs: None,
            },
            BpfFsMount {
                mountpoint: "/run/tenant \"a\"".into(),
                delegate_cmds: Some("any".into()),
                delegate_maps: Some("hash:array".into()),
                delegate_progs: None,
                delegate_attachs: None,
            },
        ]),
    }
}

/// [`sample_inventory`] as a collection where the link iterator failed.
pub fn sample_inventory_with_error() -> Inventory {
    let mut inventory = sample_inventory();
    inventory.links.clear();
    inventory.errors.push(CollectorError {
        collector: Collector::Links,
        message: "reading iterator dump_links failed: test".into(),
    });
    inventory
}

/// Serves a fixed inventory; optionally each collection first waits for a
/// release message, so tests control when a collection ends.
pub struct FixedSource {
    inventory: Inventory,
    gate: Option<Mutex<mpsc::Receiver<()>>>,
    pub calls: Arc<AtomicU64>,
}

impl FixedSource {
    pub fn new(inventory: Inventory) -> Self {
        Self {
            inventory,
            gate: None,
            calls: Arc::default(),
        }
    }

    /// A source whose collections each wait for one `()` on the returned sender.
    pub fn gated(inventory: Inventory) -> (Self, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel();
        let mut source = Self::new(inventory);
        source.gate = Some(Mutex::new(rx));
        (source, tx)
    }
}

impl InventorySource for FixedSource {
    fn collect(&mut self) -> Inventory {
        if let Some(gate) = &self.gate {
            // A dropped sender releases the collection as well.
            let _ = gate.lock().map(|rx| rx.recv());
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inventory.clone()
    }
}
