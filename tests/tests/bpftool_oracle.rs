//! bpftool as the oracle: every object bpftool lists (and still lists after
//! our collection) is in our inventory with the same values.
use std::{
    collections::{HashMap, HashSet},
    ffi::CString,
    fs,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
    path::PathBuf,
};

use aya::{
    programs::{
        links::{CgroupAttachMode, LinkOrder},
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
        tc::TcAttachOptions,
        uprobe::UProbeScope,
        CgroupSkb, CgroupSkbAttachType, FEntry, Iter, PerfEvent, RawTracePoint, SchedClassifier,
        SkLookup, SkSkb, TcAttachType, TracePoint, UProbe, Xdp, XdpMode,
    },
    Btf,
};
use aya_obj::{
    btf::BtfKind,
    generated::{bpf_attach_type, bpf_prog_type},
};
use bpf_inventory_exporter::{
    collect::{KernelSource, Options},
    inventory::{names, Collector, Inventory, Link, LinkTarget},
};
use e2e_tests::{
    bpftool, have_root,
    links::{
        ensure_tracefs, kernel_link, link_create, load_program, load_trivial_program,
        map_iter_link, prog_id, temp_cgroup, Netns, TempDir, Veth,
    },
    oracle::{assert_map_matches, assert_program_matches, bpftool_u64 as u},
    Fixture,
};
use serde_json::Value;

/// bpftool's objects by id, for ids listed both before and after `between`.
fn stable_objects(kind: &str, between: &mut dyn FnMut()) -> HashMap<u64, Value> {
    let list = |kind: &str| -> HashMap<u64, Value> {
        let Value::Array(items) = bpftool(&[kind, "show"]).expect("bpftool") else {
            panic!("bpftool {kind} show: not a list");
        };
        items
            .into_iter()
            .map(|v| (v["id"].as_u64().unwrap(), v))
            .collect()
    };
    let before = list(kind);
    between();
    let after = list(kind);
    before
        .into_iter()
        .filter(|(id, _)| after.contains_key(id))
        .collect()
}

#[test]
fn inventory_matches_bpftool() {
    if !have_root("inventory_matches_bpftool") {
        return;
    }
    let fx = Fixture::load().expect("load fixture");
    let fixture_maps: Vec<u32> = [
        "fixture_hash",
        "fixture_lru",
        "fixture_array",
        "fixture_ringbuf",
    ]
    .into_iter()
    .map(|name| fx.map_id(name))
    .collect();
    let mut source = KernelSource::open(&Options::default()).expect("open source");
    let mut inv: Option<Inventory> = None;
    let progs = stable_objects("prog", &mut || inv = Some(source.collect()));
    let inv = inv.expect("collected");
    let mut inv2: Option<Inventory> = None;
    let maps = stable_objects("map", &mut || inv2 = Some(source.collect()));
    let inv2 = inv2.expect("collected");

    assert!(
        progs.len() >= 6,
        "fixture and exporter programs: {}",
        progs.len()
    );
    for (id, bt) in &progs {
        let p = inv
            .program(*id as u32)
            .unwrap_or_else(|| panic!("prog {id} missing"));
        let ctx = format!("prog {id} {}", p.name);
        assert_eq!(p.prog_type, bpftool_type(bt, names::prog_type), "{ctx}");
        assert_program_matches(p, bt, &ctx);
    }

    assert!(maps.len() >= 6, "fixture and exporter maps: {}", maps.len());
    for (id, bt) in &maps {
        let m = inv2
            .map(*id as u32)
            .unwrap_or_else(|| panic!("map {id} missing"));
        let ctx = format!("map {id} {}", m.name);
        assert_map_matches(m, bt, &ctx);
        // Listing all maps, bpftool reuses one bpf_map_info and Linux 6.18
        // copies it in before filling it: a map without BTF shows the previous
        // map's btf_id. Ask for this map alone (unless another test's map
        // is gone by now; the fixture's live until the end).
        match bpftool(&["map", "show", "id", &id.to_string()]) {
            Ok(alone) => assert_eq!(m.btf_id.map(u64::from), alone["btf_id"].as_u64(), "{ctx}"),
            Err(e) => assert!(!fixture_maps.contains(&(*id as u32)), "{ctx}: {e}"),
        }
    }
    for id in &fixture_maps {
        assert!(
            maps.contains_key(&u64::from(*id)),
            "fixture map {id} compared"
        );
    }

    let mut inv3: Option<Inventory> = None;
    let links = stable_objects("link", &mut || inv3 = Some(source.collect()));
    let inv3 = inv3.expect("collected");
    assert!(!links.is_empty(), "the fixture's link");
    for (id, bt) in &links {
        let l = inv3
            .link(*id as u32)
            .unwrap_or_else(|| panic!("link {id} missing"));
        assert_eq!(l.link_type, bpftool_type(bt, names::link_type), "link {id}");
        assert_eq!(u64::from(l.prog_id), u(bt, "prog_id"), "link {id}");
        if let Some(attach) = bt.get("attach_type").and_then(Value::as_str) {
            assert_eq!(l.attach_type.as_deref(), Some(attach), "link {id}");
        }
        assert_target_matches_bpftool(l, bt);
    }
}

/// Run statistics are per-CPU counters read through the calibrated offsets:
/// they must equal what the kernel sums for bpftool.
#[test]
fn run_statistics_match_bpftool() {
    if !have_root("run_statistics_match_bpftool") {
        return;
    }

    let mut fx = Fixture::load().expect("load fixture");
    let mut source = KernelSource::open(&Options {
        enable_bpf_stats: true,
        ..Options::default()
    })
    .expect("open source");
    fx.run_program(3);
    let id = fx.program_id(e2e_tests::FIXTURE_PROG);
    let inv = source.collect();
    assert!(inv.bpf_stats_enabled);
    let ours = inv.program(id).expect("fixture program");
    let bt = bpftool(&["prog", "show", "id", &id.to_string()]).expect("bpftool");
    let runs = u(&bt, "run_cnt");
    assert!(runs >= 3, "three iterator reads ran the program: {runs}");
    assert_eq!(ours.run_count, Some(runs));
    assert_eq!(ours.run_time_ns, Some(u(&bt, "run_time_ns")));
    assert_eq!(
        ours.recursion_misses,
        Some(bt["recursion_misses"].as_u64().unwrap_or(0))
    );
}

/// Where bpftool (7.1 here) decodes a link's target, it equals ours.
fn assert_target_matches_bpftool(l: &Link, bt: &Value) {
    let ctx = format!("link {} ({}): {bt}", l.id, l.link_type);
    let num = |key: &str| bt.get(key).and_then(Value::as_u64);
    match &l.target {
        Some(LinkTarget::Name { name, map_id }) => {
            if let Some(tp) = bt.get("tp_name") {
                assert_eq!(Some(name.as_str()), tp.as_str(), "{ctx}");
            }
            if let Some(target) = bt.get("target_name") {
                assert_eq!(Some(name.as_str()), target.as_str(), "{ctx}");
                assert_eq!(map_id.map(u64::from), num("map_id"), "{ctx}");
            }
        }
        Some(LinkTarget::Cgroup { cgroup_id }) => {
            assert_eq!(Some(*cgroup_id), num("cgroup_id"), "{ctx}")
        }
        Some(LinkTarget::Interface { ifindex }) if bt.get("ifindex").is_some() => {
            assert_eq!(Some(u64::from(*ifindex)), num("ifindex"), "{ctx}")
        }
        Some(LinkTarget::Netns { netns_ino }) => {
            assert_eq!(Some(u64::from(*netns_ino)), num("netns_ino"), "{ctx}")
        }
        Some(LinkTarget::Detached) => {
            for key in ["ifindex", "netns_ino", "cgroup_id", "map_id"] {
                if let Some(v) = num(key) {
                    assert_eq!(v, 0, "{ctx}");
                }
            }
        }
        _ => {}
    }
}

/// bpftool 7.1 spells program and link types newer than itself (netfilter,
/// tcx, ...) as numbers: compare those through our table of uapi names.
fn bpftool_type(bt: &Value, name: fn(u32) -> std::borrow::Cow<'static, str>) -> String {
    match &bt["type"] {
        Value::Number(n) => name(n.as_u64().unwrap() as u32).into_owned(),
        other => other.as_str().expect("type").to_owned(),
    }
}

const ANY_PERF_TYPE: u32 = u32::MAX;

/// One link of every kind this kernel can make, created here: each link's
/// target is what the test attached it to, what the kernel reports for the
/// link (BPF_OBJ_GET_INFO_BY_FD: the installed bpftool 7.1 predates tcx,
/// netfilter, uprobe_multi, sockmap and perf_event link info), and what
/// bpftool reports where it decodes the kind. Not creatable on this host's
/// kernel (CONFIG_KPROBES, CONFIG_FPROBE, CONFIG_NETKIT off; fentry refused):
/// kprobe, kprobe_multi, netkit and tracing links. struct_ops needs a
/// struct_ops map aya 0.14 cannot create.
#[test]
fn link_targets_match_the_kernel_and_bpftool() {
    if !have_root("link_targets_match_the_kernel_and_bpftool") {
        return;
    }
    let btf = Btf::from_sys_fs().expect("kernel BTF");
    let mut fx = Fixture::load().expect("load fixture");
    let tag = std::process::id() % 100_000;
    let veth = Veth::create(&format!("bpfi{tag}a")).expect("veth");
    let mut gone = Veth::create(&format!("bpfi{tag}g")).expect("veth");
    let cgroup = temp_cgroup(&format!("bpf-inventory-test-{tag}")).expect("cgroup");
    let gone_cgroup = temp_cgroup(&format!("bpf-inventory-gone-{tag}")).expect("cgroup");
    let mut gone_netns = Netns::create(&format!("bpfi{tag}n")).expect("netns");
    ensure_tracefs().expect("tracefs");
    // Under /dev/shm: the path crosses mount points (/dev, /dev/shm).
    let dir = TempDir(PathBuf::from(format!("/dev/shm/bpf-inventory-links-{tag}")));
    let probed = dir.0.join("nested/probed");
    fs::create_dir_all(probed.parent().unwrap()).unwrap();
    fs::copy("/bin/true", &probed).expect("copy /bin/true");
    let probed_path = probed.to_str().unwrap().to_owned();

    // What each program is attached to: (program, expected target).
    let mut expected: Vec<(u32, LinkTarget)> = Vec::new();
    let mut keep: Vec<OwnedFd> = Vec::new();
    let id = |fx: &Fixture, name: &str| fx.program_id(name);

    let prog: &mut Xdp = fx
        .ebpf
        .program_mut("fixture_xdp")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    prog.attach(&veth.name, XdpMode::Skb).expect("xdp");
    prog.attach(&gone.name, XdpMode::Skb).expect("xdp");
    let xdp = id(&fx, "fixture_xdp");
    expected.push((
        xdp,
        LinkTarget::Interface {
            ifindex: veth.ifindex,
        },
    ));
    expected.push((xdp, LinkTarget::Detached));

    let prog: &mut SchedClassifier = fx
        .ebpf
        .program_mut("fixture_tc")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    for (dev, dir) in [
        (&veth.name, TcAttachType::Ingress),
        (&gone.name, TcAttachType::Egress),
    ] {
        let order = TcAttachOptions::TcxOrder(LinkOrder::default());
        prog.attach_with_options(dev, dir, order).expect("tcx");
    }
    let tcx = id(&fx, "fixture_tc");
    expected.push((
        tcx,
        LinkTarget::Interface {
            ifindex: veth.ifindex,
        },
    ));
    expected.push((tcx, LinkTarget::Detached));

    let prog: &mut CgroupSkb = fx
        .ebpf
        .program_mut("fixture_cgroup_skb")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    for dir in [&cgroup.0, &gone_cgroup.0] {
        let dir = fs::File::open(dir).unwrap();
        let (ingress, single) = (CgroupSkbAttachType::Ingress, CgroupAttachMode::Single);
        prog.attach(&dir, ingress, single).expect("cgroup");
    }
    let cgroup_id = fs::metadata(&cgroup.0).unwrap().ino();
    let cgroup_skb = id(&fx, "fixture_cgroup_skb");
    expected.push((cgroup_skb, LinkTarget::Cgroup { cgroup_id }));
    expected.push((cgroup_skb, LinkTarget::Detached));

    let prog: &mut SkLookup = fx
        .ebpf
        .program_mut("fixture_sk_lookup")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    for ns in [PathBuf::from("/proc/self/ns/net"), gone_netns.path()] {
        prog.attach(fs::File::open(ns).unwrap()).expect("netns");
    }
    let netns_ino = fs::metadata("/proc/self/ns/net").unwrap().ino() as u32;
    let sk_lookup = id(&fx, "fixture_sk_lookup");
    expected.push((sk_lookup, LinkTarget::Netns { netns_ino }));
    expected.push((sk_lookup, LinkTarget::Detached));

    let prog: &mut RawTracePoint = fx
        .ebpf
        .program_mut("fixture_raw_tp")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    prog.attach("sched_switch").expect("raw_tp");
    let name = |n: &str| LinkTarget::Name {
        name: n.into(),
        map_id: None,
    };
    expected.push((id(&fx, "fixture_raw_tp"), name("sched_switch")));

    let prog: &mut FEntry = fx
        .ebpf
        .program_mut("fixture_fentry")
        .unwrap()
        .try_into()
        .unwrap();
    // This VM's kernel refuses fentry and fexit programs (EPERM, with
    // bpftool too; tp_btf loads): a kernel that loads them gets the tracing
    // link checked.
    match prog.load("vfs_fsync", &btf) {
        Ok(()) => {
            prog.attach().expect("fentry");
            expected.push((id(&fx, "fixture_fentry"), name("vfs_fsync")));
        }
        Err(e) => eprintln!("no tracing link: loading fentry/vfs_fsync failed: {e:?}"),
    }

    let prog: &mut TracePoint = fx
        .ebpf
        .program_mut("fixture_tracepoint")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    prog.attach("sched", "sched_switch").expect("tracepoint");
    // A syscall event keeps its own name, not a tracepoint's.
    prog.attach("syscalls", "sys_enter_fsync")
        .expect("syscall tracepoint");
    for tracepoint in ["sched_switch", "sys_enter_fsync"] {
        let tracepoint = tracepoint.into();
        expected.push((
            id(&fx, "fixture_tracepoint"),
            LinkTarget::Tracepoint { tracepoint },
        ));
    }

    let prog: &mut UProbe = fx
        .ebpf
        .program_mut("fixture_uprobe")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    prog.attach(0x40u64, &probed, UProbeScope::AllProcesses)
        .expect("uprobe");
    expected.push((
        id(&fx, "fixture_uprobe"),
        LinkTarget::Uprobe {
            file: probed_path.clone(),
            offset: 0x40,
            retprobe: false,
        },
    ));
    let prog: &mut UProbe = fx
        .ebpf
        .program_mut("fixture_uretprobe")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    prog.attach(0x80u64, &probed, UProbeScope::AllProcesses)
        .expect("uretprobe");
    let file = probed_path.clone();
    let uretprobe = LinkTarget::Uprobe {
        file,
        offset: 0x80,
        retprobe: true,
    };
    expected.push((id(&fx, "fixture_uretprobe"), uretprobe));

    let prog: &mut PerfEvent = fx
        .ebpf
        .program_mut("fixture_perf_event")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    prog.attach(
        PerfEventConfig::Software(SoftwareEvent::CpuClock),
        PerfEventScope::AllProcessesOneCpu { cpu: 0 },
        SamplePolicy::Period(1_000_000_000),
        false,
    )
    .expect("perf_event");
    // PERF_COUNT_SW_CPU_CLOCK. The type is the kernel's attr.type after
    // perf_init_event (6.18 moves cpu-clock to its own PMU's type), checked
    // against the kernel's report below, not here.
    let perf = LinkTarget::PerfEvent {
        event_type: ANY_PERF_TYPE,
        event_config: 0,
    };
    expected.push((id(&fx, "fixture_perf_event"), perf));

    let prog: &mut SkSkb = fx
        .ebpf
        .program_mut("fixture_sk_skb")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().unwrap();
    let prog = fx.ebpf.program("fixture_sk_skb").unwrap();
    let Some(aya::maps::Map::SockMap(sockmap)) = fx.ebpf.map("fixture_sockmap") else {
        panic!("fixture_sockmap");
    };
    let sockmap_id = sockmap.info().unwrap().id();
    let link = link_create(
        prog.fd().unwrap().as_fd(),
        sockmap.fd().as_fd().as_raw_fd() as u32,
        bpf_attach_type::BPF_SK_SKB_STREAM_VERDICT,
        |_| {},
    );
    keep.push(link.expect("sockmap link"));
    expected.push((
        id(&fx, "fixture_sk_skb"),
        LinkTarget::Map { map_id: sockmap_id },
    ));

    let prog: &mut Iter = fx
        .ebpf
        .program_mut("fixture_map_elem")
        .unwrap()
        .try_into()
        .unwrap();
    // Some builds of this VM's kernel refuse iter/bpf_map_elem too (EPERM
    // before any instruction is verified; the exporter's own iterators load):
    // a kernel that loads it gets the map-iterator link checked.
    match prog.load("bpf_map_elem", &btf) {
        Ok(()) => {
            let prog = fx.ebpf.program("fixture_map_elem").unwrap();
            let hash = fx.map_data("fixture_hash");
            let link = map_iter_link(prog.fd().unwrap().as_fd(), hash.fd().as_fd());
            keep.push(link.expect("map iterator"));
            let map_id = Some(fx.map_id("fixture_hash"));
            let iter = LinkTarget::Name {
                name: "bpf_map_elem".into(),
                map_id,
            };
            expected.push((id(&fx, "fixture_map_elem"), iter));
        }
        Err(e) => eprintln!("no map iterator link: loading iter/bpf_map_elem failed: {e:?}"),
    }

    let netfilter = load_trivial_program(
        bpf_prog_type::BPF_PROG_TYPE_NETFILTER,
        bpf_attach_type::BPF_NETFILTER,
        "fixture_nf",
    )
    .unwrap();
    // NFPROTO_IPV4, NF_INET_LOCAL_IN, priority -128
    let link = link_create(
        netfilter.as_fd(),
        0,
        bpf_attach_type::BPF_NETFILTER,
        |attr| {
            // SAFETY: the netfilter member of a zeroed union of integers.
            let nf = unsafe { &mut attr.link_create.__bindgen_anon_3.netfilter };
            (nf.pf, nf.hooknum, nf.priority) = (2, 1, -128);
        },
    );
    keep.push(link.expect("netfilter link"));
    let nf = LinkTarget::Netfilter {
        pf: 2,
        hook: 1,
        prio: -128,
    };
    expected.push((prog_id(netfilter.as_fd()).unwrap(), nf));

    let umulti = load_trivial_program(
        bpf_prog_type::BPF_PROG_TYPE_KPROBE,
        bpf_attach_type::BPF_TRACE_UPROBE_MULTI,
        "fixture_umulti",
    )
    .unwrap();
    let path = CString::new(probed_path.clone()).unwrap();
    let offsets: [u64; 2] = [0x40, 0x80];
    let pid = std::process::id();
    let link = link_create(
        umulti.as_fd(),
        0,
        bpf_attach_type::BPF_TRACE_UPROBE_MULTI,
        |attr| {
            // SAFETY: the uprobe_multi member of a zeroed union of integers.
            let u = unsafe { &mut attr.link_create.__bindgen_anon_3.uprobe_multi };
            u.path = path.as_ptr() as u64;
            u.offsets = offsets.as_ptr() as u64;
            u.cnt = 2;
            u.pid = pid;
        },
    );
    keep.push(link.expect("uprobe_multi link"));
    let multi = LinkTarget::UprobeMulti {
        path: probed_path.clone(),
        func_cnt: 2,
        pid,
    };
    expected.push((prog_id(umulti.as_fd()).unwrap(), multi));

    gone.delete()
        .expect("delete the device of the detached links");
    gone_netns.delete().expect("delete the netns");
    fs::remove_dir(&gone_cgroup.0).expect("remove the cgroup");

    // The kernel detaches netns and cgroup links from a work queue: wait
    // (at most 10 s) until every detached link is, then compare.
    let ours: HashSet<u32> = expected.iter().map(|(p, _)| *p).collect();
    let detached = expected
        .iter()
        .filter(|(_, t)| *t == LinkTarget::Detached)
        .count();
    let mut source = KernelSource::open(&Options::default()).expect("open source");
    let mut inv = source.collect();
    for _ in 0..50 {
        let now = inv
            .links
            .iter()
            .filter(|l| ours.contains(&l.prog_id) && l.target == Some(LinkTarget::Detached))
            .count();
        if now == detached {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        inv = source.collect();
    }
    assert!(inv.collector_ok(Collector::Links), "{:?}", inv.errors);
    let mut seen: Vec<(u32, LinkTarget)> = Vec::new();
    for l in inv.links.iter().filter(|l| ours.contains(&l.prog_id)) {
        let kernel = kernel_link(l.id).expect("kernel link info");
        let ctx = format!("link {} ({}, prog {})", l.id, l.link_type, l.prog_id);
        assert_eq!(l.link_type, names::link_type(kernel.link_type), "{ctx}");
        assert_eq!(l.prog_id, kernel.prog_id, "{ctx}");
        assert_eq!(l.target, kernel.target, "{ctx}: ours vs the kernel's");
        if let Some(attach) = kernel.attach_type {
            let name = names::attach_type(attach);
            assert_eq!(l.attach_type.as_deref(), Some(&*name), "{ctx}");
        }
        if l.link_type == "raw_tracepoint" {
            assert_eq!(
                l.attach_type, None,
                "{ctx}: raw_tp links have no attach type"
            );
        }
        let bt = bpftool(&["link", "show", "id", &l.id.to_string()]).expect("bpftool link");
        assert_eq!(l.link_type, bpftool_type(&bt, names::link_type), "{ctx}");
        assert_target_matches_bpftool(l, &bt);
        // The kinds bpftool 7.1 decodes: it must have shown the field.
        let field = match l.link_type.as_ref() {
            "raw_tracepoint" => Some("tp_name"),
            "cgroup" => Some("cgroup_id"),
            "iter" => Some("map_id"),
            "netns" => Some("netns_ino"),
            _ => None,
        };
        if let Some(field) = field {
            assert!(
                bt.get(field).is_some(),
                "{ctx}: bpftool shows no {field}: {bt}"
            );
        }
        let mut target = l.target.clone().expect("a target");
        if let LinkTarget::PerfEvent { event_type, .. } = &mut target {
            *event_type = ANY_PERF_TYPE;
        }
        seen.push((l.prog_id, target));
    }
    for want in &expected {
        assert!(
            seen.contains(want),
            "no link {want:?}; links of our programs: {seen:?}"
        );
    }
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    drop(keep);
}

/// A program that calls bpf_throw() without an exception callback of its own
/// gets a hidden one from the verifier (6.7+): counted in real_func_cnt, left
/// out of the JITed size the kernel reports (func_cnt). jited_bytes must
/// equal bpftool's bytes_jited for it.
#[test]
fn jited_bytes_leave_out_the_hidden_exception_callback() {
    if !have_root("jited_bytes_leave_out_the_hidden_exception_callback") {
        return;
    }
    let btf = Btf::from_sys_fs().expect("kernel BTF");
    let throw = match btf.id_by_type_name_kind("bpf_throw", BtfKind::Func) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("no bpf_throw kfunc (Linux < 6.7): {e}");
            return;
        }
    };
    let insns = [
        0x0000_0007_0000_0085,             // call bpf_get_prandom_u32
        0x0000_0000_0002_0055,             // if r0 != 0 goto +2
        0x0000_0000_0000_01b7,             // r1 = 0
        (u64::from(throw) << 32) | 0x2085, // call kfunc bpf_throw
        0x0000_0000_0000_00b7,             // r0 = 0
        0x0000_0000_0000_0095,             // exit
    ];
    let fd = load_program(
        bpf_prog_type::BPF_PROG_TYPE_SCHED_CLS,
        bpf_attach_type::BPF_CGROUP_INET_INGRESS,
        "fixture_throw",
        &insns,
    )
    .expect("load a bpf_throw program");
    let id = prog_id(fd.as_fd()).unwrap();
    let mut source = KernelSource::open(&Options::default()).expect("open source");
    let inv = source.collect();
    let ours = inv.program(id).expect("the bpf_throw program");
    let bt = bpftool(&["prog", "show", "id", &id.to_string()]).expect("bpftool");
    assert!(ours.jited_bytes > 0);
    assert_eq!(u64::from(ours.jited_bytes), u(&bt, "bytes_jited"), "{bt}");
}
