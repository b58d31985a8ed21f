//! A readable listing of an `Inventory` for humans (`dump --format table`).
use std::fmt::Write;

use crate::inventory::Inventory;

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
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
        "{:>7} {:<24} {:<16} {:>8} {:>8} {:>9} {:>12} {:>14}  MAPS",
        "ID", "TYPE", "TAG", "XLATED", "JITED", "MEMORY", "RUNS", "RUN_NS"
    )?;
    for p in &inv.programs {
        let maps: Vec<String> = p.map_ids.iter().map(u32::to_string).collect();
        writeln!(
            out,
            "{:>7} {:<24} {:<16} {:>8} {:>8} {:>9} {:>12} {:>14}  {}  {}{}",
            p.id,
            p.prog_type,
            p.tag,
            p.xlated_bytes,
            p.jited_bytes,
            p.memory_bytes,
            opt(&p.run_count),
            opt(&p.run_time_ns),
            maps.join(","),
            p.name,
            if p.is_self { " (self)" } else { "" }
        )?;
    }
    writeln!(out, "\nMAPS ({})", inv.maps.len())?;
    writeln!(
        out,
        "{:>7} {:<22} {:>5} {:>6} {:>10} {:>10} {:>10} {:>8}  NAME",
        "ID", "TYPE", "KEY", "VALUE", "MAX", "ENTRIES", "MEMORY", "FLAGS"
    )?;
    for m in &inv.maps {
        writeln!(
            out,
            "{:>7} {:<22} {:>5} {:>6} {:>10} {:>10} {:>10} {:>#8x}  {}{}",
            m.id,
            m.map_type,
            m.key_size,
            m.value_size,
            m.max_entries,
            opt(&m.entries),
            opt(&m.memory_bytes),
            m.flags,
            m.name,
            if m.is_self { " (self)" } else { "" }
        )?;
    }
    writeln!(out, "\nLINKS ({})", inv.links.len())?;
    writeln!(
        out,
        "{:>7} {:<16} {:>7} {:<28}  TARGET",
        "ID", "TYPE", "PROG", "ATTACH"
    )?;
    for l in &inv.links {
        writeln!(
            out,
            "{:>7} {:<16} {:>7} {:<28}  {}{}",
            l.id,
            l.link_type,
            l.prog_id,
            opt(&l.attach_type),
            opt(&l.target),
            if l.is_self { " (self)" } else { "" }
        )?;
    }
    Ok(())
}
