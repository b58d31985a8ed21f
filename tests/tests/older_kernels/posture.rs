//! The node's posture in each guest against what the guest printed itself:
//! its sysctls, its mountinfo, securityfs and the kernel config (the
//! package's, copied to /boot: Debian's kernels have no /proc/config.gz). A
//! bpffs mounted with `delegate_cmds=any` shows it from 6.9 on; earlier
//! kernels accept the option and ignore it. In one guest, switching
//! `kernel.unprivileged_bpf_disabled` between 2 and 0 shows in the next
//! collection of a running `serve`.
use bpf_inventory_exporter::inventory::{
    BpfFsMount, Inventory, KernelConfigOption, KERNEL_CONFIG_OPTIONS,
};

use super::{kernel_version, Guest};

/// Each bpffs in a mountinfo text, parsed here (not by the exporter's code).
fn bpf_fs(mountinfo: &str) -> Vec<BpfFsMount> {
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields.iter().position(|f| *f == "-").unwrap();
        if fields[dash + 1] != "bpf" {
            continue;
        }
        let options: Vec<&str> = fields[dash + 3].split(',').collect();
        let option = |name: &str| {
            let prefix = format!("{name}=");
            options
                .iter()
                .find_map(|o| o.strip_prefix(prefix.as_str()))
                .map(str::to_owned)
        };
        mounts.push(BpfFsMount {
            mountpoint: fields[4].to_owned(),
            delegate_cmds: option("delegate_cmds"),
            delegate_maps: option("delegate_maps"),
            delegate_progs: option("delegate_progs"),
            delegate_attachs: option("delegate_attachs"),
        });
    }
    mounts
}

/// The grep of the guest's kernel config: each option's value, or `n`.
fn kernel_config(grep: &str) -> Vec<KernelConfigOption> {
    KERNEL_CONFIG_OPTIONS
        .iter()
        .map(|option| {
            let value = grep
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{option}=")))
                .unwrap_or("n");
            KernelConfigOption {
                option: (*option).to_owned(),
                value: value.to_owned(),
            }
        })
        .collect()
}

/// The bracketed mode of a lockdown file.
fn lockdown_mode(text: &str) -> Option<String> {
    let (_, rest) = text.split_once('[')?;
    Some(rest.split_once(']')?.0.to_owned())
}

pub fn posture_agrees_with_the_guest(guest: &Guest, inv: &Inventory, release: &str) {
    let posture = &inv.node.posture;
    let sysctls: Vec<u64> = guest
        .section("sysctls")
        .0
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let small = |i: usize| Some(u8::try_from(sysctls[i]).unwrap());
    assert_eq!(posture.unprivileged_bpf_disabled, small(0), "{release}");
    assert_eq!(posture.stats_enabled, small(1), "{release}");
    assert_eq!(posture.jit_enabled, small(2), "{release}");
    assert_eq!(posture.jit_harden, small(3), "{release}");
    assert_eq!(posture.jit_kallsyms, small(4), "{release}");
    assert_eq!(posture.jit_limit_bytes, Some(sysctls[5]), "{release}");
    // The script turned statistics on before anything else.
    assert_eq!(sysctls[1], 1, "{release}");

    let jited: u64 = inv.programs.iter().map(|p| u64::from(p.jited_bytes)).sum();
    assert!(jited > 0, "{release}");
    assert_eq!(posture.jited_bytes, Some(jited), "{release}");

    let lsm: Vec<String> = guest
        .section("lsm")
        .0
        .trim()
        .split(',')
        .map(str::to_owned)
        .collect();
    assert!(lsm.len() > 1, "{release}: {lsm:?}");
    assert_eq!(posture.lsm.as_ref(), Some(&lsm), "{release}");
    // Without the lockdown LSM the file is absent, and so is the mode.
    let (text, code, _) = &guest.sections["lockdown"];
    let mode = (*code == 0).then(|| lockdown_mode(text)).flatten();
    assert_eq!(posture.lockdown, mode, "{release}");

    let config = kernel_config(&guest.section("kconfig").0);
    assert!(
        config.iter().any(|o| o.value == "y"),
        "{release}: {config:?}"
    );
    assert_eq!(posture.kernel_config.as_ref(), Some(&config), "{release}");

    let mounts = bpf_fs(&guest.section("mountinfo").0);
    assert_eq!(posture.bpf_fs.as_ref(), Some(&mounts), "{release}");
    guest.section("tokenfs");
    let points: Vec<&str> = mounts.iter().map(|m| m.mountpoint.as_str()).collect();
    assert_eq!(points, ["/sys/fs/bpf", "/tmp/tokenfs"], "{release}");
    let cmds: Vec<Option<&str>> = mounts.iter().map(|m| m.delegate_cmds.as_deref()).collect();
    // BPF tokens are 6.9+: before, bpffs ignores options it does not know.
    let token = (kernel_version(release) >= (6, 9)).then_some("any");
    assert_eq!(cmds, [None, token], "{release}");
    assert!(
        mounts.iter().all(|m| m.delegate_maps.is_none()
            && m.delegate_progs.is_none()
            && m.delegate_attachs.is_none()),
        "{release}: {mounts:?}"
    );
}

/// The value of the one unlabelled sample `name` in a page.
fn sample(page: &str, name: &str) -> f64 {
    let values: Vec<f64> = page
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(values.len(), 1, "{name} in:\n{page}");
    values[0]
}

/// `serve` scraped, `kernel.unprivileged_bpf_disabled` switched in the guest
/// (2 to 0, or 0 to 2), scraped again: the same process reports the new value.
pub fn unprivileged_switch_shows_in_the_next_collection(guest: &Guest) {
    guest.section("serve_ready");
    let value = |name: &str| -> f64 { guest.section(name).0.trim().parse().unwrap() };
    let (before, after) = (value("unpriv_before"), value("unpriv_after"));
    guest.section("unpriv_switch");
    assert!(
        (before, after) == (2.0, 0.0) || (before, after) == (0.0, 2.0),
        "{before} -> {after}"
    );
    let (page_before, page_after) = (
        &guest.section("metrics_before").0,
        &guest.section("metrics_after").0,
    );
    let metric = "bpf_node_unprivileged_bpf_disabled";
    assert_eq!(sample(page_before, metric), before);
    assert_eq!(sample(page_after, metric), after);
    let started = "process_start_time_seconds";
    assert_eq!(sample(page_before, started), sample(page_after, started));
}
