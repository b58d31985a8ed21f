//! Owners against the real kernel: child processes the test starts hold fds
//! to a map, a program and a link it created; the collection names each child
//! by its exact pid, comm, cgroup, container and pod, and forgets it after it
//! exits. Pins and held_by of objects no process holds.
use std::{
    fs,
    os::fd::{AsFd, AsRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use aya::programs::{links::FdLink, Iter};
use bpf_inventory_exporter::{
    bpf::pins::{identify, open_pin},
    collect::{cgroup::cgroup2_mount, KernelSource, Options},
    inventory::{HeldBy, Inventory, Owner},
};
use e2e_tests::{
    bpftool_pinned_array, exporter_binary, have_root,
    holders::{kid_binary, kid_holding, make_cgroup, spawn_holding, wait_for_comm, Cleanup, KID},
    Fixture, FIXTURE_PROG,
};

/// Fds of the fixture's hash map and long-named program, and of a new link of
/// that program (pinned at `pin`, opened from the pin, unpinned: only the
/// returned fd holds it). Returns (map id, prog id, link id, link fd).
fn fixture_fds(fx: &mut Fixture, pin: &Path) -> (u32, u32, u32, OwnedFd) {
    let prog: &mut Iter = fx
        .ebpf
        .program_mut(FIXTURE_PROG)
        .unwrap()
        .try_into()
        .unwrap();
    let id = prog.attach().expect("attach");
    let link: FdLink = prog.take_link(id).unwrap().try_into().unwrap();
    let pinned = link.pin(pin).expect("pin link");
    let link_fd = open_pin(pin).expect("open pinned link");
    let (_, link_id) = identify(pin).unwrap().expect("a link");
    drop(pinned.unpin().expect("unpin"));
    (
        fx.map_id("fixture_hash"),
        fx.program_id(FIXTURE_PROG),
        link_id,
        link_fd,
    )
}

fn raw_fds(fx: &Fixture, link_fd: &OwnedFd) -> [RawFd; 3] {
    let map = fx.map_data("fixture_hash").fd().as_fd().as_raw_fd();
    let prog = fx
        .ebpf
        .program(FIXTURE_PROG)
        .unwrap()
        .fd()
        .unwrap()
        .as_fd()
        .as_raw_fd();
    [map, prog, link_fd.as_raw_fd()]
}

fn owners_of(inv: &Inventory, kind: &str, id: u32) -> Vec<Owner> {
    let owners = match kind {
        "map" => inv.map(id).map(|m| m.holders.owners.clone()),
        "prog" => inv.program(id).map(|p| p.holders.owners.clone()),
        _ => inv.link(id).map(|l| l.holders.owners.clone()),
    };
    owners
        .unwrap_or_else(|| panic!("{kind} {id} not in the inventory"))
        .unwrap_or_else(|| panic!("{kind} {id}: owners unknown"))
        .to_vec()
}

fn pids(owners: &[Owner]) -> Vec<u32> {
    owners.iter().map(|o| o.pid).collect()
}

fn own_comm() -> String {
    fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_owned()
}

fn source() -> KernelSource {
    KernelSource::open(&Options::default()).expect("open source")
}

#[test]
fn a_child_holding_map_program_and_link_is_their_owner_until_it_exits() {
    if !have_root("a_child_holding_map_program_and_link_is_their_owner_until_it_exits") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kid_bin = kid_binary(tmp.path());
    let mut fx = Fixture::load().expect("load fixture");
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/owners_test_child_{}",
        std::process::id()
    ));
    let _unpin = Cleanup(vec![pin.clone()]);
    let (map_id, prog_id, link_id, link_fd) = fixture_fds(&mut fx, &pin);
    let kid = kid_holding(&kid_bin, &raw_fds(&fx, &link_fd));
    let kid_pid = kid.id();
    let me = std::process::id();
    let mut source = source();

    let inv = source.collect();
    for (kind, id) in [("map", map_id), ("prog", prog_id), ("link", link_id)] {
        let owners = owners_of(&inv, kind, id);
        let kid_owner = owners
            .iter()
            .find(|o| o.pid == kid_pid)
            .unwrap_or_else(|| panic!("{kind} {id}: child {kid_pid} missing in {owners:?}"));
        assert_eq!(&*kid_owner.comm, KID);
        assert_eq!(kid_owner.pod_uid, None);
        let cgroup = fs::read_to_string(format!("/proc/{kid_pid}/cgroup")).unwrap();
        let v2 = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        assert_eq!(kid_owner.cgroup.as_deref(), Some(v2), "{kind}");
        let test = owners
            .iter()
            .find(|o| o.pid == me)
            .expect("the test holds it too");
        assert_eq!(*test.comm, own_comm());
        assert_eq!(
            owners.len(),
            2,
            "{kind} {id}: only the test and the child: {owners:?}"
        );
    }
    let link = inv.link(link_id).unwrap();
    assert_eq!(link.holders.pins, Some(vec![]), "unpinned");
    assert_eq!(link.holders.held_by, Some(vec![HeldBy::Process]));
    let prog = inv.program(prog_id).unwrap();
    assert_eq!(
        prog.holders.held_by,
        Some(vec![HeldBy::Process, HeldBy::Link])
    );

    drop(kid);
    let inv = source.collect();
    for (kind, id) in [("map", map_id), ("prog", prog_id), ("link", link_id)] {
        assert_eq!(
            pids(&owners_of(&inv, kind, id)),
            [me],
            "{kind} {id} after exit"
        );
    }
    // Closing the last fd of the link: gone from the next collection.
    drop(link_fd);
    assert!(source.collect().link(link_id).is_none());
}

#[test]
fn kubelet_cgroup_names_give_pod_uid_and_container_id() {
    if !have_root("kubelet_cgroup_names_give_pod_uid_and_container_id") {
        return;
    }
    let root = cgroup2_mount(&fs::read_to_string("/proc/self/mountinfo").unwrap())
        .expect("a cgroup2 mount");
    let tmp = tempfile::tempdir().unwrap();
    let kid_bin = kid_binary(tmp.path());
    let fx = Fixture::load().expect("load fixture");
    let map_id = fx.map_id("fixture_hash");
    let map_fd = fx.map_data("fixture_hash").fd().as_fd().as_raw_fd();
    let top = format!("bpf-owners-test-{}", std::process::id());
    let uid = "5f3a9c2e-7b1d-4e8f-9a0b-1c2d3e4f5a6b";
    let systemd_id = "a".repeat(32) + &"0123456789abcdef".repeat(2);
    let cgroupfs_id = "b".repeat(64);
    let systemd = format!(
        "{top}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{systemd_id}.scope",
        uid.replace('-', "_")
    );
    let cgroupfs = format!("{top}/kubepods/besteffort/pod{uid}/{cgroupfs_id}");
    let mut cleanup = Cleanup(vec![]);
    let mut kids = Vec::new();
    for (path, container) in [(&systemd, &systemd_id), (&cgroupfs, &cgroupfs_id)] {
        let dir = make_cgroup(&root, path, &mut cleanup);
        let kid = kid_holding(&kid_bin, &[map_fd]);
        fs::write(dir.join("cgroup.procs"), kid.id().to_string()).expect("move child");
        kids.push((kid, format!("/{path}"), container.clone()));
    }

    let inv = source().collect();
    let owners = owners_of(&inv, "map", map_id);
    for (kid, path, container) in &kids {
        let owner = owners
            .iter()
            .find(|o| o.pid == kid.id())
            .unwrap_or_else(|| panic!("{path}: child missing in {owners:?}"));
        assert_eq!(&*owner.comm, KID);
        assert_eq!(owner.cgroup.as_deref(), Some(path.as_str()));
        assert_eq!(owner.pod_uid.as_deref(), Some(uid), "{path}");
        assert_eq!(
            owner.container_id.as_deref(),
            Some(container.as_str()),
            "{path}"
        );
    }
    // The pod's group in the roll-up holds the map.
    let groups = inv.owner_groups();
    let pod = groups
        .iter()
        .find(|g| g.container_id.as_deref() == Some(systemd_id.as_str()))
        .expect("systemd driver pod group");
    assert_eq!(
        (pod.pod_uid.as_deref(), pod.map_ids.clone()),
        (Some(uid), vec![map_id])
    );
    drop(kids); // before the cgroups are removed
}

#[test]
fn a_process_in_a_new_pid_namespace_is_reported_with_its_host_pid() {
    if !have_root("a_process_in_a_new_pid_namespace_is_reported_with_its_host_pid") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kid_bin = kid_binary(tmp.path());
    let fx = Fixture::load().expect("load fixture");
    let map_id = fx.map_id("fixture_hash");
    let map_fd = fx.map_data("fixture_hash").fd().as_fd().as_raw_fd();
    let mut command = Command::new("unshare");
    command
        // --kill-child: killing unshare (the guard) must not leave its child,
        // pid 1 of the new namespace, reparented to init and holding the map.
        .args(["--pid", "--fork", "--kill-child", "--"])
        .arg(&kid_bin)
        .arg("300");
    let unshare = spawn_holding(command, &[map_fd]);
    // unshare forks the child that is pid 1 in the new namespace.
    let deadline = Instant::now() + Duration::from_secs(5);
    let host_pid = loop {
        let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            break pid.parse::<u32>().unwrap();
        }
        assert!(Instant::now() < deadline, "unshare started no child");
        std::thread::sleep(Duration::from_millis(10));
    };
    wait_for_comm(host_pid, KID);
    let status = fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.ends_with("\t1"), "pid 1 in its namespace: {nspid}");

    let owners = owners_of(&source().collect(), "map", map_id);
    let kid = owners
        .iter()
        .find(|o| &*o.comm == KID)
        .unwrap_or_else(|| panic!("child missing in {owners:?}"));
    assert_eq!(kid.pid, host_pid);
    assert!(owners
        .iter()
        .any(|o| o.pid == unshare.id() && &*o.comm == "unshare"));
}

#[test]
fn pinned_map_without_holder_and_program_held_only_by_a_link() {
    if !have_root("pinned_map_without_holder_and_program_held_only_by_a_link") {
        return;
    }
    let me = std::process::id();
    let map_pin = PathBuf::from(format!("/sys/fs/bpf/owners_test_map_{me}"));
    let link_pin = PathBuf::from(format!("/sys/fs/bpf/owners_test_link_{me}"));
    let _unpin = Cleanup(vec![map_pin.clone(), link_pin.clone()]);
    bpftool_pinned_array(&map_pin, "owners_pin").unwrap();
    let (_, map_id) = identify(&map_pin).unwrap().expect("a map");
    // The fixture program attached by a pinned link; every fd of ours closed.
    let (prog_id, link_id) = {
        let mut fx = Fixture::load().expect("load fixture");
        let prog: &mut Iter = fx
            .ebpf
            .program_mut(FIXTURE_PROG)
            .unwrap()
            .try_into()
            .unwrap();
        let id = prog.attach().unwrap();
        let link: FdLink = prog.take_link(id).unwrap().try_into().unwrap();
        drop(link.pin(&link_pin).expect("pin link"));
        (
            fx.program_id(FIXTURE_PROG),
            identify(&link_pin).unwrap().unwrap().1,
        )
    };

    let inv = source().collect();
    let map = inv.map(map_id).expect("pinned map listed");
    assert_eq!(map.holders.owners.as_deref(), Some(&[][..]));
    assert_eq!(map.holders.pins, Some(vec![map_pin.display().to_string()]));
    assert_eq!(map.holders.held_by, Some(vec![HeldBy::Pinned]));
    let prog = inv.program(prog_id).expect("linked program listed");
    assert_eq!(
        (prog.holders.owners.as_deref(), &prog.holders.pins),
        (Some(&[][..]), &Some(vec![]))
    );
    assert_eq!(prog.holders.held_by, Some(vec![HeldBy::Link]));
    let link = inv.link(link_id).expect("pinned link listed");
    assert_eq!(
        link.holders.pins,
        Some(vec![link_pin.display().to_string()])
    );
    assert_eq!(link.holders.held_by, Some(vec![HeldBy::Pinned]));
}

fn dump_with_caps(uid: u32) -> serde_json::Value {
    let caps = ",+bpf,+perfmon";
    let out = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(format!("--inh-caps=-all{caps}"))
        .arg(format!("--ambient-caps=-all{caps}"))
        .arg(format!("--bounding-set=-all{caps}"))
        .arg("--")
        .arg(exporter_binary())
        .args(["dump", "--format", "json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "uid {uid}: {stderr}");
    assert!(
        !stderr.contains("owners walk"),
        "uid {uid}: owners walk failed: {stderr}"
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn owners_with_only_cap_bpf_and_cap_perfmon() {
    if !have_root("owners_with_only_cap_bpf_and_cap_perfmon") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kid_bin = kid_binary(tmp.path());
    let fx = Fixture::load().expect("load fixture");
    let map_id = fx.map_id("fixture_hash");
    let map_fd = fx.map_data("fixture_hash").fd().as_fd().as_raw_fd();
    let kid = kid_holding(&kid_bin, &[map_fd]);
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/owners_test_caps_{}",
        std::process::id()
    ));
    let _unpin = Cleanup(vec![pin.clone()]);
    fx.map_data("fixture_hash").pin(&pin).expect("pin map");

    for (uid, pins_readable) in [(0, true), (65534, false)] {
        let inv = dump_with_caps(uid);
        let map = inv["maps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == map_id)
            .expect("fixture map");
        let owners = map["owners"]
            .as_array()
            .unwrap_or_else(|| panic!("uid {uid}: {map}"));
        assert!(
            owners
                .iter()
                .any(|o| o["pid"] == kid.id() && o["comm"] == KID),
            "uid {uid}: {owners:?}"
        );
        if pins_readable {
            assert_eq!(map["pins"], serde_json::json!([pin.display().to_string()]));
            assert_eq!(
                map["held_by"],
                serde_json::json!(["process", "pinned", "program"])
            );
        } else {
            // Pins are mode 0600 root: unknown, and no error.
            assert_eq!(map["pins"], serde_json::Value::Null, "uid {uid}");
            assert_eq!(map["held_by"], serde_json::json!(["process", "program"]));
        }
        assert_eq!(inv["errors"], serde_json::json!([]));
    }
}

#[test]
fn owners_min_interval_reuses_the_walk_and_no_owners_switches_it_off() {
    if !have_root("owners_min_interval_reuses_the_walk_and_no_owners_switches_it_off") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kid_bin = kid_binary(tmp.path());
    let fx = Fixture::load().expect("load fixture");
    let map_id = fx.map_id("fixture_hash");
    let map_fd = fx.map_data("fixture_hash").fd().as_fd().as_raw_fd();
    let mut reusing = KernelSource::open(&Options {
        owners_min_interval: Duration::from_secs(3600),
        ..Options::default()
    })
    .expect("open source");
    let mut off = KernelSource::open(&Options {
        no_owners: true,
        ..Options::default()
    })
    .expect("open source");
    let me = std::process::id();
    assert_eq!(pids(&owners_of(&reusing.collect(), "map", map_id)), [me]);

    let kid = kid_holding(&kid_bin, &[map_fd]);
    // The walk is an hour young: the new holder is not seen yet, by design.
    assert_eq!(pids(&owners_of(&reusing.collect(), "map", map_id)), [me]);
    // A source walking every collection sees it.
    let fresh = source().collect();
    let mut both = vec![me, kid.id()];
    both.sort_unstable();
    assert_eq!(pids(&owners_of(&fresh, "map", map_id)), both);
    let inv = off.collect();
    let map = inv.map(map_id).expect("map listed without owners");
    assert_eq!(
        (&map.holders.owners, &map.holders.pins, &map.holders.held_by),
        (&None, &None, &None)
    );
    assert!(inv.owner_groups().is_empty());
    assert!(!inv.owners_known());
}

/// Fds of this process whose fdinfo names program `id` (its program fd or a
/// link of it).
fn own_fds_of_prog(id: u32) -> usize {
    let line = format!("prog_id:\t{id}");
    fs::read_dir("/proc/self/fdinfo")
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.unwrap().path()).ok())
        .filter(|info| info.lines().any(|l| l == line))
        .count()
}

#[test]
fn the_walk_runs_on_a_thread_of_the_source_and_closes_with_it() {
    if !have_root("the_walk_runs_on_a_thread_of_the_source_and_closes_with_it") {
        return;
    }
    let mut source = source();
    let first = source.collect();
    let walks: Vec<u32> = first
        .programs
        .iter()
        .filter(|p| p.is_self && p.name == "walk_owners")
        .map(|p| p.id)
        .collect();
    let [walk] = walks[..] else {
        panic!("one walk program of this source: {walks:?}");
    };
    assert_eq!(pids(&owners_of(&first, "prog", walk)), [std::process::id()]);
    assert!(own_fds_of_prog(walk) > 0);
    // More walks, each by the walk thread or by the collecting thread,
    // whichever claims it first: the same owners either way.
    for _ in 0..10 {
        let next = source.collect();
        assert_eq!(
            next.program(walk).unwrap().holders.owners,
            first.program(walk).unwrap().holders.owners
        );
    }
    drop(source);
    assert_eq!(
        own_fds_of_prog(walk),
        0,
        "the walk's fds closed when the source is dropped"
    );
}
