//! The node posture families: one point per known value (a sysctl, an LSM,
//! a config option, a bpffs mount), none for what could not be read. Shared
//! by the Prometheus page and the OTLP push, so both carry the same series.
use super::{families as f, families::Family, otlp::Point};
use crate::inventory::Posture;

/// The node families, in the families table's order.
pub const NODE_FAMILIES: [Family; 11] = [
    f::NODE_UNPRIVILEGED_BPF_DISABLED,
    f::NODE_JIT_ENABLED,
    f::NODE_JIT_HARDEN,
    f::NODE_JIT_KALLSYMS,
    f::NODE_JIT_LIMIT,
    f::NODE_JIT_USED,
    f::NODE_STATS_ENABLED,
    f::NODE_LSM,
    f::NODE_LOCKDOWN,
    f::NODE_KERNEL_CONFIG,
    f::FS_INFO,
];

/// Whether `family` is one of [`NODE_FAMILIES`].
pub fn is_node_family(family: &Family) -> bool {
    NODE_FAMILIES.contains(family)
}

/// A point's labels: (name, value) in the family's label order.
pub type NodeLabels<'a> = [(&'static str, &'a str)];

/// Calls `emit` with each point of `family` and its labels (name, value), in
/// the family's label order; a label whose value is unset is left out.
pub fn node_points(
    family: &Family,
    posture: &Posture,
    emit: &mut dyn FnMut(Point, &NodeLabels<'_>),
) {
    let small = |v: Option<u8>| v.map(|v| Point::Int(v.into()));
    let single = match family.name {
        n if n == f::NODE_UNPRIVILEGED_BPF_DISABLED.name => {
            small(posture.unprivileged_bpf_disabled)
        }
        n if n == f::NODE_JIT_ENABLED.name => small(posture.jit_enabled),
        n if n == f::NODE_JIT_HARDEN.name => small(posture.jit_harden),
        n if n == f::NODE_JIT_KALLSYMS.name => small(posture.jit_kallsyms),
        n if n == f::NODE_JIT_LIMIT.name => posture.jit_limit_bytes.map(Point::Int),
        n if n == f::NODE_JIT_USED.name => posture.jit_used_ratio().map(Point::Float),
        n if n == f::NODE_STATS_ENABLED.name => small(posture.stats_enabled),
        _ => None,
    };
    if let Some(point) = single {
        emit(point, &[]);
        return;
    }
    let one = Point::Int(1);
    match family.name {
        n if n == f::NODE_LSM.name => {
            for lsm in posture.lsm.iter().flatten() {
                emit(one, &[("lsm", lsm)]);
            }
        }
        n if n == f::NODE_LOCKDOWN.name => {
            if let Some(mode) = &posture.lockdown {
                emit(one, &[("mode", mode)]);
            }
        }
        n if n == f::NODE_KERNEL_CONFIG.name => {
            for o in posture.kernel_config.iter().flatten() {
                emit(one, &[("option", &o.option), ("value", &o.value)]);
            }
        }
        n if n == f::FS_INFO.name => {
            for mount in posture.bpf_fs.iter().flatten() {
                let mut labels = vec![("mountpoint", mount.mountpoint.as_str())];
                let delegates = [
                    ("delegate_cmds", &mount.delegate_cmds),
                    ("delegate_maps", &mount.delegate_maps),
                    ("delegate_progs", &mount.delegate_progs),
                    ("delegate_attachs", &mount.delegate_attachs),
                ];
                for (name, value) in delegates {
                    if let Some(value) = value {
                        labels.push((name, value));
                    }
                }
                emit(one, &labels);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_posture;

    fn points(family: &Family, posture: &Posture) -> Vec<(Point, Vec<(String, String)>)> {
        let mut out = Vec::new();
        node_points(family, posture, &mut |p, labels| {
            let labels = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            out.push((p, labels));
        });
        out
    }

    #[test]
    fn node_families_are_the_tables_node_rows_in_order() {
        let in_table: Vec<&str> = f::FAMILIES
            .iter()
            .filter(|f| f.name.starts_with("bpf_node_") || f.name.starts_with("bpf_fs_"))
            .map(|f| f.name)
            .collect();
        let ours: Vec<&str> = NODE_FAMILIES.iter().map(|f| f.name).collect();
        assert_eq!(ours, in_table);
    }

    #[test]
    fn values_and_labels_come_from_the_posture() {
        let posture = sample_posture();
        assert_eq!(
            points(&f::NODE_JIT_USED, &posture),
            [(Point::Float(0.75), vec![])]
        );
        assert_eq!(
            points(&f::NODE_JIT_LIMIT, &posture),
            [(Point::Int(1 << 20), vec![])]
        );
        let mounts = points(&f::FS_INFO, &posture);
        let label = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(mounts[0].1, [label("mountpoint", "/sys/fs/bpf")]);
        assert_eq!(
            mounts[1].1,
            [
                label("mountpoint", "/run/tenant \"a\""),
                label("delegate_cmds", "any"),
                label("delegate_maps", "hash:array"),
            ]
        );
    }

    #[test]
    fn unknown_values_have_no_point() {
        for family in NODE_FAMILIES {
            assert!(
                points(&family, &Posture::default()).is_empty(),
                "{}",
                family.name
            );
        }
        let no_limit = Posture {
            jited_bytes: Some(10),
            ..Posture::default()
        };
        assert!(points(&f::NODE_JIT_USED, &no_limit).is_empty());
    }
}
