//! The node's BPF posture from the built binary (`dump`, `/metrics`,
//! `/api/v1/node`, `check`) against what this test reads itself: the sysctls
//! from /proc/sys, the kernel config through `zcat`, bpffs mounts from
//! /proc/self/mountinfo, securityfs in a private mount namespace. A bpffs the
//! test mounts with token delegation appears with its options, and is gone
//! from the next collection once the guard unmounts it.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use e2e_tests::{exporter_binary, have_root};
use serde_json::{json, Value};

// Shared with api.rs; this test uses the server and its replies, not headers.
#[path = "api/support.rs"]
mod api_support;
use api_support::Server;

const SYSCTLS: [(&str, &str, &str); 6] = [
    (
        "unprivileged_bpf_disabled",
        "/proc/sys/kernel/unprivileged_bpf_disabled",
        "bpf_node_unprivileged_bpf_disabled",
    ),
    (
        "stats_enabled",
        "/proc/sys/kernel/bpf_stats_enabled",
        "bpf_node_stats_enabled",
    ),
    (
        "jit_enabled",
        "/proc/sys/net/core/bpf_jit_enable",
        "bpf_node_jit_enabled",
    ),
    (
        "jit_harden",
        "/proc/sys/net/core/bpf_jit_harden",
        "bpf_node_jit_harden",
    ),
    (
        "jit_kallsyms",
        "/proc/sys/net/core/bpf_jit_kallsyms",
        "bpf_node_jit_kallsyms",
    ),
    (
        "jit_limit_bytes",
        "/proc/sys/net/core/bpf_jit_limit",
        "bpf_node_jit_limit_bytes",
    ),
];

const CONFIG_OPTIONS: [&str; 7] = [
    "CONFIG_BPF_JIT_ALWAYS_ON",
    "CONFIG_BPF_UNPRIV_DEFAULT_OFF",
    "CONFIG_BPF_LSM",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_BPF_PRELOAD",
    "CONFIG_BPF_SYSCALL",
    "CONFIG_BPF_JIT",
];

/// The delegation the test's bpffs is mounted with, and how mountinfo shows it.
const DELEGATE: &str = "delegate_cmds=any,delegate_maps=hash:array";

/// A bpffs the test mounted on a fresh directory; unmounted and removed on drop.
struct BpfFs {
    dir: PathBuf,
}

impl BpfFs {
    fn mount(name: &str, options: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("posture-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "bpf", "-o", options, "bpf"])
            .arg(&dir)
            .output()
            .expect("run mount");
        let guard = Self { dir };
        assert!(
            out.status.success(),
            "this kernel refused a bpffs with {options} (BPF tokens are Linux 6.9+): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        guard
    }

    fn mountpoint(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The kernel config text: `zcat /proc/config.gz`, else /boot/config-<release>.
fn kernel_config_text() -> Option<String> {
    let out = Command::new("zcat").arg("/proc/config.gz").output().ok()?;
    if out.status.success() {
        return String::from_utf8(out.stdout).ok();
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()
}

/// Each option's value: `OPTION=value`, else `n` ("is not set" or not named).
fn kernel_config() -> Option<Vec<(String, String)>> {
    let text = kernel_config_text()?;
    Some(
        CONFIG_OPTIONS
            .iter()
            .map(|option| {
                let set = text.lines().find_map(|line| {
                    let (name, value) = line.split_once('=')?;
                    (name == *option).then(|| value.to_owned())
                });
                (option.to_string(), set.unwrap_or_else(|| "n".into()))
            })
            .collect(),
    )
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = u8::from_str_radix(&rest[i + 1..i + 4], 8).unwrap();
        out.push(char::from(code));
        rest = &rest[i + 4..];
    }
    out + rest
}

/// Every bpffs in /proc/self/mountinfo as the API shows it.
fn bpf_fs() -> Value {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut mounts = Vec::new();
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields.iter().position(|f| *f == "-").unwrap();
        if fields[dash + 1] != "bpf" {
            continue;
        }
        let options: Vec<&str> = fields[dash + 3].split(',').collect();
        let mut mount = json!({"mountpoint": unescape(fields[4])});
        for name in [
            "delegate_cmds",
            "delegate_maps",
            "delegate_progs",
            "delegate_attachs",
        ] {
            let prefix = format!("{name}=");
            let value = options.iter().find_map(|o| o.strip_prefix(&prefix));
            mount[name] = json!(value);
        }
        mounts.push(mount);
    }
    Value::Array(mounts)
}

/// The bracketed mode of a lockdown file's text.
fn lockdown_mode(text: &str) -> Option<String> {
    let (_, rest) = text.split_once('[')?;
    Some(rest.split_once(']')?.0.to_owned())
}

/// The posture as this test reads it, `jited_bytes` aside.
fn expected_posture() -> Value {
    let mut posture = json!({});
    for (field, path, _) in SYSCTLS {
        posture[field] = json!(read_number(path));
    }
    posture["lsm"] = json!(std::fs::read_to_string("/sys/kernel/security/lsm")
        .ok()
        .map(|t| t.trim().split(',').map(String::from).collect::<Vec<_>>()));
    posture["lockdown"] = json!(std::fs::read_to_string("/sys/kernel/security/lockdown")
        .ok()
        .and_then(|t| lockdown_mode(&t)));
    posture["kernel_config"] = json!(kernel_config().map(|options| options
        .into_iter()
        .map(|(option, value)| json!({"option": option, "value": value}))
        .collect::<Vec<_>>()));
    posture["bpf_fs"] = bpf_fs();
    posture
}

/// `posture` without `jited_bytes`, which the caller checks separately.
fn without_jited(posture: &Value) -> Value {
    let mut posture = posture.clone();
    posture.as_object_mut().unwrap().remove("jited_bytes");
    posture
}

fn dump(binary: &Path) -> Value {
    let out = Command::new(binary)
        .args(["dump", "--format", "json"])
        .output()
        .expect("run dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn dump_posture_equals_what_the_node_says() {
    if !have_root("dump_posture_equals_what_the_node_says") {
        return;
    }
    let fs = BpfFs::mount("dump", DELEGATE);
    // Other tests mount and unmount too: compare a dump taken while this
    // test's own reading before and after it agree.
    let (inventory, expected) = (0..5)
        .find_map(|_| {
            let before = expected_posture();
            let inventory = dump(&exporter_binary());
            (expected_posture() == before).then_some((inventory, before))
        })
        .expect("the node's posture kept changing during five dumps");
    let posture = &inventory["node"]["posture"];
    assert_eq!(without_jited(posture), expected);
    let ours: Vec<&Value> = posture["bpf_fs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["mountpoint"] == fs.mountpoint())
        .collect();
    assert_eq!(
        ours,
        [&json!({
            "mountpoint": fs.mountpoint(),
            "delegate_cmds": "any",
            "delegate_maps": "hash:array",
            "delegate_progs": null,
            "delegate_attachs": null,
        })]
    );
    // No name filter: every program of the same collection counts.
    let jited: u64 = inventory["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["jited_bytes"].as_u64().unwrap())
        .sum();
    assert!(jited > 0, "the exporter's own iterators are JIT-compiled");
    assert_eq!(posture["jited_bytes"], jited);
}

/// The value of the one sample of `name` with exactly `labels`.
fn sample(page: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    page.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map(|v| v.parse().unwrap())
}

#[path = "posture/serve.rs"]
mod serve;
