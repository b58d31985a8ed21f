//! The node's BPF posture: whether the node lets anyone load more BPF, and how
//! much JIT room is left. Plain data; `collect/posture.rs` reads it (docs/
//! inventory.md names each source). `null` means it could not be read.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kernel config options reported, in this order.
pub const KERNEL_CONFIG_OPTIONS: [&str; 7] = [
    "CONFIG_BPF_JIT_ALWAYS_ON",
    "CONFIG_BPF_UNPRIV_DEFAULT_OFF",
    "CONFIG_BPF_LSM",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_BPF_PRELOAD",
    "CONFIG_BPF_SYSCALL",
    "CONFIG_BPF_JIT",
];

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Posture {
    /// `kernel.unprivileged_bpf_disabled`: 0 unprivileged BPF allowed, 1 off
    /// until reboot, 2 off (an admin may set 0 again).
    pub unprivileged_bpf_disabled: Option<u8>,
    /// `kernel.bpf_stats_enabled`.
    pub stats_enabled: Option<u8>,
    /// `net.core.bpf_jit_enable`: 0 interpreter, 1 JIT, 2 JIT with debug output.
    pub jit_enabled: Option<u8>,
    /// `net.core.bpf_jit_harden`: 0 off, 1 for unprivileged loads, 2 for all.
    pub jit_harden: Option<u8>,
    /// `net.core.bpf_jit_kallsyms`: JIT images in /proc/kallsyms.
    pub jit_kallsyms: Option<u8>,
    /// `net.core.bpf_jit_limit`: bytes of JIT images unprivileged loads may
    /// take in all.
    pub jit_limit_bytes: Option<u64>,
    /// The sum of every program's `jited_bytes` (name filters aside); null
    /// when the program collector failed. The kernel charges a little more
    /// per program (its image header, rounded up to 64 bytes).
    pub jited_bytes: Option<u64>,
    /// Active LSMs in order (`/sys/kernel/security/lsm`); null without securityfs.
    pub lsm: Option<Vec<String>>,
    /// The lockdown mode in effect (`none`, `integrity`, `confidentiality`);
    /// null without securityfs or when the kernel has no lockdown LSM.
    pub lockdown: Option<String>,
    /// [`KERNEL_CONFIG_OPTIONS`] from /proc/config.gz or /boot/config-<release>:
    /// `y`, `m`, a value, or `n` (not set, or not in the config); null when
    /// no config could be read.
    pub kernel_config: Option<Vec<KernelConfigOption>>,
    /// Every bpffs mount (`/proc/self/mountinfo`), in mount order.
    pub bpf_fs: Option<Vec<BpfFsMount>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KernelConfigOption {
    pub option: String,
    pub value: String,
}

/// A bpffs mount and the BPF token delegation it allows (Linux 6.9+): a
/// process in the user namespace that owns the mount can create a token
/// from it and run the delegated commands without CAP_BPF in the host's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BpfFsMount {
    pub mountpoint: String,
    /// As mountinfo shows them: `any` or names joined by `:`; null when none
    /// is delegated.
    pub delegate_cmds: Option<String>,
    pub delegate_maps: Option<String>,
    pub delegate_progs: Option<String>,
    pub delegate_attachs: Option<String>,
}

impl BpfFsMount {
    /// Whether any delegation option is set.
    pub fn delegates(&self) -> bool {
        [
            &self.delegate_cmds,
            &self.delegate_maps,
            &self.delegate_progs,
            &self.delegate_attachs,
        ]
        .iter()
        .any(|o| o.is_some())
    }
}

impl Posture {
    /// `jited_bytes` as a fraction of `jit_limit_bytes`, where both are known.
    pub fn jit_used_ratio(&self) -> Option<f64> {
        match (self.jited_bytes, self.jit_limit_bytes) {
            (Some(used), Some(limit)) if limit > 0 => Some(used as f64 / limit as f64),
            _ => None,
        }
    }
}
