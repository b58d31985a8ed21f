//! A readable listing of an `Inventory` for humans (`dump --format table`).
use std::fmt::Write;

use crate::inventory::{HeldBy, Inventory, Owners, Posture};

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
}

/// `comm(pid)` of each owner (with the pod uid where known); without owners,
/// what holds the object in brackets; `-` when owners are unknown.
fn owners(owners: &Option<Owners>, held_by: &Option<Vec<HeldBy>>) -> String {
    match (owners, held_by) {
        (Some(owners), _) if !owners.is_empty() => owners
            .iter()
            .map(|o| match &o.pod_uid {
                Some(uid) => format!("{}({}) pod {uid}", o.comm, o.pid),
                None => format!("{}({})", o.comm, o.pid),
            })
            .collect::<Vec<_>>()
            .join(", "),
        (Some(_), Some(held)) => {
            let held: Vec<&str> = held.iter().map(|h| h.as_str()).collect();
            format!("[{}]", held.join(","))
        }
        _ => "-".to_owned(),
    }
}

/// The node's BPF posture in five lines (`-`: could not be read): the
/// header of the table and what `check` prints.
pub fn render_posture(posture: &Posture) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_posture(&mut out, posture);
    out
}

fn write_posture(out: &mut String, p: &Posture) -> std::fmt::Result {
    let ratio = p
        .jit_used_ratio()
        .map_or_else(|| "-".to_owned(), |r| format!("{:.4}%", r * 100.0));
    writeln!(
        out,
        "posture: unprivileged_bpf_disabled {}, bpf_stats_enabled {}, jit_enable {}, jit_harden {}, jit_kallsyms {}",
        opt(&p.unprivileged_bpf_disabled),
        opt(&p.stats_enabled),
        opt(&p.jit_enabled),
        opt(&p.jit_harden),
        opt(&p.jit_kallsyms)
    )?;
    writeln!(
        out,
        "jit: {} of {} bytes used ({ratio})",
        opt(&p.jited_bytes),
        opt(&p.jit_limit_bytes)
    )?;
    writeln!(
        out,
        "lsm: {}, lockdown: {}",
        p.lsm
            .as_ref()
            .map_or_else(|| "-".to_owned(), |l| l.join(",")),
        opt(&p.lockdown)
    )?;
    let config = p.kernel_config.as_ref().map_or_else(
        || "-".to_owned(),
        |options| {
            let set: Vec<String> = options
                .iter()
                .map(|o| format!("{}={}", o.option, o.value))
                .collect();
            set.join(" ")
        },
    );
    writeln!(out, "kernel config: {config}")?;
    let mounts = p.bpf_fs.as_ref().map_or_else(
        || "-".to_owned(),
        |mounts| {
            let shown: Vec<String> = mounts
                .iter()
                .map(|m| {
                    let delegates: Vec<String> = [
                        ("delegate_cmds", &m.delegate_cmds),
                        ("delegate_maps", &m.delegate_maps),
                        ("delegate_progs", &m.delegate_progs),
                        ("delegate_attachs", &m.delegate_attachs),
                    ]
                    .into_iter()
                    .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name}={v}")))
                    .collect();
                    if delegates.is_empty() {
                        m.mountpoint.clone()
                    } else {
                        format!("{} ({})", m.mountpoint, delegates.join(","))
                    }
                })
                .collect();
            shown.join(", ")
        },
    );
    writeln!(out, "bpffs: {mounts}")
}

/// Renders programs, maps and links as three aligned tables.
pub fn render_table(inv: &Inventory) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_tables(&mut out, inv);
    out
}

fn write_tables(out: &mut String, inv: &Inventory) -> std::fmt::Result {
    writeln!(
        out,
        "node {} (Linux {}), collected {}, bpf stats {}",
        inv.node.hostname,
        inv.node.kernel_release,
        inv.collected_at.to_rfc3339(),
        if inv.bpf_stats_enabled { "on" } else { "off" }
    )?;
    out.push_str(&render_posture(&inv.node.posture));
    for e in &inv.errors {
        writeln!(
            out,
            "error: {} collector: {}",
            e.collector.as_str(),
            e.message
        )?;
    }
    writeln!(out, "\nPROGRAMS ({})", inv.programs.len())?;
    writeln!(
        out,
        "{:>7} {:<24} {:<16} {:>8} {:>8} {:>9} {:>12} {:>14}  {:<8} {:<32}  OWNERS",
        "ID", "TYPE", "TAG", "XLATED", "JITED", "MEMORY", "RUNS", "RUN_NS", "MAPS", "NAME"
    )?;
    for p in &inv.programs {
        let maps: Vec<String> = p.map_ids.iter().map(u32::to_string).collect();
        writeln!(
            out,
            "{:>7} {:<24} {:<16} {:>8} {:>8} {:>9} {:>12} {:>14}  {:<8} {:<32}  {}",
            p.id,
            p.prog_type,
            p.tag,
            p.xlated_bytes,
            p.jited_bytes,
            p.memory_bytes,
            opt(&p.run_count),
            opt(&p.run_time_ns),
            maps.join(","),
            format!("{}{}", p.name, if p.is_self { " (self)" } else { "" }),
            owners(&p.holders.owners, &p.holders.held_by)
        )?;
    }
    writeln!(out, "\nMAPS ({})", inv.maps.len())?;
    writeln!(
        out,
        "{:>7} {:<22} {:>5} {:>6} {:>10} {:>10} {:>10} {:>8}  {:<32}  OWNERS",
        "ID", "TYPE", "KEY", "VALUE", "MAX", "ENTRIES", "MEMORY", "FLAGS", "NAME"
    )?;
    for m in &inv.maps {
        writeln!(
            out,
            "{:>7} {:<22} {:>5} {:>6} {:>10} {:>10} {:>10} {:>#8x}  {:<32}  {}",
            m.id,
            m.map_type,
            m.key_size,
            m.value_size,
            m.max_entries,
            opt(&m.entries),
            opt(&m.memory_bytes),
            m.flags,
            format!("{}{}", m.name, if m.is_self { " (self)" } else { "" }),
            owners(&m.holders.owners, &m.holders.held_by)
        )?;
    }
    writeln!(out, "\nLINKS ({})", inv.links.len())?;
    writeln!(
        out,
        "{:>7} {:<16} {:>7} {:<28}  {:<24}  OWNERS",
        "ID", "TYPE", "PROG", "ATTACH", "TARGET"
    )?;
    for l in &inv.links {
        writeln!(
            out,
            "{:>7} {:<16} {:>7} {:<28}  {:<24}  {}",
            l.id,
            l.link_type,
            l.prog_id,
            opt(&l.attach_type),
            format!(
                "{}{}",
                opt(&l.target),
                if l.is_self { " (self)" } else { "" }
            ),
            owners(&l.holders.owners, &l.holders.held_by)
        )?;
    }
    Ok(())
}
