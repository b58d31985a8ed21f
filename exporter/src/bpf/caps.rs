//! Start-up privilege check: what the iterators need, and what is optional.
use caps::{CapSet, Capability};

/// A capability the exporter cannot run without.
#[derive(Debug, thiserror::Error)]
#[error("missing {missing}: run as root or grant CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN too for map memory and --enable-bpf-stats)")]
pub struct MissingCapability {
    pub missing: String,
}

/// The optional privileges the process holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// CAP_SYS_ADMIN: get-fd-by-id (map memory from fdinfo) and BPF_ENABLE_STATS.
    pub sys_admin: bool,
}

fn has(cap: Capability) -> bool {
    caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false)
}

/// CAP_BPF in effect (CAP_SYS_ADMIN implies it).
pub(super) fn holds_bpf() -> bool {
    has(Capability::CAP_BPF) || has(Capability::CAP_SYS_ADMIN)
}

/// Loading tracing programs needs CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN
/// implies both); reading kernel memory in them needs CAP_PERFMON.
pub fn check() -> Result<Privileges, MissingCapability> {
    let sys_admin = has(Capability::CAP_SYS_ADMIN);
    let missing: Vec<&str> = [
        (Capability::CAP_BPF, "CAP_BPF"),
        (Capability::CAP_PERFMON, "CAP_PERFMON"),
    ]
    .into_iter()
    .filter(|&(cap, _)| !sys_admin && !has(cap))
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        Ok(Privileges { sys_admin })
    } else {
        Err(MissingCapability {
            missing: missing.join(" and "),
        })
    }
}
