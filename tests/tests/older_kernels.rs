//! The same binary on every supported kernel: Debian's 5.10 (bullseye), 6.1
//! and 6.12 (bookworm) under qemu. Inside each guest the fixture is loaded
//! with bpftool, then the exporter's `dump --format json` is compared with the
//! guest's own `bpftool -j prog|map|link show`, object by object, and `check`
//! must pass. What a kernel cannot give is null (never 0), a collector whose
//! iterator the kernel lacks is `unsupported`, and one start-up line says so.
//! The node's posture equals what each guest reads itself (`posture.rs`); a
//! program loaded and unloaded in the guest after the exporter started arrives
//! as load and unload events (`events.rs`).
#[path = "older_kernels/events.rs"]
mod events;
#[path = "older_kernels/pinned.rs"]
mod pinned;
#[path = "older_kernels/posture.rs"]
mod posture;

use std::{collections::BTreeMap, path::Path, process::Command};

use bpf_inventory_exporter::inventory::{Collector, HeldBy, Inventory, LinkTarget};
use e2e_tests::{
    exporter_binary, fixture_core_object, have_root,
    oracle::{assert_map_matches, assert_program_matches, bpftool_u64 as u},
    FIXTURE_PROG, FIXTURE_SHORT_PROG,
};
use serde_json::Value;

/// What one guest printed, by section name: (output, exit code, stderr).
struct Guest {
    sections: BTreeMap<String, (String, i32, String)>,
}

impl Guest {
    /// Boots `series` with `smp` (qemu's -smp); None when qemu is missing
    /// outside CI. `posture_switch`: the guest also switches
    /// `kernel.unprivileged_bpf_disabled` under a running `serve`; `env`:
    /// more of boot-guest.sh's settings.
    fn boot(series: &str, smp: &str, posture_switch: bool, env: &[(&str, &str)]) -> Option<Guest> {
        if Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install qemu-system-x86"
            );
            eprintln!("skipping: qemu-system-x86_64 missing (apt-get install qemu-system-x86)");
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu/boot-guest.sh");
        // One kernel download per series, shared by the boots of that series.
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kernel-{series}"));
        let mut command = Command::new(script);
        if posture_switch {
            command.env("POSTURE_SWITCH", "1");
        }
        command.env("EVENT_KID", env!("CARGO_BIN_EXE_bpf-event-kid"));
        command.envs(env.iter().copied());
        let out = command
            .arg(series)
            .arg(exporter_binary())
            .arg(fixture_core_object())
            .arg(&work)
            .arg(smp)
            .output()
            .expect("boot-guest.sh");
        let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(
            console.contains("===DONE==="),
            "the {series} guest did not finish:\n{console}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut sections = BTreeMap::new();
        for chunk in console.split("===BEGIN ").skip(1) {
            let (name, rest) = chunk.split_once("===\n").expect("section name");
            let (output, rest) = rest
                .split_once(&format!("===END {name} "))
                .expect("section end");
            let (code, rest) = rest.split_once("===\n").expect("exit code");
            let stderr = rest.split("===").next().unwrap_or_default();
            sections.insert(
                name.to_owned(),
                (output.to_owned(), code.parse().unwrap(), stderr.to_owned()),
            );
        }
        Some(Guest { sections })
    }

    fn section(&self, name: &str) -> &(String, i32, String) {
        let section = self.sections.get(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(section.1, 0, "{name} failed in the guest:\n{}", section.2);
        section
    }

    fn bpftool(&self, kind: &str) -> Vec<Value> {
        match serde_json::from_str(&self.section(kind).0).expect("bpftool json") {
            Value::Array(items) => items,
            other => panic!("bpftool {kind} show: {other}"),
        }
    }

    fn inventory(&self) -> Inventory {
        self.section("fixture");
        serde_json::from_str(&self.section("dump").0).expect("inventory json")
    }
}

/// Every program, map and link bpftool lists is in the inventory with the
/// same values, and every object of the inventory that is not the exporter's
/// own (gone by the time bpftool runs) is in bpftool's lists.
fn compare_with_bpftool(guest: &Guest, inv: &Inventory, release: &str) {
    let (major, minor) = kernel_version(release);
    let progs = guest.bpftool("prog");
    for bt in &progs {
        let id = u(bt, "id") as u32;
        let p = inv
            .program(id)
            .unwrap_or_else(|| panic!("prog {id} missing: {bt}"));
        let ctx = format!("{release} prog {id} {}", p.name);
        assert_eq!(p.prog_type, bt["type"].as_str().unwrap(), "{ctx}");
        assert_program_matches(p, bt, &ctx);
        // Since 5.16: compared above where the guest's bpftool prints it, and
        // always the rule.
        assert_eq!(
            p.verified_insns.is_some(),
            (major, minor) >= (5, 16),
            "{ctx}"
        );
        // Run statistics exist on every kernel here (5.1+); bpftool omits zeros.
        let runs = bt.get("run_cnt").and_then(Value::as_u64).unwrap_or(0);
        assert_eq!(p.run_count, Some(runs), "{ctx}");
        let time = bt.get("run_time_ns").and_then(Value::as_u64).unwrap_or(0);
        assert_eq!(p.run_time_ns, Some(time), "{ctx}");
        let misses = bt.get("recursion_misses").and_then(Value::as_u64);
        if (major, minor) >= (5, 12) {
            assert_eq!(p.recursion_misses, Some(misses.unwrap_or(0)), "{ctx}");
        } else {
            assert_eq!(p.recursion_misses, None, "{ctx}: no counter before 5.12");
        }
    }
    let listed: Vec<u32> = progs.iter().map(|bt| u(bt, "id") as u32).collect();
    for p in inv.programs.iter().filter(|p| !p.is_self) {
        assert!(
            listed.contains(&p.id),
            "{release}: prog {} {} not in bpftool",
            p.id,
            p.name
        );
    }
    // The fixture: the long-named program twice (pinned, and linked as an
    // iterator that ran), using the hash map and the array; the short one
    // with a subprogram.
    let fixture: Vec<_> = inv
        .programs
        .iter()
        .filter(|p| p.name == FIXTURE_PROG)
        .collect();
    assert_eq!(fixture.len(), 2, "{release}: {fixture:?}");
    assert!(fixture.iter().all(|p| p.map_ids.len() == 2), "{release}");
    assert!(
        fixture.iter().any(|p| p.run_count.unwrap() > 0),
        "{release}: the linked copy ran"
    );
    assert!(
        inv.programs.iter().any(|p| p.name == FIXTURE_SHORT_PROG),
        "{release}"
    );

    let maps = guest.bpftool("map");
    for bt in &maps {
        let id = u(bt, "id") as u32;
        let m = inv
            .map(id)
            .unwrap_or_else(|| panic!("map {id} missing: {bt}"));
        let ctx = format!("{release} map {id} {}", m.name);
        assert_map_matches(m, bt, &ctx);
        assert_eq!(m.btf_id.map(u64::from), bt["btf_id"].as_u64(), "{ctx}");
    }
    let listed: Vec<u32> = maps.iter().map(|bt| u(bt, "id") as u32).collect();
    for m in inv.maps.iter().filter(|m| !m.is_self) {
        assert!(
            listed.contains(&m.id),
            "{release}: map {} {} not in bpftool",
            m.id,
            m.name
        );
    }
    // Entries: exact for the hash family from 6.6 (bpf_map.elem_count);
    // unknown before, never 0. bpftool put 3 elements into the pinned copy.
    let hashes: Vec<Option<u64>> = inv
        .maps
        .iter()
        .filter(|m| m.name == "fixture_hash")
        .map(|m| m.entries)
        .collect();
    if (major, minor) >= (6, 6) {
        assert!(hashes.contains(&Some(3)), "{release}: {hashes:?}");
    } else {
        assert!(hashes.iter().all(Option::is_none), "{release}: {hashes:?}");
    }
    let array = inv.maps.iter().find(|m| m.name == "fixture_array").unwrap();
    assert_eq!(array.entries, Some(16), "{release}");

    let links = guest.bpftool("link");
    assert!(!links.is_empty(), "{release}: the fixture's iterator link");
    if (major, minor) < (5, 19) {
        // bpftool sees the link (BPF_LINK_GET_NEXT_ID, 5.8+); the link
        // iterator does not exist yet: unsupported, not failed, not empty-ok.
        assert_eq!(inv.unsupported, [Collector::Links], "{release}");
        assert!(inv.links.is_empty() && inv.errors.is_empty(), "{release}");
        return;
    }
    assert!(
        inv.unsupported.is_empty() && inv.errors.is_empty(),
        "{release}"
    );
    for bt in &links {
        let id = u(bt, "id") as u32;
        let l = inv
            .link(id)
            .unwrap_or_else(|| panic!("link {id} missing: {bt}"));
        assert_eq!(
            l.link_type,
            bt["type"].as_str().unwrap(),
            "{release} link {id}"
        );
        assert_eq!(
            u64::from(l.prog_id),
            u(bt, "prog_id"),
            "{release} link {id}"
        );
        if let Some(target) = bt.get("target_name").and_then(Value::as_str) {
            assert_eq!(
                l.target,
                Some(LinkTarget::Name {
                    name: target.into(),
                    map_id: None,
                }),
                "{release} link {id}"
            );
        }
    }
    assert_eq!(
        inv.links.iter().filter(|l| !l.is_self).count(),
        links.len(),
        "{release}"
    );
}

fn kernel_version(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// Boots `series`, compares everything and checks the start-up line and
/// `check`; returns the guest for kernel-specific checks.
fn guest_agrees_with_bpftool(series: &str, posture_switch: bool) -> Option<(Guest, Inventory)> {
    let guest = Guest::boot(series, "2", posture_switch, &[])?;
    let inv = guest.inventory();
    let release = inv.node.kernel_release.clone();
    assert!(release.starts_with(&format!("{series}.")), "{release}");
    compare_with_bpftool(&guest, &inv, &release);
    posture::posture_agrees_with_the_guest(&guest, &inv, &release);
    events::loads_and_unloads_arrive_as_events(&guest, &release);

    // One start-up line names what is unavailable; nothing else warns.
    let log = &guest.section("dump").2;
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{release}: {log}");
    assert!(
        warnings[0].contains("bpf_link.attach_type"),
        "{}",
        warnings[0]
    );
    assert!(!log.contains("ERROR"), "{release}: {log}");

    let check = &guest.section("check").0;
    assert!(check.contains(&format!("kernel {release}")), "{check}");
    assert!(check.contains("bpf_map iterator: yes"), "{check}");
    assert!(check.contains("bpf_prog iterator: yes"), "{check}");
    assert!(check.contains("per-CPU counters: yes (2 CPUs)"), "{check}");
    // iter/task_file is 5.8+: owners on every supported kernel.
    assert!(check.contains("owners walk: yes"), "{check}");
    assert!(
        inv.programs.iter().all(|p| p.holders.owners.is_some()),
        "{release}: owners null"
    );
    let own = inv
        .programs
        .iter()
        .find(|p| p.is_self)
        .expect("own program");
    let comms: Vec<&str> = own
        .holders
        .owners
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|o| &*o.comm)
        .collect();
    assert_eq!(comms, ["bpf-inventory-e"], "{release}");
    // bpftool exited: the fixture's hash map is held by its pin and its program.
    let pin = "/sys/fs/bpf/fxmaps/fixture_hash".to_owned();
    let pinned = inv
        .maps
        .iter()
        .find(|m| m.holders.pins.as_ref().is_some_and(|p| p.contains(&pin)))
        .unwrap_or_else(|| panic!("{release}: no map pinned at {pin}"));
    assert_eq!(pinned.holders.owners.as_deref(), Some(&[][..]), "{release}");
    assert_eq!(
        pinned.holders.held_by,
        Some(vec![HeldBy::Pinned, HeldBy::Program]),
        "{release}"
    );
    let links = if kernel_version(&release) >= (5, 19) {
        "bpf_link iterator: yes"
    } else {
        "bpf_link iterator: unsupported by this kernel"
    };
    assert!(check.contains(links), "{check}");
    Some((guest, inv))
}

fn run(test: &str, series: &str, posture_switch: bool) -> Option<(Guest, Inventory)> {
    if !have_root(test) {
        return None;
    }
    guest_agrees_with_bpftool(series, posture_switch)
}

#[test]
fn linux_5_10_agrees_with_bpftool() {
    let Some((guest, inv)) = run("linux_5_10_agrees_with_bpftool", "5.10", false) else {
        return;
    };
    pinned::pinned_files_agree_with_dump(&guest, &inv);
    let check = &guest.section("check").0;
    for missing in [
        "links (iter/bpf_link",
        "program verified_insns",
        "program recursion_misses",
    ] {
        assert!(
            check.contains(&format!("unavailable: {missing}")),
            "{check}"
        );
    }
}

#[test]
fn linux_6_1_agrees_with_bpftool() {
    run("linux_6_1_agrees_with_bpftool", "6.1", false);
}

/// Also the one guest where `kernel.unprivileged_bpf_disabled` is switched
/// (never on this host: a test may write it only inside a guest).
#[test]
fn linux_6_12_agrees_with_bpftool() {
    if let Some((guest, _)) = run("linux_6_12_agrees_with_bpftool", "6.12", true) {
        posture::unprivileged_switch_shows_in_the_next_collection(&guest);
    }
}

/// Possible CPUs beyond the online ones (CPU hotplug room, as on many cloud
/// VMs): the per-CPU sums cover every possible CPU. 5.19+ reads any CPU's
/// copy; before, an offline CPU cannot be visited, so the sums are unknown
/// rather than possibly short. (6.12 does not count qemu's absent CPUs as
/// possible, so 6.1 stands for 5.19+.) CPU 2, offline at boot, is onlined
/// while `events` runs: it has no ring, and the exporter warns.
#[test]
fn more_possible_than_online_cpus() {
    if !have_root("more_possible_than_online_cpus") {
        return;
    }
    for series in ["6.1", "5.10"] {
        // Four CPUs, two online at boot; CPU 2 is onlined while `events` runs.
        let later = [("KERNEL_ARGS", "maxcpus=2"), ("ONLINE_CPU", "2")];
        let Some(guest) = Guest::boot(series, "4", false, &later) else {
            return;
        };
        assert_eq!(guest.section("cpus").0, "0-3\n0-1\n", "possible, online");
        let inv = guest.inventory();
        let check = &guest.section("check").0;
        let fixture = inv
            .programs
            .iter()
            .find(|p| p.name == FIXTURE_PROG && p.run_count != Some(0))
            .expect("fixture program");
        // Events come from the online CPUs' rings; a CPU onlined later has
        // none, and the exporter says so.
        events::loads_and_unloads_arrive_as_events(&guest, &inv.node.kernel_release);
        assert_eq!(guest.section("events_cpu_online").0, "0-2\n");
        let log = &guest.section("events_log").0;
        assert!(
            log.lines().any(|l| l.contains("WARN")
                && l.contains("came online after")
                && l.contains("cpus=2")),
            "{series}: {log}"
        );
        if series == "6.1" {
            assert!(check.contains("per-CPU counters: yes (4 CPUs)"), "{check}");
            compare_with_bpftool(&guest, &inv, &inv.node.kernel_release);
        } else {
            assert!(check.contains("per-CPU counters: no"), "{check}");
            assert_eq!(fixture.run_count, None, "{series}: unknown, not short");
        }
    }
}
