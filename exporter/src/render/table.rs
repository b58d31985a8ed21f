//! A readable listing of an `Inventory` for humans (`dump --format table`).
use std::fmt::Write;

use crate::inventory::{HeldBy, Inventory, Owners};

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
