//! `/metrics`, `/api/v1/node` and `check`; securityfs in a private mount
//! namespace, where this host has none mounted.
use super::*;

#[test]
fn metrics_carry_the_posture_and_follow_bpffs_mounts() {
    if !have_root("metrics_carry_the_posture_and_follow_bpffs_mounts") {
        return;
    }
    let server = Server::start().expect("start exporter");
    let metrics = || {
        let reply = server.request("GET", "/metrics").unwrap();
        assert_eq!(reply.status, 200);
        reply.text()
    };
    let fs = BpfFs::mount("serve", DELEGATE);
    let series = format!(
        "mountpoint=\"{}\",delegate_cmds=\"any\",delegate_maps=\"hash:array\"",
        fs.mountpoint()
    );
    let page = metrics();
    // Mounted after start: mountinfo is read again at each collection.
    assert_eq!(sample(&page, "bpf_fs_info", &series), Some(1.0), "{page}");
    for (_, path, metric) in SYSCTLS {
        let value = read_number(path).map(|v| v as f64);
        assert_eq!(sample(&page, metric, ""), value, "{metric}");
    }
    for (option, value) in kernel_config().expect("a kernel config on this host") {
        let labels = format!("option=\"{option}\",value=\"{value}\"");
        assert_eq!(
            sample(&page, "bpf_node_kernel_config_info", &labels),
            Some(1.0),
            "{labels}"
        );
    }
    let lsm_series = page
        .lines()
        .filter(|l| l.starts_with("bpf_node_lsm_info{"))
        .count();
    match std::fs::read_to_string("/sys/kernel/security/lsm") {
        Ok(text) => assert_eq!(lsm_series, text.trim().split(',').count()),
        // Unreadable: absent, never 0.
        Err(_) => assert_eq!(lsm_series, 0, "{page}"),
    }
    let jited: f64 = page
        .lines()
        .filter(|l| l.starts_with("bpf_prog_jited_bytes{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let limit = read_number("/proc/sys/net/core/bpf_jit_limit").unwrap() as f64;
    let ratio = sample(&page, "bpf_node_jit_used_ratio", "").unwrap();
    assert!(
        (ratio - jited / limit).abs() <= 1e-12 * ratio,
        "{ratio} vs {jited}/{limit}"
    );

    let mountpoint = fs.mountpoint().to_owned();
    drop(fs);
    let page = metrics();
    assert!(!page.contains(&format!("mountpoint=\"{mountpoint}\"")));

    let (node, expected) = (0..5)
        .find_map(|_| {
            let before = expected_posture();
            let node = server.json("/api/v1/node");
            (expected_posture() == before).then_some((node, before))
        })
        .expect("the node's posture kept changing during five requests");
    assert_eq!(without_jited(&node["node"]["posture"]), expected);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(node["node"]["hostname"], hostname.trim());
}

#[test]
fn check_prints_the_posture_and_names_what_it_cannot_read() {
    if !have_root("check_prints_the_posture_and_names_what_it_cannot_read") {
        return;
    }
    let out = Command::new(exporter_binary())
        .arg("check")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let number = |path| read_number(path).map_or("-".to_owned(), |v| v.to_string());
    let line = format!(
        "posture: unprivileged_bpf_disabled {}, bpf_stats_enabled {}, jit_enable {}, jit_harden {}, jit_kallsyms {}\n",
        number(SYSCTLS[0].1),
        number(SYSCTLS[1].1),
        number(SYSCTLS[2].1),
        number(SYSCTLS[3].1),
        number(SYSCTLS[4].1),
    );
    assert!(stdout.contains(&line), "{stdout}");
    for path in ["/sys/kernel/security/lsm", "/sys/kernel/security/lockdown"] {
        let named = stdout.contains(&format!("posture unavailable: cannot read {path}: "));
        assert_eq!(named, std::fs::read(path).is_err(), "{path}\n{stdout}");
    }
}

/// securityfs mounted in a private mount namespace only (the host's stays
/// as it is): `dump` there shows the LSM list and lockdown mode the same
/// shell read before starting it.
#[test]
fn lsm_and_lockdown_come_from_securityfs() {
    if !have_root("lsm_and_lockdown_come_from_securityfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "set -e; [ -e /sys/kernel/security/lsm ] || mount -t securityfs securityfs /sys/kernel/security; \
         cat /sys/kernel/security/lsm > {d}/lsm; \
         cat /sys/kernel/security/lockdown > {d}/lockdown 2>/dev/null || true; \
         exec \"$0\" dump --format json",
        d = dir.path().display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(exporter_binary())
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inventory: Value = serde_json::from_slice(&out.stdout).unwrap();
    let posture = &inventory["node"]["posture"];
    let lsm = std::fs::read_to_string(dir.path().join("lsm")).unwrap();
    let lsm: Vec<&str> = lsm.trim().split(',').collect();
    assert!(!lsm[0].is_empty(), "securityfs lists no LSM");
    assert_eq!(posture["lsm"], json!(lsm));
    let lockdown = std::fs::read_to_string(dir.path().join("lockdown")).unwrap();
    assert_eq!(posture["lockdown"], json!(lockdown_mode(&lockdown)));
}
