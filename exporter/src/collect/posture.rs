//! Reads the node's BPF posture: the BPF sysctls, the LSM list and lockdown
//! mode (securityfs), a few kernel config options and the bpffs mounts with
//! their token delegation. The kernel config and securityfs are read once at
//! start; the sysctls and mountinfo, which are cheap, at every collection.
//! What cannot be read is logged once at start and is null in the snapshot.
use std::{
    io::Read,
    path::{Path, PathBuf},
};

use tracing::{info, warn};

use super::cgroup::unescape;
use crate::inventory::{BpfFsMount, KernelConfigOption, Posture, KERNEL_CONFIG_OPTIONS};

/// The sysctls read at every collection, in `Posture` field order.
const SYSCTLS: [&str; 6] = [
    "proc/sys/kernel/unprivileged_bpf_disabled",
    "proc/sys/kernel/bpf_stats_enabled",
    "proc/sys/net/core/bpf_jit_enable",
    "proc/sys/net/core/bpf_jit_harden",
    "proc/sys/net/core/bpf_jit_kallsyms",
    "proc/sys/net/core/bpf_jit_limit",
];
const LSM: &str = "sys/kernel/security/lsm";
const LOCKDOWN: &str = "sys/kernel/security/lockdown";
const CONFIG_GZ: &str = "proc/config.gz";
const MOUNTINFO: &str = "proc/self/mountinfo";

/// A posture source that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PostureError {
    #[error("cannot read {}: {error}{hint}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
        /// What to do about it, when known.
        hint: &'static str,
    },
    #[error("{}: not a number: {content:?}", path.display())]
    NotANumber { path: PathBuf, content: String },
    #[error("no kernel config: {}: {gz_error}; {}: {boot_error}", gz.display(), boot.display())]
    NoKernelConfig {
        gz: PathBuf,
        gz_error: std::io::Error,
        boot: PathBuf,
        boot_error: std::io::Error,
    },
}

/// The posture source of one `KernelSource`.
pub struct PostureReader {
    root: PathBuf,
    /// The last value read of each of [`SYSCTLS`]: a sysctl that cannot be
    /// read any more (CAP_SYS_ADMIN dropped after start: `bpf_jit_harden`,
    /// `bpf_jit_kallsyms` and `bpf_jit_limit` need it) keeps its last value.
    sysctls: [Option<u64>; 6],
    lsm: Option<Vec<String>>,
    lockdown: Option<String>,
    kernel_config: Option<Vec<KernelConfigOption>>,
    unreadable: Vec<PostureError>,
}

impl PostureReader {
    /// Reads every source of the host once; names those that cannot be read
    /// in one line (at INFO: securityfs unmounted or no kernel config is a
    /// host's set-up, not a fault; `check` lists them too).
    pub fn open(kernel_release: &str) -> Self {
        let reader = Self::open_at(Path::new("/"), kernel_release);
        if !reader.unreadable.is_empty() {
            let absent: Vec<String> = reader.unreadable.iter().map(ToString::to_string).collect();
            info!(
                absent = absent.join("; "),
                "node posture: these parts are absent (null, no series)"
            );
        }
        reader
    }

    /// [`Self::open`] under another root (tests), without logging.
    pub fn open_at(root: &Path, kernel_release: &str) -> Self {
        let mut unreadable = Vec::new();
        let mut sysctls = [None; 6];
        for (value, path) in sysctls.iter_mut().zip(SYSCTLS) {
            *value = keep(&mut unreadable, read_number(&root.join(path)));
        }
        let lsm = keep(&mut unreadable, read_securityfs(&root.join(LSM)));
        let lockdown = keep(&mut unreadable, read_securityfs(&root.join(LOCKDOWN)));
        let kernel_config = keep(&mut unreadable, read_kernel_config(root, kernel_release));
        let mut reader = Self {
            root: root.to_owned(),
            sysctls,
            lsm: lsm.map(|text| parse_lsm(&text)),
            lockdown: lockdown.and_then(|text| parse_lockdown(&text)),
            kernel_config: kernel_config.map(|text| parse_kernel_config(&text)),
            unreadable,
        };
        if let Err(e) = reader.bpf_fs() {
            reader.unreadable.push(e);
        }
        reader
    }

    /// The sources that could not be read at start.
    pub fn unreadable(&self) -> &[PostureError] {
        &self.unreadable
    }

    /// The posture now: sysctls and mounts read again. `jited_bytes` is the
    /// sum over every program of this collection (null if it failed).
    pub fn read(&mut self, jited_bytes: Option<u64>) -> Posture {
        for (value, path) in self.sysctls.iter_mut().zip(SYSCTLS) {
            if let Ok(now) = read_number(&self.root.join(path)) {
                *value = Some(now);
            }
        }
        let [unpriv, stats, jit, harden, kallsyms, limit] = self.sysctls;
        let small = |v: Option<u64>| v.and_then(|v| u8::try_from(v).ok());
        Posture {
            unprivileged_bpf_disabled: small(unpriv),
            stats_enabled: small(stats),
            jit_enabled: small(jit),
            jit_harden: small(harden),
            jit_kallsyms: small(kallsyms),
            jit_limit_bytes: limit,
            jited_bytes,
            lsm: self.lsm.clone(),
            lockdown: self.lockdown.clone(),
            kernel_config: self.kernel_config.clone(),
            bpf_fs: self
                .bpf_fs()
                .inspect_err(|error| warn!(%error, "bpffs mounts are null in this collection"))
                .ok(),
        }
    }

    fn bpf_fs(&self) -> Result<Vec<BpfFsMount>, PostureError> {
        read(&self.root.join(MOUNTINFO), "").map(|text| parse_bpf_fs(&text))
    }
}

/// The value, or `None` with the error kept to be named.
fn keep<T>(unreadable: &mut Vec<PostureError>, result: Result<T, PostureError>) -> Option<T> {
    result.map_err(|e| unreadable.push(e)).ok()
}

fn read(path: &Path, hint: &'static str) -> Result<String, PostureError> {
    std::fs::read_to_string(path).map_err(|error| PostureError::Read {
        path: path.to_owned(),
        error,
        hint,
    })
}

fn read_number(path: &Path) -> Result<u64, PostureError> {
    let hint = if path.ends_with("bpf_jit_enable") {
        " (the net.core BPF sysctls exist only in the host's network namespace)"
    } else if path.parent().is_some_and(|p| p.ends_with("net/core")) {
        " (the host's network namespace and CAP_SYS_ADMIN are needed to read it)"
    } else {
        ""
    };
    let text = read(path, hint)?;
    text.trim().parse().map_err(|_| PostureError::NotANumber {
        path: path.to_owned(),
        content: text.trim().chars().take(32).collect(),
    })
}

fn read_securityfs(path: &Path) -> Result<String, PostureError> {
    read(
        path,
        " (is securityfs mounted at /sys/kernel/security? in a pod, mount it from the host)",
    )
}

/// /proc/config.gz (CONFIG_IKCONFIG_PROC), else /boot/config-<release>.
fn read_kernel_config(root: &Path, kernel_release: &str) -> Result<String, PostureError> {
    let gz = root.join(CONFIG_GZ);
    let gz_error = match std::fs::File::open(&gz).and_then(|file| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(file).read_to_string(&mut text)?;
        Ok(text)
    }) {
        Ok(text) => return Ok(text),
        Err(e) => e,
    };
    let boot = root.join(format!("boot/config-{kernel_release}"));
    std::fs::read_to_string(&boot).map_err(|boot_error| PostureError::NoKernelConfig {
        gz,
        gz_error,
        boot,
        boot_error,
    })
}

/// `lockdown,capability,landlock,bpf` → the names in order.
fn parse_lsm(text: &str) -> Vec<String> {
    text.trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `none [integrity] confidentiality` → the bracketed mode.
fn parse_lockdown(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let len = text[start..].find(']')?;
    Some(text[start..start + len].to_owned())
}

/// The value of each of [`KERNEL_CONFIG_OPTIONS`]: as set, or `n` when the
/// config says "is not set" or does not name it (Kconfig leaves out options
/// whose dependencies are off).
fn parse_kernel_config(text: &str) -> Vec<KernelConfigOption> {
    KERNEL_CONFIG_OPTIONS
        .iter()
        .map(|&option| {
            let value = text
                .lines()
                .find_map(|line| {
                    line.strip_prefix(option)
                        .and_then(|rest| rest.strip_prefix('='))
                })
                .unwrap_or("n");
            KernelConfigOption {
                option: option.to_owned(),
                value: value.to_owned(),
            }
        })
        .collect()
}

/// Every bpffs in a mountinfo text with its `delegate_*` super options.
fn parse_bpf_fs(mountinfo: &str) -> Vec<BpfFsMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split_whitespace();
            if right.next()? != "bpf" {
                return None;
            }
            let options = right.nth(1).unwrap_or("");
            let delegate = |name: &str| {
                options.split(',').find_map(|o| {
                    o.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix('='))
                        .map(str::to_owned)
                })
            };
            Some(BpfFsMount {
                mountpoint: unescape(left.split_whitespace().nth(4)?)
                    .to_string_lossy()
                    .into_owned(),
                delegate_cmds: delegate("delegate_cmds"),
                delegate_maps: delegate("delegate_maps"),
                delegate_progs: delegate("delegate_progs"),
                delegate_attachs: delegate("delegate_attachs"),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "posture_tests.rs"]
mod tests;
